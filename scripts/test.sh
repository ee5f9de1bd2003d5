#!/usr/bin/env bash
# One command on a fresh machine: set up, build, run every test (ctest), then
# run each libFuzzer target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
(cd build && ctest --output-on-failure --parallel "$(nproc)")
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
