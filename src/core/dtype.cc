#include "core/dtype.h"

#include "core/quant.h"

namespace llm {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    default: return 0;
  }
}

namespace {
// The quantized DTypes and their ggml types, in one table.
struct QuantName {
  DType dtype;
  GgmlType ggml;
  const char* name;
};
constexpr QuantName kQuantTypes[] = {
    {DType::kQ8_0, GgmlType::kQ8_0, "q8_0"}, {DType::kQ4_0, GgmlType::kQ4_0, "q4_0"},
    {DType::kQ4_1, GgmlType::kQ4_1, "q4_1"}, {DType::kQ5_0, GgmlType::kQ5_0, "q5_0"},
    {DType::kQ5_1, GgmlType::kQ5_1, "q5_1"}, {DType::kQ4_K, GgmlType::kQ4_K, "q4_k"},
    {DType::kQ5_K, GgmlType::kQ5_K, "q5_k"}, {DType::kQ6_K, GgmlType::kQ6_K, "q6_k"},
};
const QuantName* FindQuant(DType t) {
  for (const QuantName& q : kQuantTypes) {
    if (q.dtype == t) return &q;
  }
  return nullptr;
}
}  // namespace

bool IsQuantized(DType t) { return FindQuant(t) != nullptr; }

uint32_t DTypeGgmlType(DType t) {
  if (const QuantName* q = FindQuant(t)) return static_cast<uint32_t>(q->ggml);
  switch (t) {
    case DType::kF32: return static_cast<uint32_t>(GgmlType::kF32);
    case DType::kF16: return static_cast<uint32_t>(GgmlType::kF16);
    case DType::kBF16: return static_cast<uint32_t>(GgmlType::kBF16);
    default: return ~0u;
  }
}

bool DTypeFromGgmlType(uint32_t ggml_type, DType* out) {
  for (const QuantName& q : kQuantTypes) {
    if (static_cast<uint32_t>(q.ggml) == ggml_type) { *out = q.dtype; return true; }
  }
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    if (DTypeGgmlType(t) == ggml_type) { *out = t; return true; }
  }
  return false;
}

int64_t DTypeBlockSize(DType t) {
  const QuantName* q = FindQuant(t);
  return q ? GgmlTypeInfoOf(static_cast<uint32_t>(q->ggml))->block_size : 1;
}

size_t DTypeRowBytes(DType t, int64_t n) {
  if (const QuantName* q = FindQuant(t)) return GgmlRowBytes(q->ggml, static_cast<size_t>(n));
  return static_cast<size_t>(n) * DTypeSize(t);
}

bool ParseWeightDType(const std::string& name, DType* out) {
  if (ParseDType(name, out)) return true;
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (const QuantName& q : kQuantTypes) {
    if (lower == q.name) { *out = q.dtype; return true; }
  }
  return false;
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    default: break;
  }
  if (const QuantName* q = FindQuant(t)) return q->name;
  return "?";
}

bool ParseDType(const std::string& name, DType* out) {
  if (name == "float32" || name == "fp32" || name == "f32" || name == "float") { *out = DType::kF32; return true; }
  if (name == "float16" || name == "fp16" || name == "f16" || name == "half") { *out = DType::kF16; return true; }
  if (name == "bfloat16" || name == "bf16") { *out = DType::kBF16; return true; }
  return false;
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24 is exact in float32.
  const float mag = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return sign ? -mag : mag;
}

uint16_t F32ToF16(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;             // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;            // >= 65520 rounds to inf
  if (abs >= 0x38800000u) {                                 // normal in f16 (>= 2^-14)
    const uint32_t mant_round = abs + 0xfffu + ((abs >> 13) & 1u) - (112u << 23);
    return sign | static_cast<uint16_t>(mant_round >> 13);
  }
  // Subnormal or zero in f16: scale to units of 2^-24 and round to nearest even.
  // float32 arithmetic on abs * 2^24 is exact up to the rounding we want.
  const float scaled = BitsFloat(abs) * 16777216.0f;  // exact: power-of-two scale
  float whole = static_cast<float>(static_cast<uint32_t>(scaled));
  const float frac = scaled - whole;
  uint32_t q = static_cast<uint32_t>(whole);
  if (frac > 0.5f || (frac == 0.5f && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

namespace {

template <class Load, class Store>
void ConvertLoop(size_t n, Load load, Store store) {
  for (size_t i = 0; i < n; ++i) store(i, load(i));
}

// Loads and stores go through memcpy: safetensors does not align tensors, and
// a typed access to a misaligned address is undefined behaviour (compilers emit
// the same plain load for it).
template <class T>
inline T LoadAt(const void* p, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t*>(p) + i * sizeof(T), sizeof(T));
  return v;
}
template <class T>
inline void StoreAt(void* p, size_t i, T v) {
  std::memcpy(static_cast<uint8_t*>(p) + i * sizeof(T), &v, sizeof(T));
}

template <class Load>
void ConvertTo(size_t n, Load load, void* dst, DType dst_type) {
  // The switch sits outside the loop so each case compiles to a tight loop.
  switch (dst_type) {
    case DType::kF16:
      return ConvertLoop(n, load, [dst](size_t i, float v) { StoreAt<uint16_t>(dst, i, F32ToF16(v)); });
    case DType::kBF16:
      return ConvertLoop(n, load, [dst](size_t i, float v) { StoreAt<uint16_t>(dst, i, F32ToBF16(v)); });
    default:
      return ConvertLoop(n, load, [dst](size_t i, float v) { StoreAt<float>(dst, i, v); });
  }
}

}  // namespace

void ConvertFloats(const void* src, DType src_type, void* dst, DType dst_type, size_t n) {
  if (src_type == dst_type) {
    std::memcpy(dst, src, n * DTypeSize(src_type));
    return;
  }
  switch (src_type) {
    case DType::kF16: return ConvertTo(n, [src](size_t i) { return F16ToF32(LoadAt<uint16_t>(src, i)); }, dst, dst_type);
    case DType::kBF16: return ConvertTo(n, [src](size_t i) { return BF16ToF32(LoadAt<uint16_t>(src, i)); }, dst, dst_type);
    default: return ConvertTo(n, [src](size_t i) { return LoadAt<float>(src, i); }, dst, dst_type);
  }
}

}  // namespace llm
