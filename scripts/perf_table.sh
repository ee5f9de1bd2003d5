#!/usr/bin/env bash
# End-to-end CPU performance table (issue #6): prefill (pp512) and decode
# (tg128) of random weights of an architecture, per dtype, against this
# machine's limits measured in the same run (speed_benchmark --calibrate).
# Usage: scripts/perf_table.sh [model-config]   (default tinyllama-1.1b; rows: f32/f16/bf16 on 2 threads, f16 on 1)
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-tinyllama-1.1b}"
BIN=build/speed_benchmark
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# Limits measured in this run, per thread count (1-thread rows are judged against 1-thread limits).
declare -A READ FMA
for t in 1 2; do
  cal=$($BIN --calibrate --threads $t)
  READ[$t]=$(echo "$cal" | awk '/read bandwidth/ {print $3}')
  FMA[$t]=$(echo "$cal" | awk '/FMA peak/ {print $4}')
done
runs=("float32 2" "float16 2" "bfloat16 2" "float16 1")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F); read ${READ[2]} GB/s and FMA ${FMA[2]} GFLOP/s with 2 threads, ${READ[1]} and ${FMA[1]} with 1"
printf "%-16s %-9s %-7s %12s %12s %10s %12s %12s %10s\n" model dtype threads "pp512 tok/s" "GFLOP/s" "% FMA" "tg128 tok/s" "GB/s" "% BW"
for r in "${runs[@]}"; do
  set -- $r
  $BIN --load-format dummy --model-config "$CONFIG" --dtype "$1" --threads "$2" --prompt-lengths 512 --gen-lengths 128 \
    --max-seq-len 1024 --warmup 1 --repetitions 3 --quiet --format json --output-dir "$OUT" > "$OUT/r.json"
  python3 - "$OUT/r.json" "$CONFIG" "$1" "$2" "${READ[$2]}" "${FMA[$2]}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); cfg, dt, th, bw, fma = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
runs = {r["name"]: r for r in d["runs"]}
pp, tg = runs["pp512"]["prefill_tokens_per_sec"], runs["tg128"]["decode_tokens_per_sec"]
c = d["model"]["config"]
# Matmul FLOPs per token: 2 x (parameters of every projection and lm_head); attention adds little at 512.
h, L, v = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
q, kv, f = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"], c["intermediate_size"]
flops = 2 * (L * (h * q * 2 + h * kv * 2 + 3 * h * f) + v * h)
gflops = pp * flops / 1e9
gbps = tg * d["model"]["weight_bytes"] / 1e9
print(f"{cfg:<16} {dt:<9} {th:<7} {pp:12.2f} {gflops:12.1f} {100 * gflops / fma:9.0f}% {tg:12.2f} {gbps:12.1f} {100 * gbps / bw:9.0f}%")
PY
done
