#!/usr/bin/env python3
"""Puts llama.cpp in the same run as our engine (issue #6), optional, never a test dependency.

Writes a GGUF file of a Llama architecture with random normal(0, 0.02) weights
(norms 1) through the `gguf` package, then times llama.cpp on it through
`llama-cpp-python` (which builds llama.cpp from source at pip-install time)
like `llama-bench -p 512 -n 128`: pp512 = one 512-token batch from an empty
cache, tg128 = 128 single-token steps from an empty cache, median of N runs.
Then runs our `speed_benchmark` on random weights of the same architecture
and dtype, alternating with llama.cpp run by run so that both see the same
machine state, and prints one table with the ratio.

Weights are random in both but not bit-identical (ours come from the C++
generator); dense kernels' speed does not depend on the values.

    CMAKE_ARGS="-DGGML_NATIVE=ON" pip install llama-cpp-python gguf
    tools/llamacpp_compare.py --dtype float16 --threads 2 --runs 3
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np

ARCHS = {  # hidden, intermediate, layers, heads, kv_heads, vocab, rope_theta
    "tinyllama-1.1b": (2048, 5632, 22, 32, 4, 32000, 10000.0),
    "llama2-7b": (4096, 11008, 32, 32, 32, 32000, 10000.0),
    # Not a published model: a ~124M-parameter Llama for trying the tools on a busy machine.
    "small-124m": (768, 2048, 12, 12, 4, 32000, 10000.0),
}
BUILTIN = {"tinyllama-1.1b", "llama2-7b"}  # names speed_benchmark's --model-config knows


def hf_config(arch):
    """config.json fields of ARCHS[arch] (what speed_benchmark and transformers read)."""
    hidden, inter, layers, heads, kv_heads, vocab, theta = ARCHS[arch]
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": hidden,
            "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "vocab_size": vocab, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5, "rope_theta": theta, "hidden_act": "silu", "tie_word_embeddings": False,
            "bos_token_id": 1, "eos_token_id": 2}


def write_gguf(path, arch, dtype, seed=0):
    import gguf
    hidden, inter, layers, heads, kv_heads, vocab, theta = ARCHS[arch]
    head_dim = hidden // heads
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(f"random-{arch}")
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(1e-5)
    # A SentencePiece-style vocabulary: specials, the 256 byte tokens, fillers.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"tok{i}" for i in range(vocab - len(tokens))]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types([2, 3, 3] + [6] * 256 + [1] * (vocab - 259))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    rng = np.random.default_rng(seed)

    def matrix(name, rows, cols):
        a = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02)
        if dtype == "float32":
            w.add_tensor(name, a)
        elif dtype == "float16":
            w.add_tensor(name, a.astype(np.float16))
        else:  # bfloat16: the upper 16 bits, rounded to nearest even
            bits = a.view(np.uint32)
            bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            w.add_tensor(name, bits, raw_shape=(rows, cols), raw_dtype=gguf.GGMLQuantizationType.BF16)

    def ones(name, n):
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    matrix("token_embd.weight", vocab, hidden)
    for l in range(layers):
        ones(f"blk.{l}.attn_norm.weight", hidden)
        matrix(f"blk.{l}.attn_q.weight", heads * head_dim, hidden)
        matrix(f"blk.{l}.attn_k.weight", kv_heads * head_dim, hidden)
        matrix(f"blk.{l}.attn_v.weight", kv_heads * head_dim, hidden)
        matrix(f"blk.{l}.attn_output.weight", hidden, heads * head_dim)
        ones(f"blk.{l}.ffn_norm.weight", hidden)
        matrix(f"blk.{l}.ffn_gate.weight", inter, hidden)
        matrix(f"blk.{l}.ffn_up.weight", inter, hidden)
        matrix(f"blk.{l}.ffn_down.weight", hidden, inter)
    ones("output_norm.weight", hidden)
    matrix("output.weight", vocab, hidden)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llamacpp_run(llm, n_prompt, n_gen):
    """One pp (n_prompt tokens in one batch) and one tg (n_gen single steps), empty cache each."""
    prompt = [3 + (i * 7919) % 30000 for i in range(n_prompt)]
    llm.reset()
    llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else None
    t0 = time.perf_counter()
    llm.eval(prompt)
    pp = n_prompt / (time.perf_counter() - t0)
    llm.reset()
    llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else None
    t0 = time.perf_counter()
    for i in range(n_gen):
        llm.eval([3 + i])
    tg = n_gen / (time.perf_counter() - t0)
    return pp, tg


def ours_run(binary, arch, dtype, threads, n_prompt, n_gen):
    with tempfile.TemporaryDirectory() as out:
        config = arch
        if arch not in BUILTIN:  # pass the architecture as a config.json
            config = os.path.join(out, "config.json")
            with open(config, "w") as f:
                json.dump(hf_config(arch), f)
        res = subprocess.run([binary, "--load-format", "dummy", "--model-config", config, "--device", "cpu",
                              "--dtype", dtype, "--threads", str(threads), "--prompt-lengths", str(n_prompt),
                              "--gen-lengths", str(n_gen), "--warmup", "1", "--repetitions", "1",
                              "--max-seq-len", str(max(n_prompt, n_gen) + 8), "--quiet", "--format", "json",
                              "--output-dir", out], capture_output=True, text=True, check=True)
        runs = {r["name"]: r for r in json.loads(res.stdout)["runs"]}
        return runs[f"pp{n_prompt}"]["prefill_tokens_per_sec"], runs[f"tg{n_gen}"]["decode_tokens_per_sec"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="tinyllama-1.1b", choices=sorted(ARCHS))
    ap.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--binary", default="build/speed_benchmark")
    ap.add_argument("--gguf-dir", default=tempfile.gettempdir())
    ap.add_argument("--one-model-at-a-time", action="store_true",
                    help="free llama.cpp's model while ours runs (a 7B model twice does not fit in 24 GB)")
    args = ap.parse_args()
    from llama_cpp import Llama
    path = os.path.join(args.gguf_dir, f"random-{args.arch}-{args.dtype}.gguf")
    if not os.path.exists(path):
        print(f"writing {path} ...", flush=True)
        write_gguf(path, args.arch, args.dtype)
    def load():
        llm = Llama(model_path=path, n_ctx=max(args.prompt, args.gen) + 16, n_batch=args.prompt,
                    n_ubatch=args.prompt, n_threads=args.threads, n_threads_batch=args.threads, verbose=False,
                    use_mmap=True)
        llamacpp_run(llm, 16, 4)  # warm-up: pages in the weights
        return llm

    llm = load()
    lp, lt, op, ot = [], [], [], []
    for _ in range(args.runs):  # alternate, so both see the same machine state
        if llm is None:
            llm = load()
        p, t = llamacpp_run(llm, args.prompt, args.gen)
        lp.append(p)
        lt.append(t)
        if args.one_model_at_a_time:
            llm.close() if hasattr(llm, "close") else None
            del llm
            llm = None
        p, t = ours_run(args.binary, args.arch, args.dtype, args.threads, args.prompt, args.gen)
        op.append(p)
        ot.append(t)

    def fmt(v):
        return f"{statistics.median(v):.2f} (min {min(v):.2f}, max {max(v):.2f})"
    print(f"{args.arch} {args.dtype}, {args.threads} threads, medians of {args.runs} alternating runs")
    print(f"  pp{args.prompt}: llama.cpp {fmt(lp)}  ours {fmt(op)}  ours/llama.cpp "
          f"{statistics.median(op) / statistics.median(lp):.2f}x")
    print(f"  tg{args.gen}: llama.cpp {fmt(lt)}  ours {fmt(ot)}  ours/llama.cpp "
          f"{statistics.median(ot) / statistics.median(lt):.2f}x")


if __name__ == "__main__":
    main()
