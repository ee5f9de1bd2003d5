#!/usr/bin/env python3
"""Builds the test fixtures: tiny random-weight Llama checkpoints saved by
Hugging Face transformers, and the reference outputs transformers computes on
them (logits of every position, per-layer hidden states, 32 greedy tokens).

The C++ tests read these files and never need Python. Re-run after changing a
fixture definition:  python3 tools/make_fixtures.py  (needs torch, transformers,
safetensors, sentencepiece from PyPI).

Layout written under tests/fixtures/:
  models/<name>/            config.json + model.safetensors (or shards) [+ tokenizer.model]
  reference/<name>.safetensors  prompt{i}.ids (I32 [T]), prompt{i}.logits (F32 [T, V]),
                                prompt0.hidden.{stage} (F32 [T, hidden]), greedy.ids (I32 [32])
  reference/<name>.json     magic, version, versions of the tools, HF's own f16/bf16 error
"""
import json
import os
import shutil
import sys
import zlib

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
MAGIC = "llama-speedbench-fixture"
VERSION = 1
GREEDY_STEPS = 32

# Each entry covers features named in the engine issue.
FIXTURES = [
    # Multi-head attention, tied embeddings, float32; has a tokenizer for CLI tests.
    dict(name="mha_tied_f32", dtype=torch.float32, shard=None, tokenizer=True,
         prompts=[7, 33],
         config=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=4, vocab_size=256, max_position_embeddings=256,
                     tie_word_embeddings=True, rms_norm_eps=1e-5)),
    # Grouped-query attention, head_dim != hidden/heads, odd sizes, biases,
    # untied, rope_theta 500000, weights stored as float16.
    dict(name="gqa_odd_bias_f16", dtype=torch.float16, shard=None, tokenizer=False, legacy_config=True,
         prompts=[5, 29],
         config=dict(hidden_size=60, intermediate_size=100, num_hidden_layers=3, num_attention_heads=6,
                     num_key_value_heads=2, head_dim=12, vocab_size=301, max_position_embeddings=256,
                     tie_word_embeddings=False, attention_bias=True, mlp_bias=True, rope_theta=500000.0,
                     rms_norm_eps=1e-6)),
    # Llama 3 rope scaling exercised by a prompt far beyond original_max_position_embeddings,
    # sharded checkpoint, bfloat16 storage, tied embeddings like Llama 3.2.
    dict(name="llama3_sharded_bf16", dtype=torch.bfloat16, shard="40KB", tokenizer=False, legacy_config=True,
         prompts=[9, 200],
         config=dict(hidden_size=48, intermediate_size=88, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=300, max_position_embeddings=512,
                     tie_word_embeddings=True, rope_theta=500000.0, rms_norm_eps=1e-5,
                     rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                       high_freq_factor=4.0, original_max_position_embeddings=32))),
    # Linear rope scaling, multi-query attention (one KV head), untied, float32.
    dict(name="linear_mqa_f32", dtype=torch.float32, shard=None, tokenizer=False, seed=1,
         prompts=[6, 70],
         config=dict(hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=1, head_dim=16, vocab_size=128, max_position_embeddings=256,
                     tie_word_embeddings=False, rms_norm_eps=1e-5,
                     rope_scaling=dict(rope_type="linear", factor=2.0))),
    # transformers' length-dependent and YaRN scalings (issue 14). References of
    # these run on a fresh rotary embedding each (its dynamic state is reset)
    # and greedy decodes with the KV cache, as generate() does: with `dynamic`
    # and `longrope` the frequencies follow each forward pass's sequence length
    # and cached keys keep theirs, so a cache-free greedy would be another model.
    # dynamic: both prompts longer than max_position_embeddings (32), greedy grows to 72.
    dict(name="dynamic_gqa_f32", dtype=torch.float32, shard=None, tokenizer=False, fresh_rope=True, seed=1,
         prompts=[40, 70],
         config=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=200, max_position_embeddings=32,
                     tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=10000.0,
                     rope_scaling=dict(rope_type="dynamic", factor=2.0))),
    # yarn: original context 32 stretched by 4 to 128, transformers' defaults
    # (beta_fast 32, beta_slow 1, attention factor from factor), float16 storage.
    dict(name="yarn_f16", dtype=torch.float16, shard=None, tokenizer=False, fresh_rope=True, legacy_config=True,
         prompts=[9, 100],
         config=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=4, vocab_size=160, max_position_embeddings=128,
                     tie_word_embeddings=True, rms_norm_eps=1e-6, rope_theta=10000.0,
                     rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=32))),
    # longrope: short factors up to the original context (32), long ones past it;
    # prompt0 and the start of greedy are short, prompt1 and the rest long.
    dict(name="longrope_f32", dtype=torch.float32, shard=None, tokenizer=False, fresh_rope=True,
         prompts=[9, 70],
         config=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=4, head_dim=16, vocab_size=160, max_position_embeddings=128,
                     tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=10000.0,
                     rope_scaling=dict(rope_type="longrope", original_max_position_embeddings=32,
                                       short_factor=[1.0, 1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 1.7],
                                       long_factor=[1.0, 1.3, 1.9, 2.6, 3.4, 4.1, 4.6, 5.0]))),
]


