// Quantized weight bytes for the benchmarks: a fixed pseudo-random pattern
// with small normal float16 scales where the format keeps them (random bits
// there could be NaN or Inf), shared by bench_kernels and roof_pairs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/quant.h"

namespace llm {

// `bytes` holds whole blocks of `dtype` (any number of matrices back to back).
inline void FillQuantBytes(uint8_t* bytes, size_t size, DType dtype) {
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  const auto type = static_cast<GgmlType>(DTypeGgmlType(dtype));
  const GgmlTypeInfo* info = GgmlTypeInfoOf(static_cast<uint32_t>(type));
  int offsets[2];
  const int halves = GgmlHalfFieldOffsets(type, offsets);
  const uint16_t scale = F32ToF16(0.01f);
  for (size_t b = 0; b < size / info->type_size; ++b) {
    for (int f = 0; f < halves; ++f) std::memcpy(bytes + b * info->type_size + offsets[f], &scale, 2);
  }
}

}  // namespace llm
