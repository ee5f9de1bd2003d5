// libFuzzer target: arbitrary bytes as a GGUF model file, through everything
// a run does with one before the first forward pass: the llama.* config, the
// weights (checked by name and shape, q/k un-permuted, float tensors
// converted, quantized ones checked for finite scales) and the tokenizer
// built from tokenizer.ggml.* (then encoding and decoding a short text). Each
// step must return a Status for anything malformed, never crash or hang.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/thread_pool.h"
#include "io/gguf.h"
#include "model/gguf_model.h"
#include "tokenizer/gguf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // GgufFile maps a path: the input goes to a per-process file first.
  struct TempPath {
    std::string path = "/tmp/fuzz_gguf_model." + std::to_string(::getpid()) + ".gguf";
    ~TempPath() { std::remove(path.c_str()); }
  };
  static const TempPath temp;
  const std::string& path = temp.path;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto file = llm::GgufFile::Open(path);
  if (!file.ok()) return 0;
  static llm::ThreadPool pool(1);
  auto config = llm::GgufLlamaConfig(*file.value());
  // A config whose tensors cannot all be in a file this size fails the
  // weights' shape checks; cap it anyway so that no allocation is sized by
  // keys alone.
  if (config.ok() && config->NumParameters() < (int64_t{1} << 24)) {
    (void)llm::LoadGgufWeights(file.value(), config.value(), llm::DType::kF32, &pool);
  }
  auto vocab = llm::GgufVocabOf(file.value()->header(), path);
  if (vocab.ok() && vocab->tokens.size() < (size_t{1} << 16)) {
    auto tok = llm::MakeGgufTokenizer(vocab.value(), path);
    if (tok.ok()) {
      auto ids = tok.value()->Encode("Hello world, \xc3\xa9t\xc3\xa9 <s> 123", true);
      if (ids.ok()) (void)tok.value()->Decode(ids.value());
    }
  }
  return 0;
}
