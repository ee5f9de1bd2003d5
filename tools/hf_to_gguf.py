#!/usr/bin/env python3
"""Writes a GGUF file from a Hugging Face Llama checkpoint directory (config.json
+ *.safetensors), as llama.cpp's convert_hf_to_gguf.py does for LlamaModel:
tensor names from gguf's TensorNameMap, the rows of q_proj and k_proj (weights
and biases) permuted by LlamaModel.permute for llama.cpp's RoPE layout, and
the llama.* hyperparameter keys. Storage F32 (default), F16, Q8_0 or Q4_0 for
2-D weights (norms and biases stay F32, as llama.cpp does).

No tokenizer is written (the fixture models have none).

Usage: python3 tools/hf_to_gguf.py MODEL_DIR OUT.gguf [--outtype f32|f16|q8_0|q4_0]
Example (the committed fixture):
  python3 tools/hf_to_gguf.py tests/fixtures/models/gqa_odd_bias_f16 tests/fixtures/gguf/gqa_odd_bias_f32.gguf
"""
import argparse
import glob
import json
import os
import struct

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype=np.uint8)
        dt = info["dtype"]
        if dt == "F32":
            a = raw.view("<f4")
        elif dt == "F16":
            a = raw.view("<f2").astype(np.float32)
        elif dt == "BF16":
            a = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name}: dtype {dt} not handled")
        out[name] = a.reshape(info["shape"])
    return out


# llama.cpp conversion/llama.py, LlamaModel.permute (numpy instead of torch).
def permute(weights, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "q8_0", "q4_0"])
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(args.model_dir, "config.json")))
    tensors = {}
    for p in sorted(glob.glob(os.path.join(args.model_dir, "*.safetensors"))):
        tensors.update(read_safetensors(p))
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    n_layer = cfg["num_hidden_layers"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    rope = cfg.get("rope_parameters") or {}
    theta = cfg.get("rope_theta", rope.get("rope_theta", 10000.0))

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name(os.path.basename(os.path.normpath(args.model_dir)))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(n_layer)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(head_dim)
    if head_dim != cfg["hidden_size"] // n_head:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[args.outtype]
    w.add_file_type(ftype)
    if cfg.get("bos_token_id") is not None:
        w.add_bos_token_id(cfg["bos_token_id"])
    if cfg.get("eos_token_id") is not None and not isinstance(cfg["eos_token_id"], list):
        w.add_eos_token_id(cfg["eos_token_id"])

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    for name in sorted(tensors):
        data = tensors[name].astype(np.float32)
        if name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute(data, n_head, n_head)
        if name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute(data, n_head, n_kv)
        new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise SystemExit(f"cannot map tensor {name}")
        data = np.ascontiguousarray(data)
        if data.ndim == 2 and args.outtype != "f32":
            qt = {"f16": T.F16, "q8_0": T.Q8_0, "q4_0": T.Q4_0}[args.outtype]
            if qt == T.F16:
                w.add_tensor(new_name, data.astype(np.float16))
            elif data.shape[1] % 32 == 0:
                w.add_tensor(new_name, gguf.quants.quantize(data, qt), raw_dtype=qt)
            else:
                w.add_tensor(new_name, data)
        else:
            w.add_tensor(new_name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
