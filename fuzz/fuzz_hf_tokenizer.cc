// libFuzzer target: arbitrary text as tokenizer.json. Parsing must end in a
// tokenizer or a Status, never a crash; a tokenizer that loads must encode and
// decode (added tokens, Korean, emoji, ids past its vocabulary) without one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto tok = llm::ParseHfTokenizer(text, "", "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  for (const char* s : {"Hello world", " a  b\n\nc", "<s>x</s>", "\xec\x95\x88\xeb\x85\x95 \xf0\x9f\x98\x80", "\xff\xfe"}) {
    auto ids = tok.value()->Encode(s, true);
    if (!ids.ok()) continue;
    std::vector<int32_t> v = ids.value();
    v.push_back(tok.value()->vocab_size());
    v.push_back(-1);
    (void)tok.value()->Decode(v);
  }
  return 0;
}
