#!/usr/bin/env python3
"""Three engines in one run (issue #13, part 5): ours, PyTorch eager and llama.cpp, alternating run by run.

All three get the same Llama architecture (tools/llamacpp_compare.py's ARCHS),
the same weight dtype, the same thread count and random normal(0, 0.02)
weights (norms 1); the values differ between engines, the speed of dense
kernels does not depend on them.

  ours       build/speed_benchmark --load-format dummy (a subprocess per run,
             which does its own warm-up pass of each test, as
             tools/llamacpp_compare.py runs it)
  torch      transformers' LlamaForCausalLM from a LlamaConfig, built on the
             meta device in the target dtype and then filled in place (a 7B
             model never exists in float32), model.eval(), torch.inference_mode(),
             torch.set_num_threads(threads), the config's default attention
             (sdpa). pp = one forward of --prompt random ids from an empty
             DynamicCache (logits of the last position only, as generate()
             asks for in prefill); tg = --gen one-token steps from an empty
             cache, each feeding the argmax of the previous logits.
  llamacpp   llama-cpp-python on the GGUF that llamacpp_compare.write_gguf
             writes (pp = one batch, tg = single-token steps, empty cache each,
             like llama-bench).

Each run does llama.cpp, then ours, then PyTorch (the order of --engines), and
the table gives medians over --runs with min and max. With
--one-model-at-a-time only one engine's weights are alive at any moment (a
Llama-2-7B in 16 bits is 13.5 GB; two do not fit in 24 GB): llama.cpp's and
PyTorch's models are built before and freed after each of their runs (with a
warm-up each time), ours is a subprocess anyway.

    CMAKE_ARGS="-DGGML_NATIVE=ON" pip install llama-cpp-python gguf   # optional
    tools/peers_compare.py --arch tinyllama-1.1b --dtype bfloat16 --threads 2 --runs 3
    tools/peers_compare.py --engines ours,torch ...                   # without llama.cpp
"""
import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llamacpp_compare import ARCHS, llamacpp_run, ours_run, write_gguf  # noqa: E402

ENGINES = ("llamacpp", "ours", "torch")  # run order within one round
LABEL = {"ours": "ours (speed_benchmark)", "torch": "PyTorch eager", "llamacpp": "llama.cpp"}
ISA_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
             "amx_fp16", "amx_int8")


def cpu_description():
    """'model name' of /proc/cpuinfo, logical CPUs, and the matrix-related ISA flags present."""
    name, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name is None:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    name = name or platform.processor() or "unknown CPU"
    present = [f for f in ISA_FLAGS if f in flags]
    return f"{name}, {os.cpu_count()} logical CPUs, flags: {' '.join(present) or 'none of ' + '/'.join(ISA_FLAGS)}"


# ---------------------------------------------------------------- PyTorch eager

def torch_build(arch, dtype, seed=0):
    """LlamaForCausalLM of ARCHS[arch] in `dtype`, random normal(0, 0.02), norms 1, eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    hidden, inter, layers, heads, kv_heads, vocab, theta = ARCHS[arch]
    common = dict(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
                  max_position_embeddings=4096, rms_norm_eps=1e-5, hidden_act="silu",
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    try:  # transformers >= 5: RoPE settings live in rope_parameters
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": theta}, **common)
    except TypeError:
        cfg = LlamaConfig(rope_theta=theta, **common)
    tdtype = getattr(torch, dtype)
    with torch.device("meta"):  # no storage yet: nothing is materialized in float32
        try:
            model = LlamaForCausalLM._from_config(cfg, dtype=tdtype)
        except TypeError:
            model = LlamaForCausalLM._from_config(cfg, torch_dtype=tdtype)
    model.to_empty(device="cpu")  # uninitialized storage in the target dtype
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dtype != tdtype:
                raise RuntimeError(f"{name} is {p.dtype}, expected {tdtype}")
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
        # Buffers (RoPE inverse frequencies) were on meta: compute them again on the CPU.
        rope = model.model.rotary_emb
        fresh = type(rope)(config=model.config)
        for name, b in fresh.named_buffers():
            getattr(rope, name.split(".")[-1]).copy_(b)  # to_empty kept the float32 buffers
    model.eval()
    return model


def torch_run(model, n_prompt, n_gen, seed=0):
    """One pp (n_prompt random ids, one forward, empty cache) and one tg (n_gen greedy steps, empty cache)."""
    import torch
    from transformers import DynamicCache
    import inspect
    vocab = model.config.vocab_size
    # transformers 5.x renamed forward's past_key_values to cache (the old name warns from 5.24 on).
    kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (1, n_prompt), generator=gen)
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        t0 = time.perf_counter()
        model(input_ids=ids, use_cache=True, logits_to_keep=1, **{kw: cache})
        pp = n_prompt / (time.perf_counter() - t0)
        assert cache.get_seq_length() == n_prompt, cache.get_seq_length()
        del cache
        cache = DynamicCache(config=model.config)
        tok = ids[:, :1]
        t0 = time.perf_counter()
        for _ in range(n_gen):
            out = model(input_ids=tok, use_cache=True, **{kw: cache})
            tok = out.logits[:, -1:].argmax(dim=-1)
        tok.item()  # the last step's result exists (CPU ops are synchronous anyway)
        tg = n_gen / (time.perf_counter() - t0)
        assert cache.get_seq_length() == n_gen, cache.get_seq_length()  # every step used the cache
    return pp, tg


# ---------------------------------------------------------------- driver

class Engine:
    """Builds, warms, runs and frees one engine's model."""

    def __init__(self, kind, args, gguf_path=None):
        self.kind, self.args, self.gguf_path, self.model = kind, args, gguf_path, None

    def load(self):
        a = self.args
        if self.kind == "llamacpp" and self.model is None:
            from llama_cpp import Llama
            self.model = Llama(model_path=self.gguf_path, n_ctx=max(a.prompt, a.gen) + 16, n_batch=a.prompt,
                               n_ubatch=a.prompt, n_threads=a.threads, n_threads_batch=a.threads,
                               verbose=False, use_mmap=True)
            llamacpp_run(self.model, 16, 4)  # warm-up: pages in the weights
        elif self.kind == "torch" and self.model is None:
            self.model = torch_build(a.arch, a.dtype, a.seed)
            # Warm-up: a full-length prompt pass (oneDNN builds its kernels per shape) and a few steps.
            torch_run(self.model, a.prompt, 4, a.seed + 1)

    def free(self):
        if self.model is not None:
            if hasattr(self.model, "close"):
                self.model.close()
            self.model = None
            gc.collect()

    def run(self):
        a = self.args
        if self.kind == "ours":
            return ours_run(a.binary, a.arch, a.dtype, a.threads, a.prompt, a.gen)
        self.load()
        if self.kind == "llamacpp":
            return llamacpp_run(self.model, a.prompt, a.gen)
        return torch_run(self.model, a.prompt, a.gen, a.seed)


