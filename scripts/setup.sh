#!/usr/bin/env bash
# Installs the build dependencies (Debian packages) and builds the project.
# Usage: scripts/setup.sh [build-dir [cmake options...]]   (default: build)
# The CUDA backend is built when nvcc is found (-DLLM_CUDA=ON forces it, OFF skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
shift || true

PACKAGES=(cmake ninja-build g++ git pkg-config
          libsentencepiece-dev libpcre2-dev libcurl4-openssl-dev libssl-dev python3 libcli11-dev nlohmann-json3-dev libfmt-dev libhwy-dev
          libgtest-dev libgmock-dev libbenchmark-dev
          python3-git python3-tabulate)  # the last two: tests/fixtures/llama.cpp/compare-llama-bench.py
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
