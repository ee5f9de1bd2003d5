// libFuzzer target: arbitrary bytes as a GGUF file. The reader must return a
// Status for anything malformed and never read outside the buffer; every
// accepted tensor is touched at both ends and its first blocks dequantized.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/quant.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = llm::ParseGguf(data, size, "fuzz.gguf");
  if (!r.ok()) return 0;
  (void)llm::CheckGgufArchitecture(r.value(), "fuzz.gguf");
  volatile double sink = 0;
  for (const auto& [key, v] : r->metadata) {
    for (uint64_t k = 0; k < v.count && k < 64; ++k) sink = sink + v.ArrayFloat(k) + static_cast<double>(v.ArrayInt(k));
  }
  std::vector<float> out(2 * llm::kQK_K);
  for (const llm::GgufTensorInfo& t : r->tensors) {
    if (t.offset > size || t.nbytes > size - t.offset) __builtin_trap();
    if (t.nbytes == 0) continue;
    sink = sink + data[t.offset] + data[t.offset + t.nbytes - 1];
    const llm::GgmlTypeInfo* info = llm::GgmlTypeInfoOf(static_cast<uint32_t>(t.type));
    if (info == nullptr) __builtin_trap();
    uint64_t n = t.num_elements < out.size() ? t.num_elements : out.size();
    n -= n % info->block_size;
    if (llm::GgmlRowBytes(t.type, n) > t.nbytes) __builtin_trap();
    llm::DequantizeRow(t.type, data + t.offset, out.data(), n);
    for (uint64_t k = 0; k < n; ++k) sink = sink + out[k];
  }
  (void)sink;
  return 0;
}
