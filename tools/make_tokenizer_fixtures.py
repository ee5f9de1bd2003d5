#!/usr/bin/env python3
"""Builds tokenizer fixtures and the ids Hugging Face computes for hard strings.

  llama2_style/  tokenizer.model: a small SentencePiece BPE trained here with
                 Llama's settings (byte fallback, split digits); tokenizer.json:
                 its conversion by transformers' LlamaTokenizerFast (from_slow).
  llama3_style/  tokenizer.json: a small byte-level BPE trained here with the
                 `tokenizers` library, Llama 3's split regex and ignore_merges.
  reference.json ids from `tokenizers` (and SentencePiece for llama2_style) for
                 every string, with and without BOS.

Run: python3 tools/make_tokenizer_fixtures.py  (PyPI: tokenizers, transformers,
sentencepiece). The C++ tests read only the files written here.
"""
import json
import os
import shutil

import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaTokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizers")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS3 = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]

HARD = [
    "", "Hello world", " leading space", "trailing space ", "multiple   spaces  here", "\ttabs\tand\nnewlines\n\n",
    "digits 1234567890 and 3.14159", "punctuation!? (yes) [no] {maybe}; ok...", "don't we'll they're I'm she'd",
    "안녕하세요, 세계! 한국어 텍스트입니다.", "日本語のテキストです。", "中文文本测试。", "emoji 😀🎉👍🏽 and 🇰🇷",
    "combining e\u0301 and a\u0308 marks", "math ∑ ∫ ≠ ≤ and symbols ©®™", "\u00ff\u00fe odd latin-1 looking text",
    "special <s> and </s> inside text", "llama3 <|begin_of_text|>hi<|eot_id|> tokens", "MiXeD CaSe WORDS",
    "a" * 50, "line1\r\nline2\rline3",
]


def corpus():
    base = ("The quick brown fox jumps over the lazy dog. Engineers measure 1234 tokens per second, "
            "don't they? We'll see. 안녕하세요 세계 한국어 모델 속도 측정. 日本語 中文 测试 😀 🎉 ∑ ≤ café naïve.\n")
    return [base * 3 + f"line {i} with number {i * 37} and word{i % 17}" for i in range(300)]


def llama2_style(out):
    os.makedirs(out, exist_ok=True)
    text_file = os.path.join(out, "corpus.txt")
    with open(text_file, "w") as f:
        f.write("\n".join(corpus()))
    spm.SentencePieceTrainer.train(input=text_file, model_prefix=os.path.join(out, "tokenizer"), vocab_size=520,
                                   model_type="bpe", byte_fallback=True, split_digits=True, character_coverage=0.9995,
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1, allow_whitespace_only_pieces=True,
                                   remove_extra_whitespaces=False, normalization_rule_name="identity", minloglevel=2)
    os.remove(text_file)
    os.remove(os.path.join(out, "tokenizer.vocab"))
    fast = LlamaTokenizerFast.from_pretrained(out, from_slow=True, legacy=True)
    fast.save_pretrained(out)
    for extra in ("special_tokens_map.json", "chat_template.jinja"):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))
    hf = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    cases = []
    for s in HARD:
        ids = hf.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids, "sentencepiece_ids": sp.encode(s), "decoded": hf.decode(ids)})
    return cases


def llama3_style(out):
    os.makedirs(out, exist_ok=True)
    tok = Tokenizer(models.BPE(ignore_merges=True, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=SPECIALS3, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", bos)])
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, f, indent=2)
    cases = []
    for s in HARD:
        ids = tok.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids, "ids_with_bos": tok.encode(s).ids, "decoded": tok.decode(ids)})
    return cases


if __name__ == "__main__":
    shutil.rmtree(ROOT, ignore_errors=True)
    ref = {"magic": "llama-speedbench-tokenizer-fixture", "version": 1,
           "tokenizers": __import__("tokenizers").__version__,
           "transformers": __import__("transformers").__version__,
           "llama2_style": llama2_style(os.path.join(ROOT, "llama2_style")),
           "llama3_style": llama3_style(os.path.join(ROOT, "llama3_style"))}
    with open(os.path.join(ROOT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
    for flavour in ("llama2_style", "llama3_style"):
        lossless = sum(c["decoded"] == c["text"] for c in ref[flavour])
        print(f"{flavour}: {len(ref[flavour])} strings, HF decode(encode(s)) == s for {lossless}")
    agree = sum(c["ids"] == c["sentencepiece_ids"] for c in ref["llama2_style"])
    print(f"llama2_style: tokenizer.json and tokenizer.model agree on {agree} of {len(HARD)}")
