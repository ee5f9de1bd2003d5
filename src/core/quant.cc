// Scalar reference of the ggml block formats. Each dequantizer follows
// ggml-quants.c's dequantize_row_* operation by operation in float32; this
// file is compiled with -ffp-contract=off so that `d * q - m` stays two
// roundings, as in ggml and numpy.
#include "core/quant.h"

#include <cmath>
#include <cstring>

#include "core/dtype.h"

namespace llm {

namespace {

struct NamedType {
  uint32_t value;
  const char* name;
};

// Every ggml type value, for messages about the ones we do not read.
constexpr NamedType kAllGgmlTypes[] = {
    {0, "F32"},      {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {4, "Q4_2"},   {5, "Q4_3"},
    {6, "Q5_0"},     {7, "Q5_1"},    {8, "Q8_0"},    {9, "Q8_1"},    {10, "Q2_K"},  {11, "Q3_K"},
    {12, "Q4_K"},    {13, "Q5_K"},   {14, "Q6_K"},   {15, "Q8_K"},   {16, "IQ2_XXS"}, {17, "IQ2_XS"},
    {18, "IQ3_XXS"}, {19, "IQ1_S"},  {20, "IQ4_NL"}, {21, "IQ3_S"},  {22, "IQ2_S"}, {23, "IQ4_XS"},
    {24, "I8"},      {25, "I16"},    {26, "I32"},    {27, "I64"},    {28, "F64"},   {29, "IQ1_M"},
    {30, "BF16"},    {34, "TQ1_0"},  {35, "TQ2_0"},  {39, "MXFP4"},  {40, "NVFP4"}, {41, "Q1_0"},
};

constexpr GgmlTypeInfo kF32Info{"F32", 1, 4};
constexpr GgmlTypeInfo kF16Info{"F16", 1, 2};
constexpr GgmlTypeInfo kBF16Info{"BF16", 1, 2};
constexpr GgmlTypeInfo kQ4_0Info{"Q4_0", 32, 18};
constexpr GgmlTypeInfo kQ4_1Info{"Q4_1", 32, 20};
constexpr GgmlTypeInfo kQ5_0Info{"Q5_0", 32, 22};
constexpr GgmlTypeInfo kQ5_1Info{"Q5_1", 32, 24};
constexpr GgmlTypeInfo kQ8_0Info{"Q8_0", 32, 34};
constexpr GgmlTypeInfo kQ4_KInfo{"Q4_K", kQK_K, 144};
constexpr GgmlTypeInfo kQ5_KInfo{"Q5_K", kQK_K, 176};
constexpr GgmlTypeInfo kQ6_KInfo{"Q6_K", kQK_K, 210};

inline float LoadF16(const uint8_t* p) { return F16ToF32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }
inline void StoreF16(uint8_t* p, float f) {
  const uint16_t h = F32ToF16(f);
  p[0] = static_cast<uint8_t>(h & 0xff);
  p[1] = static_cast<uint8_t>(h >> 8);
}
inline uint32_t LoadU32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

void DequantQ4_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void DequantQ4_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void DequantQ5_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint32_t qh = LoadU32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int xh0 = ((qh >> j) << 4) & 0x10;
    const int xh1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>(((qs[j] & 0x0f) | xh0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | xh1) - 16) * d;
  }
}

void DequantQ5_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  const uint32_t qh = LoadU32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int xh0 = ((qh >> j) << 4) & 0x10;
    const int xh1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>((qs[j] & 0x0f) | xh0) * d + m;
    y[j + 16] = static_cast<float>((qs[j] >> 4) | xh1) * d + m;
  }
}

void DequantQ8_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}


