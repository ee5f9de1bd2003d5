#!/usr/bin/env python3
"""Writes a GGUF file from a Hugging Face Llama checkpoint directory (config.json
+ *.safetensors), as llama.cpp's convert_hf_to_gguf.py does for LlamaModel:
tensor names from gguf's TensorNameMap, the rows of q_proj and k_proj (weights
and biases) permuted by LlamaModel.permute for llama.cpp's RoPE layout, and
the llama.* hyperparameter keys. Storage F32 (default), F16, Q8_0 or Q4_0 for
2-D weights (norms and biases stay F32, as llama.cpp does).

Rope scaling as llama.cpp writes it: linear as llama.rope.scaling.type +
factor, llama3 as per-frequency divisors in the tensor rope_freqs.weight.
The tokenizer is written when the directory has one, as llama.cpp's
converter does: tokenizer.model as the "llama" vocabulary (pieces, scores,
token types, add_space_prefix, remove_extra_whitespaces, and the normalizer's
precompiled_charsmap when it has one), a byte-level tokenizer.json as "gpt2" (tokens,
merges, pre "llama-bpe"), with bos/eos ids and add_bos_token.

Usage: python3 tools/hf_to_gguf.py MODEL_DIR OUT.gguf [--outtype f32|f16|bf16|q8_0|q4_0]
Example (the committed fixture):
  python3 tools/hf_to_gguf.py tests/fixtures/models/gqa_odd_bias_f16 tests/fixtures/gguf/gqa_odd_bias_f32.gguf
"""
import argparse
import glob
import json
import math
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


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _proto_fields(b):
    """(field, wire type, value) of one protobuf message, wire format only."""
    i, out = 0, []
    while i < len(b):
        tag, i = _varint(b, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = struct.unpack("<f", b[i:i + 4])[0], i + 4
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        else:
            raise SystemExit(f"unexpected protobuf wire type {wire}")
        out.append((field, wire, v))
    return out


def read_sentencepiece(path):
    """Pieces (text, score, type) and the normalizer settings of a
    tokenizer.model, read from sentencepiece_model.proto's wire format
    (ModelProto.pieces = 1, normalizer_spec = 3; SentencePiece piece = 1,
    score = 2, type = 3; NormalizerSpec precompiled_charsmap = 2,
    add_dummy_prefix = 3, remove_extra_whitespaces = 4, both default true)."""
    pieces, norm = [], {2: b"", 3: True, 4: True}
    for field, _, v in _proto_fields(open(path, "rb").read()):
        if field == 1:
            piece = {1: b"", 2: 0.0, 3: 1}
            for f, _, x in _proto_fields(v):
                piece[f] = x
            pieces.append((piece[1].decode("utf-8"), float(piece[2]), int(piece[3])))
        elif field == 3:
            for f, _, x in _proto_fields(v):
                norm[f] = x
    return pieces, {"add_dummy_prefix": bool(norm[3]), "remove_extra_whitespaces": bool(norm[4]),
                    "precompiled_charsmap": bytes(norm[2])}


def add_sentencepiece_vocab(w, model_path, bos_id=None, eos_id=None, add_bos=None):
    """llama.cpp's _create_vocab_sentencepiece: SentencePiece types are
    llama.cpp's token types (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4,
    UNUSED 5, BYTE 6)."""
    pieces, norm = read_sentencepiece(model_path)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([p[0] for p in pieces])
    w.add_token_scores([p[1] for p in pieces])
    w.add_token_types([p[2] for p in pieces])
    w.add_add_space_prefix(norm["add_dummy_prefix"])
    w.add_remove_extra_whitespaces(norm["remove_extra_whitespaces"])
    if norm["precompiled_charsmap"]:  # the normalizer (nmt_nfkc...), as llama.cpp writes it for T5
        w.add_key_value(gguf.Keys.Tokenizer.PRECOMPILED_CHARSMAP, list(norm["precompiled_charsmap"]),
                        gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT8)
    unk = [i for i, p in enumerate(pieces) if p[2] == 2]
    if unk:
        w.add_unk_token_id(unk[0])
    by_text = {p[0]: i for i, p in enumerate(pieces)}
    w.add_bos_token_id(bos_id if bos_id is not None else by_text.get("<s>", 1))
    w.add_eos_token_id(eos_id if eos_id is not None else by_text.get("</s>", 2))
    if add_bos is not None:
        w.add_add_bos_token(add_bos)


def add_byte_level_vocab(w, tokenizer_json, tokenizer_config, vocab_size=None):
    """llama.cpp's _set_vocab_gpt2 for a Llama 3 tokenizer.json: added tokens
    are CONTROL when special, else USER_DEFINED; holes are [PADn] UNUSED."""
    tj = json.load(open(tokenizer_json))
    cfg = json.load(open(tokenizer_config)) if tokenizer_config and os.path.exists(tokenizer_config) else {}
    vocab = dict(tj["model"]["vocab"])
    added = {a["content"]: a for a in tj.get("added_tokens", [])}
    for a in added.values():
        vocab[a["content"]] = a["id"]
    n = vocab_size or (max(vocab.values()) + 1)
    by_id = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(5)
        elif by_id[i] in added:
            tokens.append(by_id[i])
            types.append(3 if added[by_id[i]].get("special") else 4)
        else:
            tokens.append(by_id[i])
            types.append(1)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"].get("merges", [])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)

    def token_id(v):
        name = v["content"] if isinstance(v, dict) else v
        return vocab[name]
    bos = cfg.get("bos_token")
    if bos is None:
        pp = tj.get("post_processor") or {}
        single = pp.get("single") or []
        if single and "SpecialToken" in single[0]:
            bos = single[0]["SpecialToken"]["id"]
    if bos is not None:
        w.add_bos_token_id(token_id(bos))
    if cfg.get("eos_token") is not None:
        w.add_eos_token_id(token_id(cfg["eos_token"]))
    w.add_add_bos_token(bool(cfg.get("add_bos_token", bos is not None)))


# llama.cpp's LlamaModel.generate_extra_tensors: HF's llama3 rope_type as one
# divisor per rotary frequency.
def llama3_rope_factors(rope, theta, head_dim):
    freqs = 1.0 / (np.float32(theta) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))
    factor = rope.get("factor", 8.0)
    low = rope.get("low_freq_factor", 1.0)
    high = rope.get("high_freq_factor", 4.0)
    old_len = rope.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old_len / low, old_len / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / float(freq)
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_len / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16", "q8_0", "q4_0"])
    convert(ap.parse_args())


