#!/usr/bin/env python3
"""Writes the GGUF fixtures of the model-loading tests (tests/model/gguf_model_test.cc)
with tools/hf_to_gguf.py (the `gguf` package's writer, llama.cpp's q/k
permutation) from the HF fixture models, and the GGUF tokenizer fixtures:

  mha_tied_f32.gguf         F32, tied embeddings, its tokenizer.model as the "llama" vocabulary
  mha_tied_q8_0.gguf        the same with every 2-D weight Q8_0
  mha_tied_q8_0.greedy.json transformers on the Q8_0-dequantized weights: logits of
                            every prompt position and 32 greedy tokens
  linear_mqa_f32.gguf       linear rope scaling (llama.rope.scaling.*), MQA
  llama3_sharded_bf16.gguf  BF16, llama3 rope as rope_freqs.weight, tied
  all_quant_types.gguf      a 1-layer hidden-256 model with one tensor of each quantized type
                            (Q8_0, Q4_K/Q5_K/Q6_K on permuted q/k/v, Q4_0, Q4_1, Q5_0, Q5_1), F16 output,
                            Llama 3.1's rope (rope_freqs.weight)
  all_quant_types.greedy.json  transformers (float64) on its dequantized weights
  tokenizer_llama2_style.gguf / tokenizer_llama3_style.gguf
                            vocabulary only, from tests/fixtures/tokenizers/
                            (tokenizer.model -> "llama", tokenizer.json -> "gpt2" llama-bpe)
  q4_k_m_llama.gguf         a 2-layer hidden-256 Llama with its own SentencePiece vocabulary,
                            F32 GGUF -> llama.cpp's `llama-quantize ... Q4_K_M` (its mix of
                            Q4_K and Q6_K: the K-quant file people download, made by the
                            tool that makes them; needs --llama-quantize PATH)
  q4_k_m_llama.greedy.json  transformers (float64) on its dequantized weights, and the
                            logits of the unquantized weights (the KL test's float32 side),
                            a text and its SentencePiece ids

Usage: python3 tools/make_gguf_model_fixtures.py [OUTDIR] [--llama-quantize PATH] [--only NAME]
  (--only q4_k_m rewrites that fixture alone; without --llama-quantize it is not rewritten)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_to_gguf  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def model(name):
    return os.path.join(ROOT, "models", name)


def vocab_only(path, add_vocab):
    w = gguf.GGUFWriter(path, "llama")
    add_vocab(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def q8_0_greedy(model_dir, out_path, steps=32):
    """Greedy tokens of transformers with every weight hf_to_gguf stores as
    Q8_0 (2-D, rows a multiple of 32) replaced by its dequantized values. Rows
    are quantized one by one, so llama.cpp's q/k row permutation commutes with
    quantization and the dequantized HF-layout weights are exact."""
    import torch
    from transformers import LlamaForCausalLM
    from safetensors.numpy import load_file
    m = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim == 2 and p.shape[1] % 32 == 0:
                w = p.detach().numpy().astype(np.float32)
                deq = gguf.quants.dequantize(gguf.quants.quantize(w, T.Q8_0), T.Q8_0)
                p.copy_(torch.from_numpy(np.ascontiguousarray(deq, dtype=np.float32)))
    ref = load_file(os.path.join(ROOT, "reference", os.path.basename(model_dir) + ".safetensors"))
    prompt = [int(x) for x in ref["prompt0.ids"]]
    prompt_logits, greedy, margin = logits_and_greedy(m, prompt, steps)
    prompt_logits = prompt_logits.astype(np.float32)
    json.dump({"magic": "llama-speedbench-gguf-greedy", "version": 1, "model": os.path.basename(model_dir),
               "weights": "Q8_0 dequantized (2-D weights with rows a multiple of 32)",
               "torch": torch.__version__, "prompt_ids": prompt, "greedy_ids": greedy,
               "greedy_min_margin": margin,
               "prompt_logits": [float(x) for x in prompt_logits.reshape(-1)]}, open(out_path, "w"), indent=1)


# llama.cpp's LlamaModel.permute and its inverse (stored rows -> HF rows).
def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def transformers_on(cfg, weights):
    """A float64 LlamaForCausalLM holding `weights` (HF names; the rotary buffers are its own)."""
    import torch
    from transformers import LlamaForCausalLM
    m = LlamaForCausalLM(cfg).double().eval()
    missing, unexpected = m.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return m


def logits_and_greedy(m, prompt, steps):
    """The logits of every prompt position, `steps` greedy tokens, and their smallest top-2 margin."""
    import torch
    ids, margins = list(prompt), []
    with torch.no_grad():
        logits = m(torch.tensor([prompt])).logits[0].numpy()
        for _ in range(steps):
            last = m(torch.tensor([ids])).logits[0, -1]
            top = torch.topk(last, 2)
            margins.append(float(top.values[0] - top.values[1]))
            ids.append(int(top.indices[0]))
    return logits, ids[len(prompt):], min(margins)


def random_k_blocks(rng, rows, cols, qtype, d, dmin=0.0):
    """Random K-quant blocks with every scale byte random and the super-block
    scales set to small float16 values (the gguf package has no K-quant
    quantizer; random d/dmin bytes would be NaN or huge)."""
    block_bytes = {T.Q4_K: 144, T.Q5_K: 176, T.Q6_K: 210}[qtype]
    b = rng.integers(0, 256, size=(rows, cols // 256, block_bytes), dtype=np.uint8)
    if qtype == T.Q6_K:  # ql[128] qh[64] scales[16] d
        b[..., 208:210] = np.array([d], dtype="<f2").view(np.uint8)
    else:  # d dmin scales[12] (qh[32]) qs[128]
        b[..., 0:2] = np.array([d], dtype="<f2").view(np.uint8)
        b[..., 2:4] = np.array([dmin], dtype="<f2").view(np.uint8)
    return b.reshape(rows, -1)


def all_quant_types(path, ref_path):
    """A 1-layer Llama (hidden 256 so that K-quant super-blocks fit a row)
    with one tensor of every supported quantized type, q and k permuted as the
    converter does, and transformers' float64 logits and greedy tokens on the
    dequantized weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    rng = np.random.default_rng(16)
    hidden, inter, vocab, n_head, n_kv, hd = 256, 256, 32, 2, 1, 128
    normal = lambda *shape: (rng.standard_normal(shape) * 0.02).astype(np.float32)  # noqa: E731
    hf, stored = {}, {}  # HF name -> float64 weights; GGUF name -> (array, raw type or None)

    def legacy(hf_name, gguf_name, w, qtype, n_perm=None):
        q = gguf.quants.quantize(w, qtype)
        hf[hf_name] = gguf.quants.dequantize(q, qtype).astype(np.float64)
        stored[gguf_name] = (hf_to_gguf.permute(w, n_perm, n_perm) if n_perm else w, qtype)

    def k_quant(hf_name, gguf_name, rows, qtype, d, dmin, n_perm):
        blocks = random_k_blocks(rng, rows, hidden, qtype, d, dmin)  # as stored (permuted rows)
        deq = gguf.quants.dequantize(blocks, qtype).astype(np.float64)
        hf[hf_name] = unpermute(deq, n_perm) if n_perm else deq
        stored[gguf_name] = (blocks, qtype)

    legacy("model.embed_tokens.weight", "token_embd.weight", normal(vocab, hidden), T.Q8_0)
    p = "model.layers.0."
    k_quant(p + "self_attn.q_proj.weight", "blk.0.attn_q.weight", n_head * hd, T.Q4_K, 6e-5, 4e-4, n_head)
    k_quant(p + "self_attn.k_proj.weight", "blk.0.attn_k.weight", n_kv * hd, T.Q5_K, 3e-5, 4e-4, n_kv)
    k_quant(p + "self_attn.v_proj.weight", "blk.0.attn_v.weight", n_kv * hd, T.Q6_K, 1.2e-5, 0, None)  # v: not permuted
    legacy(p + "self_attn.o_proj.weight", "blk.0.attn_output.weight", normal(hidden, n_head * hd), T.Q4_0)
    legacy(p + "mlp.gate_proj.weight", "blk.0.ffn_gate.weight", normal(inter, hidden), T.Q4_1)
    legacy(p + "mlp.up_proj.weight", "blk.0.ffn_up.weight", normal(inter, hidden), T.Q5_0)
    legacy(p + "mlp.down_proj.weight", "blk.0.ffn_down.weight", normal(hidden, inter), T.Q5_1)
    out = normal(vocab, hidden).astype(np.float16)
    hf["lm_head.weight"] = out.astype(np.float64)
    stored["output.weight"] = (out, None)
    for hf_name, gguf_name in [(p + "input_layernorm.weight", "blk.0.attn_norm.weight"),
                               (p + "post_attention_layernorm.weight", "blk.0.ffn_norm.weight"),
                               ("model.norm.weight", "output_norm.weight")]:
        n = (1 + normal(hidden) * 5).astype(np.float32)
        hf[hf_name] = n.astype(np.float64)
        stored[gguf_name] = (n, None)

    w = gguf.GGUFWriter(path, "llama")
    w.add_name("all_quant_types")
    w.add_context_length(131072)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(inter)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    # Llama 3.1's rope (theta 500000, llama3 factor 8 over 8192) as the
    # converter writes it: divisors in rope_freqs.weight, some in the smooth band.
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}
    w.add_rope_freq_base(500000.0)
    w.add_tensor("rope_freqs.weight", hf_to_gguf.llama3_rope_factors(rope, 500000.0, hd))
    w.add_layer_norm_rms_eps(1e-5)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_eot_token_id(30)  # an instruct file's end-of-turn and end-of-message ids
    w.add_eom_token_id(31)
    for name, (a, qtype) in stored.items():
        if qtype in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
            w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
        elif qtype is not None:
            w.add_tensor(name, a, raw_dtype=qtype)
        else:
            w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=1, num_attention_heads=n_head,
                      num_key_value_heads=n_kv, head_dim=hd, vocab_size=vocab, max_position_embeddings=131072,
                      rms_norm_eps=1e-5, rope_theta=500000.0, rope_scaling=rope, tie_word_embeddings=False)
    m = transformers_on(cfg, hf)
    prompt = [int(x) for x in rng.integers(0, vocab, size=8)]
    logits, greedy, margin = logits_and_greedy(m, prompt, 16)
    json.dump({"magic": "llama-speedbench-gguf-greedy", "version": 1, "model": "all_quant_types",
               "weights": "every quantized type, dequantized; transformers in float64", "torch": torch.__version__,
               "prompt_ids": prompt, "greedy_ids": greedy, "greedy_min_margin": margin,
               "prompt_logits": [float(x) for x in logits.reshape(-1)]}, open(ref_path, "w"), indent=1)