def randomize(model, gen):
    """Weights with larger spread than HF's 0.02 init, so greedy argmax margins
    are decisive, and non-unit norms so a forgotten norm weight shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.08)


def to_legacy_config(path):
    """Rewrites transformers 5's `rope_parameters` as the `rope_theta` +
    `rope_scaling` pair that checkpoints on the hub carry, so both spellings
    are covered by fixtures."""
    with open(path) as f:
        cfg = json.load(f)
    rope = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rope.pop("rope_theta")
    cfg["rope_scaling"] = rope if rope.get("rope_type", "default") != "default" else None
    cfg["torch_dtype"] = cfg.pop("dtype")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def train_tokenizer(path, vocab_size):
    import sentencepiece as spm
    words = ("once upon a time there was a little model that wanted to run fast on every machine it met "
             "the quick brown fox jumps over the lazy dog while engineers measure tokens per second").split()
    rng = np.random.default_rng(0)
    text = "\n".join(" ".join(rng.choice(words, 12)) for _ in range(400))
    tmp = path + ".corpus.txt"
    with open(tmp, "w") as f:
        f.write(text)
    spm.SentencePieceTrainer.train(input=tmp, model_prefix=path[:-len(".model")], vocab_size=vocab_size,
                                   model_type="bpe", character_coverage=1.0, byte_fallback=False,
                                   split_digits=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
                                   minloglevel=2)
    os.remove(tmp)
    os.remove(path[:-len(".model")] + ".vocab")


FRESH_ROPE = False  # set per fixture: a new rotary embedding before every reference pass


def fresh_rope(model):
    """transformers' dynamic RoPE keeps state across calls (the longest length
    seen); each reference starts from the state of a freshly loaded model."""
    if FRESH_ROPE:
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
        model.model.rotary_emb = LlamaRotaryEmbedding(config=model.config)


def logits_of(model, ids):
    fresh_rope(model)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()  # stored as float32


def capture_hidden(model, ids):
    """Hidden state after embeddings, after each decoder layer, after the final norm."""
    stages = []
    hooks = [model.model.embed_tokens.register_forward_hook(lambda m, i, o: stages.append(o[0].clone()))]
    for layer in model.model.layers:
        hooks.append(layer.register_forward_hook(
            lambda m, i, o: stages.append((o[0] if isinstance(o, tuple) else o)[0].clone())))
    hooks.append(model.model.norm.register_forward_hook(lambda m, i, o: stages.append(o[0].clone())))
    with torch.no_grad():
        fresh_rope(model)  # a new rotary module keeps the hooks above (they are on other modules)
        model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return stages


def greedy_cached(model, ids, steps):
    """Greedy decoding with the KV cache, one token per forward pass."""
    from transformers import DynamicCache
    fresh_rope(model)
    cache = DynamicCache(config=model.config)
    out, min_margin = [], float("inf")
    step_in = torch.tensor([list(ids)])
    with torch.no_grad():
        for _ in range(steps):
            logits = model(step_in, past_key_values=cache, use_cache=True).logits[0, -1].float()
            top2 = torch.topk(logits, 2).values
            min_margin = min(min_margin, float(top2[0] - top2[1]))
            nxt = int(torch.argmax(logits))
            out.append(nxt)
            step_in = torch.tensor([[nxt]])
    return out, min_margin


def greedy(model, ids, steps):
    if FRESH_ROPE:
        return greedy_cached(model, ids, steps)
    ids = list(ids)
    out, min_margin = [], float("inf")
    for _ in range(steps):
        logits = logits_of(model, ids)[-1]
        top2 = torch.topk(logits, 2).values
        min_margin = min(min_margin, float(top2[0] - top2[1]))
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        ids.append(nxt)
    return out, min_margin


def text_references(model, model_dir):
    """Ids the Python SentencePiece library gives for some strings, and HF's
    greedy continuation of a text prompt, for the tokenizer and CLI tests."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    text = "once upon a time the quick brown fox"
    ids = [1] + sp.encode(text)
    cont, _ = greedy(model, ids, 20)
    cases = [{"text": t, "ids": sp.encode(t)} for t in
             ["", "the lazy dog", "  two  spaces", "digits 12345", "tokens per second!", "caf\u00e9 \ud55c\uad6d"]]
    return {"text": text, "prompt_ids": ids, "greedy_ids": cont}, cases