def convert(args):
    """args: model_dir, out, outtype (an argparse.Namespace or alike)."""
    cfg = json.load(open(os.path.join(args.model_dir, "config.json")))
    tensors = {}
    for p in sorted(glob.glob(os.path.join(args.model_dir, "*.safetensors"))):
        tensors.update(read_safetensors(p))
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    n_layer = cfg["num_hidden_layers"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = cfg.get("rope_theta", rope.get("rope_theta", 10000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "linear", "llama3"):
        raise SystemExit(f"rope_type {rope_type} is not converted")

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
    if rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope["factor"])
    if head_dim != cfg["hidden_size"] // n_head:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "bf16": gguf.LlamaFileType.MOSTLY_BF16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[args.outtype]
    w.add_file_type(ftype)
    bos = cfg.get("bos_token_id")
    eos = cfg.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) else eos
    sp_model = os.path.join(args.model_dir, "tokenizer.model")
    tok_json = os.path.join(args.model_dir, "tokenizer.json")
    if os.path.exists(tok_json):
        add_byte_level_vocab(w, tok_json, os.path.join(args.model_dir, "tokenizer_config.json"), cfg["vocab_size"])
    elif os.path.exists(sp_model):
        add_sentencepiece_vocab(w, sp_model, bos, eos)
    else:
        if bos is not None:
            w.add_bos_token_id(bos)
        if eos is not None:
            w.add_eos_token_id(eos)
    if rope_type == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(rope, theta, head_dim))

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
            qt = {"f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q4_0": T.Q4_0}[args.outtype]
            if qt == T.F16:
                w.add_tensor(new_name, data.astype(np.float16))
            elif qt == T.BF16:
                w.add_tensor(new_name, gguf.quants.quantize(data, T.BF16), raw_dtype=T.BF16)
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