def q4_k_m(llama_quantize, path, ref_path):
    """A Q4_K_M file as people get them: random weights (make_fixtures.py's
    spread, 0.08, so next-token distributions are far from uniform) of a
    2-layer Llama whose widths are whole 256-element super-blocks, with
    mha_tied_f32's SentencePiece vocabulary, converted to F32 and quantized by
    llama.cpp's llama-quantize (Q4_K for most matrices, Q6_K for output and for
    layer 1's attn_v and ffn_down). References: transformers in float64 on the
    dequantized weights (q/k rows un-permuted), and on the original weights."""
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    sp_model = os.path.join(model("mha_tied_f32"), "tokenizer.model")
    vocab = spm.SentencePieceProcessor(model_file=sp_model).vocab_size()
    cfg = LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=64, vocab_size=vocab, max_position_embeddings=256,
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(1234)
    m = LlamaForCausalLM(cfg).eval()
    gen = torch.Generator().manual_seed(int(os.environ.get("Q4_K_M_SEED", 4098)))
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.rand(p.shape, generator=gen) + 0.5 if "norm" in name
                    else torch.randn(p.shape, generator=gen) * 0.08)
    top = tempfile.mkdtemp()
    tmp = os.path.join(top, "q4_k_m_llama")  # general.name
    try:
        m.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(sp_model, os.path.join(tmp, "tokenizer.model"))
        f32 = os.path.join(tmp, "f32.gguf")
        hf_to_gguf.convert(SimpleNamespace(model_dir=tmp, out=f32, outtype="f32"))
        subprocess.run([llama_quantize, f32, path, "Q4_K_M"], check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(top)

    reader = gguf.GGUFReader(path)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    hf_of = {names.get_name(k, try_suffixes=(".weight",)): k for k in m.state_dict()}
    deq, types = {}, {}
    for t in reader.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape([int(x) for x in t.shape[::-1]])
        hf_name = hf_of[t.name]
        if hf_name.endswith("q_proj.weight"):
            a = unpermute(a, cfg.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            a = unpermute(a, cfg.num_key_value_heads)
        deq[hf_name] = a
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    assert types.get("Q4_K") and types.get("Q6_K"), types

    text = "once upon a time the quick brown fox wanted to run fast on every machine it met"
    ids = [1] + spm.SentencePieceProcessor(model_file=sp_model).encode(text)
    original = m.double()
    with torch.no_grad():
        original_logits = original(torch.tensor([ids])).logits[0].numpy()
    logits, greedy, margin = logits_and_greedy(transformers_on(cfg, deq), ids, 16)
    # The yardstick: KL of the same model with every 2-D weight Q4_0 (the gguf
    # package's quantizer), which a Q4_K_M file should beat.
    def kl(p_logits, q_logits):
        lp = p_logits - np.log(np.exp(p_logits - p_logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - p_logits.max(-1, keepdims=True)
        lq = q_logits - np.log(np.exp(q_logits - q_logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - q_logits.max(-1, keepdims=True)
        return (np.exp(lp) * (lp - lq)).sum(-1)
    q4_0 = LlamaForCausalLM(cfg).double().eval()
    q4_0.load_state_dict({k: torch.from_numpy(gguf.quants.dequantize(gguf.quants.quantize(
        v.float().numpy(), T.Q4_0), T.Q4_0).astype(np.float64)) if v.ndim == 2 else v
        for k, v in original.state_dict().items()})
    with torch.no_grad():
        q4_0_logits = q4_0(torch.tensor([ids])).logits[0].numpy()
    kl_k, kl_0 = kl(original_logits, logits), kl(original_logits, q4_0_logits)
    json.dump({"magic": "llama-speedbench-gguf-greedy", "version": 1, "model": "q4_k_m_llama",
               "kl_q4_k_m_mean": float(kl_k.mean()), "kl_q4_k_m_max": float(kl_k.max()),
               "kl_q4_0_mean": float(kl_0.mean()), "kl_q4_0_max": float(kl_0.max()),
               "weights": "llama-quantize Q4_K_M, dequantized by the gguf package; transformers in float64",
               "tensor_types": types, "torch": torch.__version__, "text": text, "prompt_ids": ids,
               "greedy_ids": greedy, "greedy_min_margin": margin,
               "prompt_logits": [float(x) for x in logits.reshape(-1)],
               "original_prompt_logits": [float(x) for x in original_logits.reshape(-1)]},
              open(ref_path, "w"), indent=1)
    print(f"q4_k_m_llama: types {types}, greedy min margin {margin:.4f}, KL mean/max "
          f"Q4_K_M {kl_k.mean():.3e}/{kl_k.max():.3e}, all-Q4_0 {kl_0.mean():.3e}/{kl_0.max():.3e}")


def main():
    args = sys.argv[1:]
    llama_quantize = only = None
    if "--llama-quantize" in args:
        i = args.index("--llama-quantize")
        llama_quantize = args[i + 1]
        del args[i:i + 2]
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1]
        del args[i:i + 2]
    out = args[0] if args else os.path.join(ROOT, "gguf")
    os.makedirs(out, exist_ok=True)
    if llama_quantize:
        q4_k_m(llama_quantize, os.path.join(out, "q4_k_m_llama.gguf"), os.path.join(out, "q4_k_m_llama.greedy.json"))
    else:
        print("q4_k_m_llama.gguf not rewritten: pass --llama-quantize PATH", file=sys.stderr)
    if only == "q4_k_m":
        return
    conv = [("mha_tied_f32", "mha_tied_f32.gguf", "f32"), ("mha_tied_f32", "mha_tied_q8_0.gguf", "q8_0"),
            ("linear_mqa_f32", "linear_mqa_f32.gguf", "f32"),
            ("llama3_sharded_bf16", "llama3_sharded_bf16.gguf", "bf16")]
    for src, dst, outtype in conv:
        hf_to_gguf.convert(SimpleNamespace(model_dir=model(src), out=os.path.join(out, dst), outtype=outtype))
    q8_0_greedy(model("mha_tied_f32"), os.path.join(out, "mha_tied_q8_0.greedy.json"))
    all_quant_types(os.path.join(out, "all_quant_types.gguf"), os.path.join(out, "all_quant_types.greedy.json"))
    tok = os.path.join(ROOT, "tokenizers")
    vocab_only(os.path.join(out, "tokenizer_llama2_style.gguf"),
               lambda w: hf_to_gguf.add_sentencepiece_vocab(w, os.path.join(tok, "llama2_style", "tokenizer.model"),
                                                            add_bos=True))
    vocab_only(os.path.join(out, "tokenizer_llama3_style.gguf"),
               lambda w: hf_to_gguf.add_byte_level_vocab(w, os.path.join(tok, "llama3_style", "tokenizer.json"),
                                                         os.path.join(tok, "llama3_style", "tokenizer_config.json")))


if __name__ == "__main__":
    main()
