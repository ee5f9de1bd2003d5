// libFuzzer target: arbitrary bytes as a safetensors file. The parser must
// return a Status for anything malformed and never read outside the buffer.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = llm::ParseSafetensorsHeader(data, size, "fuzz.safetensors");
  if (r.ok()) {
    // Every accepted tensor must lie inside the buffer: touch its last byte.
    volatile uint8_t sink = 0;
    for (const auto& [name, e] : r.value()) {
      if (e.offset + e.nbytes > size) __builtin_trap();
      if (e.nbytes) sink = sink ^ data[e.offset + e.nbytes - 1];
    }
    (void)sink;
  }
  return 0;
}
