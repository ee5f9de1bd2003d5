// libFuzzer target: arbitrary text as config.json. Parsing must end in a
// config that passes validation or in a Status, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/llama_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto r = llm::ParseLlamaConfig(text, "fuzz/config.json");
  if (r.ok() && !llm::ValidateLlamaConfig(r.value(), "fuzz").ok()) __builtin_trap();
  return 0;
}
