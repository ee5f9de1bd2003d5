// The tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata, run by
// the libraries the safetensors path already uses, so that the same model
// gives the same ids in either format:
//   "llama": SentencePiece pieces, scores and token types (byte fallback via
//     <0xXX> BYTE pieces) serialized into a SentencePiece ModelProto and
//     loaded by libsentencepiece, as tokenizer.model would be;
//   "gpt2": byte-level BPE (tokens + merges) handed to the tokenizer.json
//     implementation with the split regex `tokenizer.ggml.pre` names.
// The metadata is passed as plain data (the GGUF reader lives in io/, which
// this folder does not depend on).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace llm {

// llama.cpp's token types (llama_token_type), the same values as
// SentencePiece's ModelProto.SentencePiece.Type.
enum class GgufTokenType : int {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct GgufVocab {
  std::string model;  // tokenizer.ggml.model: "llama" | "gpt2"
  std::string pre;    // tokenizer.ggml.pre (gpt2): "llama-bpe", ...; may be empty
  std::vector<std::string> tokens;
  std::vector<float> scores;     // llama: one per token (may be empty: all 0)
  std::vector<int> token_types;  // one per token (may be empty: all normal)
  std::vector<std::string> merges;  // gpt2: "left right", in rank order
  int bos_id = -1, eos_id = -1, unk_id = -1;
  bool add_bos = true;           // tokenizer.ggml.add_bos_token
  bool add_space_prefix = true;  // tokenizer.ggml.add_space_prefix (llama)
  bool remove_extra_whitespaces = false;  // tokenizer.ggml.remove_extra_whitespaces (llama)
  // tokenizer.ggml.precompiled_charsmap (llama): SentencePiece's normalization
  // table (nmt_nfkc...); empty = no normalization, as Llama's own models.
  std::string precompiled_charsmap;
};

// The `tokenizer.ggml.pre` names this engine knows for gpt2 vocabularies.
constexpr const char* kSupportedGgufPreList = "llama-bpe (Llama 3), default";

// `source` names the file in messages and descriptions. Unknown models and
// pre-tokenizer names are refused by name.
Result<std::unique_ptr<Tokenizer>> MakeGgufTokenizer(const GgufVocab& vocab, const std::string& source);

}  // namespace llm
