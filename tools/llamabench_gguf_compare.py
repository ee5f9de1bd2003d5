#!/usr/bin/env python3
"""Same GGUF file, same run: llama.cpp's llama-bench against our speed_benchmark (issue #16).

Writes an F16 GGUF of a Llama architecture with random weights (llamacpp_compare.write_gguf),
makes the quantized files with llama.cpp's own `llama-quantize`, measures the read roof with
`speed_benchmark --calibrate`, then alternates `llama-bench -p P -n G -t T -r R` and ours
(`--model-path FILE --dtype bfloat16 --prompt-lengths P --gen-lengths G --repetitions R`)
round by round, so that both see the same machine state. Prints one markdown table: medians
(min-max) of every sample, the ratios, and the bytes our decode reads per second
(`model.weight_bytes` x tokens/s) over the roof: over the best `--calibrate` of the run, and over
the roof measured right before each of our decode runs (the median of those per-run fractions:
this VM's read bandwidth moves between ~35 and ~63 GB/s from one minute to the next), and, closest,
over the bandwidth our binary measures right before and right after each repetition (`--roof-probe`;
the median of the per-repetition fractions, each over the higher of its two readings).
A dev tool, never a test dependency.

llama-bench and llama-quantize come from the llama.cpp source llama-cpp-python ships:
    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36
    (untar; cd vendor/llama.cpp)
    cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build build -j2 --target llama-bench llama-quantize
On AMX Xeons llama.cpp's AMX kernels die with SIGILL (README), and -DGGML_NATIVE=ON with
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF still did on 2026-12-07 (its
-march=native turns the AMX code back on); what ran there:
    cmake -B build -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
        -DLLAMA_CURL=OFF "-DCMAKE_C_FLAGS=-march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
        "-DCMAKE_CXX_FLAGS=-march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"

    tools/llamabench_gguf_compare.py --llama-cpp-bin DIR/build/bin --arch tinyllama-1.1b \
        --types Q8_0,Q4_0,Q4_K_M --rounds 2
The paired ratio is the median over rounds of each round's ratio (robust to the machine's drifts);
--prompt 0 --gen 64 --reps 1 --rounds 10 alternates short decode runs only.
Float files too: --types BF16,F16,F32 (written directly; ours runs them with --dtype of their type).
--alt-binary OLD/speed_benchmark puts a previous build in the same rounds (its own columns).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llamacpp_compare import write_gguf  # noqa: E402


def llama_bench(binary, path, n_prompt, n_gen, threads, reps, extra):
    res = subprocess.run([binary, "-m", path, "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads),
                          "-r", str(reps), "-o", "json"] + extra, capture_output=True, text=True, check=True)
    rows = json.loads(res.stdout)
    tg = next(r for r in rows if r["n_gen"] == n_gen and r["n_prompt"] == 0)
    if n_prompt == 0:
        return [], tg["samples_ts"]
    pp = next(r for r in rows if r["n_prompt"] == n_prompt and r["n_gen"] == 0)
    return pp["samples_ts"], tg["samples_ts"]


# Float files are written directly (no llama-quantize) and run in their own type by both engines;
# a quantized file's float tensors (norms, embeddings) run in bfloat16 on ours.
FLOAT_FILES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}


def ours(binary, path, n_prompt, n_gen, threads, reps, extra, out_dir, dtype="bfloat16", probe=True):
    pp_flags = ["--prompt-lengths", str(n_prompt)] if n_prompt > 0 else []
    res = subprocess.run([binary, "--model-path", path, "--device", "cpu", "--dtype", dtype, "--threads",
                          str(threads)] + pp_flags + ["--gen-lengths", str(n_gen),
                          "--warmup", "1", "--repetitions", str(reps), "--max-seq-len", str(max(n_prompt, n_gen) + 8),
                          "--quiet", "--format", "json", "--output-dir", out_dir] + (["--roof-probe"] if probe else []) + extra,
                         capture_output=True, text=True, check=True)
    doc = json.loads(res.stdout)
    runs = {r["name"]: r for r in doc["runs"]}
    tg = runs[f"tg{n_gen}"]
    pp_samples = [rep["prefill_tokens_per_sec"] for rep in runs[f"pp{n_prompt}"]["repetitions"]] if n_prompt else []
    tg_samples = [rep["decode_tokens_per_sec"] for rep in tg["repetitions"]]
    # --roof-probe: decode's reads over the bandwidth measured right before and after each repetition.
    beside = [rep["decode_of_read_beside"] for rep in tg["repetitions"] if "decode_of_read_beside" in rep]
    return pp_samples, tg_samples, doc["model"]["weight_bytes"], beside


def read_roof(binary, threads):
    res = subprocess.run([binary, "--calibrate", "--threads", str(threads)], capture_output=True, text=True, check=True)
    m = re.search(r"read bandwidth: ([0-9.]+) GB/s", res.stdout + res.stderr)
    return float(m.group(1))


def fmt(samples):
    if not samples:
        return "-"
    return f"{statistics.median(samples):.3g} ({min(samples):.3g}-{max(samples):.3g})"


def ratio(a, b):
    return f"{statistics.median(a) / statistics.median(b):.2f}x" if a and b else "-"


def paired(rounds_a, rounds_b):
    """Median over rounds of the ratio of the two engines' medians in that round: the machine's
    slow drifts (this VM's read bandwidth moves by 1.5x over minutes) cancel within a round."""
    r = [statistics.median(a) / statistics.median(b) for a, b in zip(rounds_a, rounds_b) if a and b]
    return f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" if r else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp-bin", required=True, help="folder holding llama-bench and llama-quantize")
    ap.add_argument("--arch", default="tinyllama-1.1b", choices=["tinyllama-1.1b", "llama2-7b", "small-124m"])
    ap.add_argument("--types", default="Q8_0,Q4_0,Q4_K_M", help="llama-quantize type names")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of both engines")
    ap.add_argument("--reps", type=int, default=2, help="repetitions within one run of each engine")
    ap.add_argument("--prompt", type=int, default=512, help="0: generation only")
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--binary", default="build/speed_benchmark")
    ap.add_argument("--gguf-dir", default="/tmp/llamabench_gguf")
    ap.add_argument("--ours-args", default="", help="extra speed_benchmark arguments, split on spaces")
    ap.add_argument("--ours-alt-args", default=None,
                    help="if given, a second configuration of ours run in the same rounds (its own column)")
    ap.add_argument("--alt-binary", default=None,
                    help="the second configuration runs this binary (e.g. the previous build); implies --ours-alt-args ''")
    ap.add_argument("--llama-bench-args", default="", help="extra llama-bench arguments, split on spaces")
    args = ap.parse_args()

    os.makedirs(args.gguf_dir, exist_ok=True)
    f16 = os.path.join(args.gguf_dir, f"{args.arch}-F16.gguf")

    def need_f16():
        # Written only when a file to make (or F16 itself) needs it: Llama-2-7B's is 13.5 GB.
        if not os.path.exists(f16):
            write_gguf(f16 + ".part", args.arch, "float16")
            os.replace(f16 + ".part", f16)

    files = {}
    for t in args.types.split(","):
        path = os.path.join(args.gguf_dir, f"{args.arch}-{t}.gguf")
        if t == "F16" or (t not in ("BF16", "F32") and not os.path.exists(path)):
            need_f16()
        if t in ("BF16", "F32") and not os.path.exists(path):
            write_gguf(path + ".part", args.arch, FLOAT_FILES[t])
            os.replace(path + ".part", path)
        elif t != "F16" and not os.path.exists(path):
            subprocess.run([os.path.join(args.llama_cpp_bin, "llama-quantize"), f16, path + ".part", t],
                           check=True, capture_output=True)
            os.replace(path + ".part", path)
        files[t] = f16 if t == "F16" else path

    bench = os.path.join(args.llama_cpp_bin, "llama-bench")
    ours_extra = args.ours_args.split()
    if args.alt_binary is not None and args.ours_alt_args is None:
        args.ours_alt_args = ""
    alt_extra = args.ours_alt_args.split() if args.ours_alt_args is not None else None
    alt_binary = args.alt_binary or args.binary
    lb_extra = args.llama_bench_args.split()
    roofs = [read_roof(args.binary, args.threads)]
    samples = {t: {"lpp": [], "ltg": [], "opp": [], "otg": [], "app": [], "atg": [], "bytes": 0} for t in files}
    out_dir = os.path.join(args.gguf_dir, "ours_out")
    for rnd in range(args.rounds):
        for t, path in files.items():
            s = samples[t]
            order = ["llama", "ours"] if rnd % 2 == 0 else ["ours", "llama"]
            for who in order:
                if who == "llama":
                    pp, tg = llama_bench(bench, path, args.prompt, args.gen, args.threads, args.reps, lb_extra)
                    s["lpp"] += pp
                    s["ltg"] += tg
                    s.setdefault("ltg_rounds", []).append(tg)
                else:
                    dtype = FLOAT_FILES.get(t, "bfloat16")
                    roofs.append(read_roof(args.binary, args.threads))  # this minute's roof, beside the run
                    s.setdefault("roof_rounds", []).append(roofs[-1])
                    pp, tg, s["bytes"], beside = ours(args.binary, path, args.prompt, args.gen, args.threads,
                                                      args.reps, ours_extra, out_dir, dtype)
                    s.setdefault("beside", []).extend(beside)
                    s["opp"] += pp
                    s["otg"] += tg
                    s.setdefault("otg_rounds", []).append(tg)
                    if alt_extra is not None:
                        pp, tg, _, _ = ours(alt_binary, path, args.prompt, args.gen, args.threads, args.reps, alt_extra,
                                            out_dir, dtype, probe=False)  # a previous build may not have the flag
                        s["app"] += pp
                        s["atg"] += tg
                        s.setdefault("atg_rounds", []).append(tg)
            print(f"round {rnd + 1} {t}: llama-bench pp {fmt(s['lpp'][-args.reps:])} tg {s['ltg'][-1]:.2f}; "
                  f"ours pp {fmt(s['opp'][-args.reps:])} tg {s['otg'][-1]:.2f}", file=sys.stderr, flush=True)
    roofs.append(read_roof(args.binary, args.threads))
    roof = max(roofs)

    alt = alt_extra is not None
    alt_name = f"{args.alt_binary} {args.ours_alt_args}".strip() if args.alt_binary else args.ours_alt_args
    print(f"read roof: {roof:.1f} GB/s (the best of {len(roofs)} --calibrate runs: before, before each of our "
          f"runs, after; {min(roofs):.1f}-{max(roofs):.1f})")
    print(f"{args.arch}, {args.threads} threads, {args.rounds} alternating rounds x {args.reps} repetitions")
    head = (f"| file | pp{args.prompt} ours | pp{args.prompt} llama.cpp | ratio | tg{args.gen} ours | "
            f"tg{args.gen} llama.cpp | ratio | paired tg ratio |")
    if alt:
        head += f" pp ours {alt_name} | tg ours {alt_name} | paired tg ratio ours / {alt_name} |"
    head += " decode reads | of its minute's roof | of the bandwidth beside each repetition |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for t, s in samples.items():
        otg = statistics.median(s["otg"])
        gbs = s["bytes"] * otg / 1e9
        row = (f"| {args.arch} {t} | {fmt(s['opp'])} | {fmt(s['lpp'])} | {ratio(s['opp'], s['lpp'])} | {fmt(s['otg'])} | "
               f"{fmt(s['ltg'])} | {ratio(s['otg'], s['ltg'])} | {paired(s['otg_rounds'], s['ltg_rounds'])} |")
        if alt:
            row += f" {fmt(s['app'])} | {fmt(s['atg'])} | {paired(s['otg_rounds'], s['atg_rounds'])} |"
        row += f" {gbs:.1f} GB/s, {100 * gbs / roof:.0f}% of roof |"
        # Per run: our median tg of that run x bytes over the roof measured just before it.
        minute = [s["bytes"] * statistics.median(tg) / 1e9 / r for tg, r in zip(s["otg_rounds"], s["roof_rounds"])]
        row += f" {100 * statistics.median(minute):.0f}% ({100 * min(minute):.0f}-{100 * max(minute):.0f}) |"
        b = s.get("beside", [])
        row += f" {100 * statistics.median(b):.0f}% ({100 * min(b):.0f}-{100 * max(b):.0f}) |" if b else " - |"
        print(row)


if __name__ == "__main__":
    main()
