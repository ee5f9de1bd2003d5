#!/usr/bin/env python3
"""Prints the table of scripts/gpu_check.sh from the files it wrote.

Decode: weight bytes per token x tokens/s over the device-to-device copy
bandwidth measured in the same run (issue #8's 80% target). Prefill: the
pp512 time over the time cuBLAS alone takes for the same GEMMs (BM_CublasPrefillGemms7B,
target <= 1.5x).
"""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def runs(results):
    return {r["name"]: r for r in results.get("runs", [])} if results else {}


def median(run, key):
    return run["stats"][key]["median"] if run else float("nan")


def main(out):
    bench = load(os.path.join(out, "bench_cuda.json")) or {"benchmarks": []}
    by_name = {b["name"]: b for b in bench["benchmarks"]}
    copy = by_name.get("BM_CopyDeviceToDevice/manual_time", {})
    copy_gbps = copy.get("bytes_per_second", 0) / 1e9
    gemm = by_name.get("BM_CublasPrefillGemms7B/512/manual_time", {})
    gemm_ms = gemm.get("real_time", float("nan"))
    for name, b in by_name.items():
        if b.get("error_occurred"):
            print(f"{name}: {b.get('error_message')}")
    print(f"device-to-device copy: {copy_gbps:.0f} GB/s (read + write)")
    print(f"cuBLAS GEMMs of a 512-token 7B prefill (f16): {gemm_ms:.2f} ms")
    for name, b in by_name.items():
        if name.startswith("BM_Gemv") and not b.get("error_occurred"):
            gbps = b.get("bytes_per_second", 0) / 1e9
            print(f"  {name}: {gbps:.0f} GB/s = {100 * gbps / copy_gbps if copy_gbps else 0:.0f}% of copy")
    print()
    header = f"{'run':<24}{'pp512 tok/s':>12}{'pp512 ms':>10}{'tg128 tok/s':>13}{'+-':>7}{'GB/token':>10}" \
             f"{'% of copy BW':>14}{'graph':>7}"
    print(header)
    print("-" * len(header))
    for name in ["llama2-7b-f16", "llama2-7b-bf16", "llama2-7b-f16-nograph", "tinyllama-f16", "tinyllama-bf16",
                 "tinyllama-f32", "tinyllama-f16-depth"]:
        res = load(os.path.join(out, name + ".json"))
        if not res:
            print(f"{name:<24} (no result: see {name}.err)")
            continue
        rs = runs(res)
        pp = rs.get("pp512")
        tg = next((r for n, r in rs.items() if n.startswith("tg128")), None)
        wbytes = res["memory"]["weight_bytes"]
        bw = res.get("gpu", {}).get("copy_bandwidth_gbps") or copy_gbps
        tps = median(tg, "decode_tokens_per_sec")
        frac = 100 * wbytes * tps / (bw * 1e9) if bw else float("nan")
        pp_ms = 1e3 * median(pp, "ttft_s") if pp else float("nan")
        pp_tps = median(pp, "prefill_tokens_per_sec") if pp else float("nan")
        sd = tg["stats"]["decode_tokens_per_sec"]["stddev"] if tg else float("nan")
        print(f"{name:<24}{pp_tps:>12.1f}{pp_ms:>10.2f}{tps:>13.1f}{sd:>7.1f}{wbytes / 1e9:>10.2f}{frac:>13.0f}%"
              f"{str(res.get('gpu', {}).get('cuda_graphs', '?')):>7}")
    r7 = runs(load(os.path.join(out, "llama2-7b-f16.json")))
    if "pp512" in r7 and gemm_ms == gemm_ms:
        ratio = 1e3 * median(r7["pp512"], "ttft_s") / gemm_ms
        print(f"\n7B f16 pp512 time / cuBLAS GEMMs alone: {ratio:.2f}x (target <= 1.5x)")
    v = load(os.path.join(out, "tinyllama-f32-verify.json"))
    if v and "verify" in v:
        print(f"verify (TinyLlama f32, cuda vs cpu): {v['verify']['tokens_agreeing']} of "
              f"{v['verify']['tokens_compared']} greedy tokens agree")
    p = load(os.path.join(out, "tinyllama-profile.json"))
    if p and "profile_overhead" in p:
        print(f"profiler overhead (TinyLlama f16 decode): {p['profile_overhead']['overhead_pct']:.2f}%")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gpu_check_out")
