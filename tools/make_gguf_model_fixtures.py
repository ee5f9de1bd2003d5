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
  tokenizer_llama2_style.gguf / tokenizer_llama3_style.gguf
                            vocabulary only, from tests/fixtures/tokenizers/
                            (tokenizer.model -> "llama", tokenizer.json -> "gpt2" llama-bpe)

Usage: python3 tools/make_gguf_model_fixtures.py [OUTDIR]
"""
import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_to_gguf  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "gguf")


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
    ids, margins = list(prompt), []
    with torch.no_grad():
        prompt_logits = m(torch.tensor([prompt])).logits[0].numpy().astype(np.float32)
        for _ in range(steps):
            logits = m(torch.tensor([ids])).logits[0, -1]
            top = torch.topk(logits, 2)
            margins.append(float(top.values[0] - top.values[1]))
            ids.append(int(top.indices[0]))
    json.dump({"magic": "llama-speedbench-gguf-greedy", "version": 1, "model": os.path.basename(model_dir),
               "weights": "Q8_0 dequantized (2-D weights with rows a multiple of 32)",
               "torch": torch.__version__, "prompt_ids": prompt, "greedy_ids": ids[len(prompt):],
               "greedy_min_margin": min(margins),
               "prompt_logits": [float(x) for x in prompt_logits.reshape(-1)]}, open(out_path, "w"), indent=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    conv = [("mha_tied_f32", "mha_tied_f32.gguf", "f32"), ("mha_tied_f32", "mha_tied_q8_0.gguf", "q8_0"),
            ("linear_mqa_f32", "linear_mqa_f32.gguf", "f32"),
            ("llama3_sharded_bf16", "llama3_sharded_bf16.gguf", "bf16")]
    for src, dst, outtype in conv:
        hf_to_gguf.convert(SimpleNamespace(model_dir=model(src), out=os.path.join(OUT, dst), outtype=outtype))
    q8_0_greedy(model("mha_tied_f32"), os.path.join(OUT, "mha_tied_q8_0.greedy.json"))
    tok = os.path.join(ROOT, "tokenizers")
    vocab_only(os.path.join(OUT, "tokenizer_llama2_style.gguf"),
               lambda w: hf_to_gguf.add_sentencepiece_vocab(w, os.path.join(tok, "llama2_style", "tokenizer.model"),
                                                            add_bos=True))
    vocab_only(os.path.join(OUT, "tokenizer_llama3_style.gguf"),
               lambda w: hf_to_gguf.add_byte_level_vocab(w, os.path.join(tok, "llama3_style", "tokenizer.json"),
                                                         os.path.join(tok, "llama3_style", "tokenizer_config.json")))


if __name__ == "__main__":
    main()
