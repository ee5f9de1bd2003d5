#!/usr/bin/env bash
# One command on a fresh machine: set up, build, and run the benchmark on a
# built-in default (random weights of the TinyLlama-1.1B architecture,
# bfloat16, CPU). Extra arguments are passed to speed_benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec ./build/speed_benchmark --load-format dummy --model-config tinyllama-1.1b --device cpu --dtype bfloat16 \
  --max-gen-len 32 --repetitions 2 "$@"
