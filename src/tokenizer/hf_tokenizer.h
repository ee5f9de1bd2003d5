// Hugging Face `tokenizers` tokenizer.json, in the two flavours Llama
// checkpoints ship:
//   Llama 2 style: BPE over "▁"-prefixed pieces with byte fallback (<0x41>),
//     Metaspace pre-tokenizer or Prepend+Replace normalizer, fuse_unk;
//   Llama 3 style: byte-level BPE (GPT-2 byte-to-unicode map) after a regex
//     Split (PCRE2 with Unicode classes), ignore_merges.
// Added/special tokens are matched whole in the raw text, never split.
// Anything else (WordPiece, Unigram, unknown normalizers) is refused.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace llm {

// Parses tokenizer.json text; `tokenizer_config_json` (may be empty) supplies
// add_bos_token / bos_token / eos_token as transformers reads them.
Result<std::unique_ptr<Tokenizer>> ParseHfTokenizer(const std::string& tokenizer_json,
                                                    const std::string& tokenizer_config_json,
                                                    const std::string& source);
Result<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::string& dir);

// GPT-2's byte-to-unicode map used by byte-level BPE: the vocabulary spelling
// (UTF-8) of byte b.
const std::string& ByteLevelChar(uint8_t b);

}  // namespace llm
