#!/usr/bin/env bash
# One command on a fresh machine: set up, build, run every test (ctest), run
# each libFuzzer target briefly, then every test again under ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
(cd build && ctest --output-on-failure --parallel "$(nproc)")
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
# Sanitizer job: the whole ctest suite again in the ASan + UBSan build (build-asan).
scripts/sanitize.sh