void DequantQ4_K(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float dmin = LoadF16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    ScaleMinK4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    ScaleMinK4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

void DequantQ5_K(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float dmin = LoadF16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    ScaleMinK4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    ScaleMinK4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

void DequantQ6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = LoadF16(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = static_cast<int>((ql[l + 0] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = static_cast<int>((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = static_cast<int>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = static_cast<int>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * sc[is + 0] * static_cast<float>(q1);
      y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
      y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
      y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn BlockDequantizer(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_0: return DequantQ4_0;
    case GgmlType::kQ4_1: return DequantQ4_1;
    case GgmlType::kQ5_0: return DequantQ5_0;
    case GgmlType::kQ5_1: return DequantQ5_1;
    case GgmlType::kQ8_0: return DequantQ8_0;
    case GgmlType::kQ4_K: return DequantQ4_K;
    case GgmlType::kQ5_K: return DequantQ5_K;
    case GgmlType::kQ6_K: return DequantQ6_K;
    default: return nullptr;
  }
}

}  // namespace

void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

const GgmlTypeInfo* GgmlTypeInfoOf(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return &kF32Info;
    case GgmlType::kF16: return &kF16Info;
    case GgmlType::kBF16: return &kBF16Info;
    case GgmlType::kQ4_0: return &kQ4_0Info;
    case GgmlType::kQ4_1: return &kQ4_1Info;
    case GgmlType::kQ5_0: return &kQ5_0Info;
    case GgmlType::kQ5_1: return &kQ5_1Info;
    case GgmlType::kQ8_0: return &kQ8_0Info;
    case GgmlType::kQ4_K: return &kQ4_KInfo;
    case GgmlType::kQ5_K: return &kQ5_KInfo;
    case GgmlType::kQ6_K: return &kQ6_KInfo;
  }
  return nullptr;
}

const char* GgmlTypeName(uint32_t type) {
  for (const NamedType& t : kAllGgmlTypes) {
    if (t.value == type) return t.name;
  }
  return "unknown";
}

bool ParseGgmlType(const std::string& name, GgmlType* out) {
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  for (const NamedType& t : kAllGgmlTypes) {
    if (upper == t.name && GgmlTypeInfoOf(t.value) != nullptr) {
      *out = static_cast<GgmlType>(t.value);
      return true;
    }
  }
  return false;
}

size_t GgmlRowBytes(GgmlType type, size_t n) {
  const GgmlTypeInfo* info = GgmlTypeInfoOf(static_cast<uint32_t>(type));
  if (info == nullptr || n % info->block_size != 0) return 0;
  return n / info->block_size * info->type_size;
}

int GgmlHalfFieldOffsets(GgmlType type, int offsets[2]) {
  switch (type) {
    case GgmlType::kQ8_0: case GgmlType::kQ4_0: case GgmlType::kQ5_0:
      offsets[0] = 0;
      return 1;
    case GgmlType::kQ4_1: case GgmlType::kQ5_1: case GgmlType::kQ4_K: case GgmlType::kQ5_K:
      offsets[0] = 0;
      offsets[1] = 2;
      return 2;
    case GgmlType::kQ6_K:
      offsets[0] = 208;  // after ql[128], qh[64], scales[16]
      return 1;
    default:
      return 0;
  }
}

void DequantizeRow(GgmlType type, const void* src, float* dst, size_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, p, n * 4);
      return;
    case GgmlType::kF16:
      for (size_t i = 0; i < n; ++i) dst[i] = LoadF16(p + 2 * i);
      return;
    case GgmlType::kBF16:
      for (size_t i = 0; i < n; ++i) dst[i] = BF16ToF32(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      return;
    default:
      break;
  }
  const GgmlTypeInfo* info = GgmlTypeInfoOf(static_cast<uint32_t>(type));
  const BlockFn fn = BlockDequantizer(type);
  if (info == nullptr || fn == nullptr) return;
  for (size_t b = 0; b < n / info->block_size; ++b) fn(p + b * info->type_size, dst + b * info->block_size);
}

void DequantizeRowF64(GgmlType type, const void* src, double* dst, size_t n) {
  const GgmlTypeInfo* info = GgmlTypeInfoOf(static_cast<uint32_t>(type));
  if (info == nullptr) return;
  const auto* p = static_cast<const uint8_t*>(src);
  float block[kQK_K];
  const size_t chunk = info->block_size == 1 ? kQK_K : info->block_size;
  const size_t chunk_bytes = info->block_size == 1 ? kQK_K * info->type_size : info->type_size;
  for (size_t i = 0; i < n; i += chunk) {
    const size_t m = n - i < chunk ? n - i : chunk;
    DequantizeRow(type, p + i / chunk * chunk_bytes, block, m);
    for (size_t j = 0; j < m; ++j) dst[i + j] = block[j];
  }
}

bool QuantizeRowQ8_0(const float* x, void* dst, size_t n) {
  if (n % 32 != 0) return false;
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t b = 0; b < n / 32; ++b, x += 32, out += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreF16(out, d);
    for (int j = 0; j < 32; ++j) {
      // roundf rounds half away from zero, as ggml and gguf-py's np_roundf; the
      // value is within [-127, 127] for finite input.
      const float q = std::round(x[j] * id);
      const int qi = q >= 127.0f ? 127 : q <= -128.0f ? -128 : q == q ? static_cast<int>(q) : 0;
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(qi));
    }
  }
  return true;
}

bool QuantizeRowQ4_0(const float* x, void* dst, size_t n) {
  if (n % 32 != 0) return false;
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t b = 0; b < n / 32; ++b, x += 32, out += 18) {
    // The value of largest magnitude, sign kept; the first one on ties.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreF16(out, d);
    for (int j = 0; j < 16; ++j) {
      // Truncation toward zero of a value in [0, 16.5]; clamped before the
      // conversion so that no input can make it undefined.
      const float v0 = std::trunc(x[j] * id + 8.5f);
      const float v1 = std::trunc(x[16 + j] * id + 8.5f);
      const int q0 = v0 >= 15.0f ? 15 : v0 > 0.0f ? static_cast<int>(v0) : 0;
      const int q1 = v1 >= 15.0f ? 15 : v1 > 0.0f ? static_cast<int>(v1) : 0;
      out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
  return true;
}

}  // namespace llm
