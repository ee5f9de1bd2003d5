#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a
# few seconds from the seed corpus. Usage: scripts/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-20}"
for p in clang libclang-rt-14-dev; do
  if ! dpkg -s "$p" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$p" >/dev/null
  fi
done
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -g -O1"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLM_BUILD_TESTS=OFF \
  -DLLM_BUILD_BENCH=OFF -DLLM_BUILD_FUZZERS=ON -DCMAKE_CXX_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-fuzz --target fuzz_safetensors fuzz_llama_config
for t in safetensors llama_config; do
  corpus="fuzz/corpus-$t"
  mkdir -p "$corpus"
  echo "fuzzing $t for ${SECONDS_PER_TARGET}s"
  ./build-fuzz/fuzz/fuzz_$t -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -print_final_stats=1 \
    "$corpus" "fuzz/seeds/$t" 2>&1 | grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
  # libFuzzer exits non-zero on a crash; re-check so a crash fails the script.
  ./build-fuzz/fuzz/fuzz_$t -runs=0 "$corpus" "fuzz/seeds/$t" >/dev/null 2>&1 || { echo "fuzz_$t: crash"; exit 1; }
done
