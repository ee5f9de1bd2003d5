// Text <-> token ids. Implementations: SentencePiece (tokenizer.model of
// Llama 1/2, TinyLlama) and a built-in byte-level tokenizer for random-weight
// runs that have no tokenizer file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace llm {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Encodes text; prepends BOS when add_bos (as Llama's tokenizers do).
  virtual Result<std::vector<int32_t>> Encode(const std::string& text, bool add_bos) const = 0;
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;
  virtual std::vector<int> eos_ids() const = 0;
  // What was loaded, for the results file: "sentencepiece:<path>", "byte-level (built-in)".
  virtual std::string description() const = 0;
  // A lower bound on the ids Encode(text, false) returns, computed without
  // tokenizing, so that a prompt that cannot fit --max-seq-len is refused
  // before the work; 0 when no bound is known.
  virtual size_t MinTokens(const std::string& text) const {
    (void)text;
    return 0;
  }
};

// The bound the vocabulary-based tokenizers give: no token covers more ASCII
// letters and digits than the most any vocabulary entry holds, and a letter or
// digit that has a token of its own is never dropped by a normalizer nor folded
// into an unknown token. So tokens >= (such characters in the text) / that most.
struct AlnumTokenBound {
  bool known[128] = {};      // ASCII letters and digits with a token of their own
  size_t max_per_token = 0;  // most ASCII letters and digits in one vocabulary entry
  void AddEntry(const std::string& token);
  size_t MinTokens(const std::string& text) const;
};

// Turns a stream of ids into text pieces that never split a UTF-8 character:
// bytes of an incomplete character are held until it completes.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer* tok) : tok_(tok) {}
  // Returns the new complete text contributed by `id` (may be empty).
  std::string Push(int32_t id);
  // Returns whatever is still held (an incomplete character at the end).
  std::string Flush();

 private:
  const Tokenizer* tok_;
  std::vector<int32_t> ids_;
  size_t emitted_ = 0;  // bytes of Decode(ids_) already returned
};

// Loads the tokenizer of a model directory (tokenizer.model). NotFound when absent.
Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_dir);
Result<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::string& path);
// The same from the bytes of a serialized ModelProto (a GGUF vocabulary
// rebuilt as one); `source` names it in messages and description().
Result<std::unique_ptr<Tokenizer>> MakeSentencePieceTokenizer(const std::string& serialized_model_proto,
                                                              const std::string& source);
// Bytes map to ids 3..258 (Llama 2's byte-fallback ids); 0 <unk>, 1 <s>, 2 </s>.
std::unique_ptr<Tokenizer> MakeByteTokenizer();

// Bytes of the UTF-8 sequence that starts with lead byte c (1 for an invalid lead byte).
size_t Utf8SequenceLength(unsigned char c);

// Length in bytes of the longest prefix of `s` that ends on a UTF-8 character boundary.
size_t CompleteUtf8Prefix(const std::string& s);

}  // namespace llm
