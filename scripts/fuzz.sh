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
BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLM_BUILD_TESTS=OFF \
  -DLLM_BUILD_BENCH=OFF -DLLM_BUILD_FUZZERS=ON -DCMAKE_CXX_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
TARGETS="safetensors gguf gguf_model llama_config hf_tokenizer tokenizer_config hub_answer"
# shellcheck disable=SC2046
cmake --build "$BUILD" --target $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done)
for t in $TARGETS; do
  corpus="fuzz/corpus-$t"
  log="$BUILD/fuzz_$t.log"
  mkdir -p "$corpus"
  echo "fuzzing $t for ${SECONDS_PER_TARGET}s"
  # libFuzzer exits non-zero on a crash, a sanitizer report or a leak: that fails the script.
  rc=0
  "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$BUILD/fuzz_$t-" "$corpus" "fuzz/seeds/$t" >"$log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" "$log" || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_$t: crash or sanitizer report (exit $rc); input saved as $BUILD/fuzz_$t-*; log:"
    tail -n 40 "$log"
    exit 1
  fi
done
