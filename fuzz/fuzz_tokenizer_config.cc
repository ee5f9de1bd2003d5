// libFuzzer target: arbitrary text as tokenizer_config.json beside a small
// valid tokenizer.json. It must load or be a Status, never crash; a BOS it
// names must be a real id.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/hf_tokenizer.h"

namespace {
const char* kTokenizerJson = R"({"model":{"type":"BPE","byte_fallback":true,
  "vocab":{"<unk>":0,"<s>":1,"</s>":2,"<0x61>":3,"\u2581":4,"a":5,"\u2581a":6},"merges":["\u2581 a"]},
  "added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},
                  {"id":2,"content":"</s>","special":true}],
  "normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"\u2581"},
                {"type":"Replace","pattern":{"String":" "},"content":"\u2581"}]},
  "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"\u2581"},"content":" "},
             {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string config(reinterpret_cast<const char*>(data), size);
  auto tok = llm::ParseHfTokenizer(kTokenizerJson, config, "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  const int bos = tok.value()->bos_id();
  if (bos >= tok.value()->vocab_size()) __builtin_trap();
  auto ids = tok.value()->Encode("a a", true);
  if (ids.ok()) (void)tok.value()->Decode(ids.value());
  return 0;
}