def rel_err(a, b):
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def build(fx):
    global FRESH_ROPE
    FRESH_ROPE = fx.get("fresh_rope", False)
    name = fx["name"]
    model_dir = os.path.join(ROOT, "models", name)
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    config = LlamaConfig(**fx["config"], bos_token_id=1, eos_token_id=2)
    torch.manual_seed(1234)
    model = LlamaForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()) + fx.get("seed", 0))
    randomize(model, gen)
    if config.tie_word_embeddings:
        model.tie_weights()
    # Round the weights to the storage dtype first, so the float32 reference is
    # computed from exactly the stored values.
    model = model.to(fx["dtype"]).to(torch.float32)
    save_kwargs = dict(safe_serialization=True)
    if fx["shard"]:
        save_kwargs["max_shard_size"] = fx["shard"]
    model.to(fx["dtype"]).save_pretrained(model_dir, **save_kwargs)
    # References come from the checkpoint as a user loads it, not from the
    # in-memory model: Module.to(bfloat16) above also rounded the rotary
    # inv_freq buffer, which shifts logits by ~1e-4 on a 200-token prompt.
    # They are computed in float64; transformers' own float32 error is
    # recorded as hf_f32_rel_err.
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
    if fx.get("legacy_config"):
        to_legacy_config(os.path.join(model_dir, "config.json"))
    if fx["tokenizer"]:
        train_tokenizer(os.path.join(model_dir, "tokenizer.model"), 200)

    rng = np.random.default_rng(len(name))
    tensors, meta = {}, {"magic": MAGIC, "version": VERSION, "name": name,
                         "torch": torch.__version__, "transformers": __import__("transformers").__version__,
                         "stored_dtype": str(fx["dtype"]).replace("torch.", ""), "prompts": []}
    for i, length in enumerate(fx["prompts"]):
        ids = [1] + rng.integers(3, config.vocab_size, length - 1).tolist()
        tensors[f"prompt{i}.ids"] = np.array(ids, dtype=np.int32)
        tensors[f"prompt{i}.logits"] = logits_of(model, ids).numpy()
        meta["prompts"].append(len(ids))
    if fx["tokenizer"]:
        meta["cli"], meta["tokenizer_cases"] = text_references(model, model_dir)
    ids0 = tensors["prompt0.ids"].tolist()
    for s, h in enumerate(capture_hidden(model, ids0)):
        tensors[f"prompt0.hidden.{s}"] = h.float().numpy()
    meta["hidden_stages"] = len(capture_hidden(model, ids0))
    g, margin = greedy(model, ids0, GREEDY_STEPS)
    tensors["greedy.ids"] = np.array(g, dtype=np.int32)
    meta["greedy_min_margin"] = margin
    if FRESH_ROPE:
        meta["greedy_uses_kv_cache"] = True
    # How far transformers itself lands from float32 when it computes in half
    # precision: the yardstick for our f16/bf16 tolerances.
    ref = torch.from_numpy(tensors["prompt1.logits"]).double()
    ids1 = tensors["prompt1.ids"].tolist()
    for dt, key in ((torch.float32, "hf_f32_rel_err"), (torch.bfloat16, "hf_bf16_rel_err"),
                    (torch.float16, "hf_f16_rel_err")):
        low = LlamaForCausalLM.from_pretrained(model_dir, dtype=dt).eval()
        meta[key] = rel_err(logits_of(low, ids1).double(), ref)
    os.makedirs(os.path.join(ROOT, "reference"), exist_ok=True)
    save_file(tensors, os.path.join(ROOT, "reference", name + ".safetensors"))
    with open(os.path.join(ROOT, "reference", name + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(f"{name}: greedy min margin {margin:.4f}, HF f32 err {meta['hf_f32_rel_err']:.2e}, HF bf16 err {meta['hf_bf16_rel_err']:.2e}, "
          f"HF f16 err {meta['hf_f16_rel_err']:.2e}")
    if margin < 1e-3:
        print(f"  warning: {name} has a near-tie in greedy decoding; tokens may be fragile", file=sys.stderr)


if __name__ == "__main__":
    # python3 tools/make_fixtures.py [NAME ...]: only the named fixtures (all by default).
    torch.use_deterministic_algorithms(True)
    wanted = set(sys.argv[1:])
    unknown = wanted - {fx["name"] for fx in FIXTURES}
    if unknown:
        sys.exit(f"unknown fixture(s): {', '.join(sorted(unknown))}")
    for fx in FIXTURES:
        if not wanted or fx["name"] in wanted:
            build(fx)
