#!/usr/bin/env bash
# Issue #8's GPU check in one call, sized for under 8 minutes on one H100:
# build with CUDA, run the GPU tests, the CUDA kernel benchmarks, the benchmark
# on random weights of the Llama-2-7B and TinyLlama architectures (with and
# without the decode CUDA graph), a profile, and print a short table.
#
# On a machine that cannot install packages, run scripts/gpu_bundle.sh on a
# machine that can, and carry gpu-bundle/ (binaries + shared libraries): it is
# used when present.
# Output: $OUT (or ./gpu_check_out): logs, JSON results, profiles, table.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT_DIR"
BUILD=build-cuda
[ -x gpu-bundle/speed_benchmark ] && BUILD=gpu-bundle
export LD_LIBRARY_PATH="$PWD/$BUILD/bundled-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LLM_FIXTURES_DIR="$PWD/tests/fixtures"  # the tests' fixtures wherever this copy lives
log() { echo "== $(date +%T) $*" | tee -a "$OUT_DIR/steps.log"; }

log "GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv | tee "$OUT_DIR/gpu.txt"

if [ ! -x "$BUILD/speed_benchmark" ] || [ ! -x "$BUILD/tests/cuda_tests" ]; then
  log "build ($BUILD, CUDA on)"
  scripts/setup.sh "$BUILD" -DLLM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="80-real;90-real;90-virtual" \
    > "$OUT_DIR/build.log" 2>&1 || { tail -30 "$OUT_DIR/build.log"; exit 1; }
fi
SB="$BUILD/speed_benchmark"

log "GPU tests (CUDA engine vs transformers and vs the CPU engine)"
"$BUILD/tests/cuda_tests" > "$OUT_DIR/cuda_tests.log" 2>&1
echo "cuda_tests exit $?" | tee -a "$OUT_DIR/steps.log"
grep -E "rel err|agreement|copy:|PASSED|FAILED|SKIPPED" "$OUT_DIR/cuda_tests.log" | sort | uniq -c | sort -rn | head -20
"$BUILD/tests/kernel_math_tests" > "$OUT_DIR/kernel_math_tests.log" 2>&1; echo "kernel_math_tests exit $?"

log "kernel benchmarks"
"$BUILD/bench/bench_cuda" --benchmark_min_time=0.3 --benchmark_format=json --benchmark_out="$OUT_DIR/bench_cuda.json" \
  --benchmark_out_format=json > "$OUT_DIR/bench_cuda.txt" 2>&1
tail -12 "$OUT_DIR/bench_cuda.txt"

run() {  # name, then speed_benchmark flags
  local name=$1; shift
  log "speed_benchmark $name"
  timeout 240 "$SB" --device cuda --load-format dummy --quiet --format json --output-dir "$OUT_DIR/$name" "$@" \
    > "$OUT_DIR/$name.json" 2> "$OUT_DIR/$name.err" || { echo "FAILED: $name"; tail -5 "$OUT_DIR/$name.err"; }
}
SYN=(--prompt-lengths 512 --gen-lengths 128 --warmup 1 --repetitions 3 --max-seq-len 1024)
run llama2-7b-f16 --model-config llama2-7b --dtype float16 "${SYN[@]}" --gpu-bandwidth
run llama2-7b-bf16 --model-config llama2-7b --dtype bfloat16 "${SYN[@]}"
run llama2-7b-f16-nograph --model-config llama2-7b --dtype float16 --gen-lengths 128 --repetitions 3 --no-cuda-graph
run tinyllama-f16 --model-config tinyllama-1.1b --dtype float16 "${SYN[@]}" --gpu-bandwidth
run tinyllama-bf16 --model-config tinyllama-1.1b --dtype bfloat16 "${SYN[@]}"
run tinyllama-f32 --model-config tinyllama-1.1b --dtype float32 "${SYN[@]}"
run tinyllama-f16-depth --model-config tinyllama-1.1b --dtype float16 --gen-lengths 128 --depths 2048 --max-seq-len 2304 \
  --repetitions 3
run tinyllama-f32-verify --model-config tinyllama-1.1b --dtype float32 --gen-lengths 16 --repetitions 1 --verify
run tinyllama-profile --model-config tinyllama-1.1b --dtype float16 --gen-lengths 32 --repetitions 3 --profile \
  --profile-steps 2,2,20 --profile-overhead
run llama2-7b-profile --model-config llama2-7b --dtype float16 --prompt-lengths 512 --gen-lengths 32 --repetitions 1 \
  --profile --profile-steps 2,2,10
sed -n '/CUDA decode/,/^$/p' "$OUT_DIR/llama2-7b-profile/profiler_stats.txt" 2>/dev/null | head -20

log "table"
python3 tools/gpu_table.py "$OUT_DIR" | tee "$OUT_DIR/table.txt"
