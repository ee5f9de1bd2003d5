#!/usr/bin/env python3
"""Writes fuzz/seeds/gguf_model/tiny_llama.gguf: a whole llama model small
enough for libFuzzer's 64 KiB inputs (hidden 32, one layer, GQA, float and
quantized tensors, the llama2_style tokenizer), so that mutations start from
a file every loading step accepts. Uses the gguf package (pip install gguf)."""
import os

import gguf
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main():
    tok = gguf.GGUFReader(os.path.join(ROOT, "tests/fixtures/gguf/tokenizer_llama2_style.gguf"))
    tokens = [bytes(tok.fields["tokenizer.ggml.tokens"].parts[i]) for i in tok.fields["tokenizer.ggml.tokens"].data]
    scores = [float(tok.fields["tokenizer.ggml.scores"].parts[i][0]) for i in tok.fields["tokenizer.ggml.scores"].data]
    types = [int(tok.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in tok.fields["tokenizer.ggml.token_type"].data]
    vocab, hidden, ffn, heads, kv_heads = len(tokens), 32, 64, 2, 1
    head_dim = hidden // heads
    out = os.path.join(ROOT, "fuzz/seeds/gguf_model/tiny_llama.gguf")
    w = gguf.GGUFWriter(out, "llama")
    w.add_context_length(64)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    rng = np.random.default_rng(0)

    def add(name, shape, qtype):
        data = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        if qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, data)
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, data.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    Q = gguf.GGMLQuantizationType
    add("token_embd.weight", (vocab, hidden), Q.F16)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(hidden, np.float32))
    add("blk.0.attn_q.weight", (hidden, hidden), Q.Q8_0)
    add("blk.0.attn_k.weight", (kv_heads * head_dim, hidden), Q.Q4_0)
    add("blk.0.attn_v.weight", (kv_heads * head_dim, hidden), Q.F16)
    add("blk.0.attn_output.weight", (hidden, hidden), Q.Q8_0)
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(hidden, np.float32))
    add("blk.0.ffn_gate.weight", (ffn, hidden), Q.Q4_0)
    add("blk.0.ffn_up.weight", (ffn, hidden), Q.Q8_0)
    add("blk.0.ffn_down.weight", (hidden, ffn), Q.F16)
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