def versions():
    import importlib.metadata as md
    out = []
    for pkg in ("torch", "transformers", "llama-cpp-python", "numpy"):
        try:
            out.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            out.append(f"{pkg} absent")
    return ", ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="tinyllama-1.1b", choices=sorted(ARCHS))
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--engines", default="ours,torch,llamacpp",
                    help="comma-separated subset of ours,torch,llamacpp")
    ap.add_argument("--binary", default="build/speed_benchmark")
    ap.add_argument("--gguf-dir", default=tempfile.gettempdir())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--one-model-at-a-time", action="store_true",
                    help="only one engine's weights alive at a time (a 7B model twice does not fit in 24 GB)")
    ap.add_argument("--json", metavar="PATH", help="also write every run's numbers here")
    args = ap.parse_args()
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in wanted if e not in ENGINES]
    if bad or not wanted:
        ap.error(f"--engines: unknown {bad}; choose from {','.join(ENGINES)}")
    kinds = [e for e in ENGINES if e in wanted]
    if "ours" in kinds and not os.access(args.binary, os.X_OK):
        ap.error(f"{args.binary} is not an executable (build it, or pass --binary)")
    if "torch" in kinds:
        import torch
        torch.set_num_threads(args.threads)
    gguf_path = None
    if "llamacpp" in kinds:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            ap.error("llama-cpp-python is not installed; pip install it or pass --engines ours,torch")
        gguf_path = os.path.join(args.gguf_dir, f"random-{args.arch}-{args.dtype}.gguf")
        if not os.path.exists(gguf_path):
            print(f"writing {gguf_path} ...", file=sys.stderr, flush=True)
            write_gguf(gguf_path, args.arch, args.dtype, args.seed)

    engines = [Engine(k, args, gguf_path) for k in kinds]
    if not args.one_model_at_a_time:
        for e in engines:
            e.load()
    results = {k: {"pp": [], "tg": []} for k in kinds}
    for r in range(args.runs):  # alternate, so that all engines see the same machine state
        for e in engines:
            t0 = time.perf_counter()
            pp, tg = e.run()
            if args.one_model_at_a_time:
                e.free()
            results[e.kind]["pp"].append(pp)
            results[e.kind]["tg"].append(tg)
            print(f"run {r + 1}/{args.runs} {e.kind}: pp{args.prompt} {pp:.2f} tok/s, tg{args.gen} {tg:.2f} tok/s"
                  f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    for e in engines:
        e.free()

    med = {k: {m: statistics.median(v[m]) for m in ("pp", "tg")} for k, v in results.items()}

    def cell(k, m):
        v = results[k][m]
        return f"{med[k][m]:.2f}" if len(v) == 1 else f"{med[k][m]:.2f} ({min(v):.2f}-{max(v):.2f})"

    print(f"{args.arch} {args.dtype}, {args.threads} threads, pp{args.prompt} / tg{args.gen}, medians of "
          f"{args.runs} alternating run(s) (min-max){', one model at a time' if args.one_model_at_a_time else ''}")
    print(f"CPU: {cpu_description()}")
    print(f"{versions()}; python {platform.python_version()}")
    print()
    print(f"| engine | pp{args.prompt} tok/s | tg{args.gen} tok/s |")
    print("|---|---|---|")
    for k in ("ours", "torch", "llamacpp"):
        if k in results:
            print(f"| {LABEL[k]} | {cell(k, 'pp')} | {cell(k, 'tg')} |")
    if "ours" in results:
        for k in ("torch", "llamacpp"):
            if k in results:
                print(f"| ours / {LABEL[k]} | {med['ours']['pp'] / med[k]['pp']:.2f}x | "
                      f"{med['ours']['tg'] / med[k]['tg']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"arch": args.arch, "dtype": args.dtype, "threads": args.threads, "prompt": args.prompt,
                       "gen": args.gen, "runs": args.runs, "one_model_at_a_time": args.one_model_at_a_time,
                       "cpu": cpu_description(), "versions": versions(), "results": results,
                       "medians": med}, f, indent=1)


if __name__ == "__main__":
    main()
