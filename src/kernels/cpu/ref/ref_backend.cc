// Scalar reference kernels: the oracle every optimized kernel is tested against.
// Plain loops with double accumulation, no threads, no tricks.
#include <cmath>
#include <vector>

#include "core/quant.h"
#include "kernels/ops.h"

namespace llm {
namespace {

double WeightAt(const MatView& w, int64_t i) {
  switch (w.dtype) {
    case DType::kF16: return F16ToF32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::kBF16: return BF16ToF32(static_cast<const uint16_t*>(w.data)[i]);
    default: return static_cast<const float*>(w.data)[i];
  }
}

// Row n of W widened to float64: exact for every storage type (quantized
// blocks dequantized as ggml defines them, in float64).
void WeightRow(const MatView& w, int64_t n, std::vector<double>* row) {
  row->resize(static_cast<size_t>(w.cols));
  if (IsQuantized(w.dtype)) {
    const auto* base = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(n) * DTypeRowBytes(w.dtype, w.cols);
    DequantizeRowF64(static_cast<GgmlType>(DTypeGgmlType(w.dtype)), base, row->data(), static_cast<size_t>(w.cols));
    return;
  }
  for (int64_t k = 0; k < w.cols; ++k) (*row)[k] = WeightAt(w, n * w.cols + k);
}

class ReferenceBackend final : public KernelBackend {
 public:
  const char* name() const override { return "reference"; }

  void MatMul(const float* x, int64_t M, const MatView& w, const float* bias, float* y) override {
    const int64_t N = w.rows, K = w.cols;
    std::vector<double> row;
    for (int64_t n = 0; n < N; ++n) {
      WeightRow(w, n, &row);
      for (int64_t m = 0; m < M; ++m) {
        double acc = bias ? bias[n] : 0.0;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(x[m * K + k]) * row[k];
        y[m * N + n] = static_cast<float>(acc);
      }
    }
  }

  void RmsNorm(const float* x, const MatView& weight, float eps, int64_t M, float* out) override {
    const int64_t D = weight.cols;
    for (int64_t m = 0; m < M; ++m) {
      double ss = 0;
      for (int64_t d = 0; d < D; ++d) ss += static_cast<double>(x[m * D + d]) * x[m * D + d];
      const double inv = 1.0 / std::sqrt(ss / D + eps);
      for (int64_t d = 0; d < D; ++d) out[m * D + d] = static_cast<float>(x[m * D + d] * inv * WeightAt(weight, d));
    }
  }

  void Rope(float* x, int64_t M, int num_heads, int head_dim, int start_pos, const float* cos_table,
            const float* sin_table) override {
    const int half = head_dim / 2;
    for (int64_t m = 0; m < M; ++m) {
      const float* c = cos_table + (start_pos + m) * half;
      const float* s = sin_table + (start_pos + m) * half;
      for (int h = 0; h < num_heads; ++h) {
        float* v = x + (m * num_heads + h) * head_dim;
        // HF: q * cos + rotate_half(q) * sin, rotate_half(q) = cat(-q2, q1).
        for (int i = 0; i < half; ++i) {
          const double a = v[i], b = v[i + half];
          v[i] = static_cast<float>(a * c[i] - b * s[i]);
          v[i + half] = static_cast<float>(b * c[i] + a * s[i]);
        }
      }
    }
  }

  void Attention(const AttentionArgs& a) override {
    const int hd = a.cache.head_dim;
    const int group = a.num_heads / a.cache.num_kv_heads;
    std::vector<double> scores;
    for (int t = 0; t < a.num_tokens; ++t) {
      const int pos = a.start_pos + t;
      for (int h = 0; h < a.num_heads; ++h) {
        const float* q = a.q + (static_cast<size_t>(t) * a.num_heads + h) * hd;
        const int kvh = h / group;
        scores.assign(pos + 1, 0.0);
        double max_score = -INFINITY;
        for (int p = 0; p <= pos; ++p) {
          const float* k = a.cache.KeyAt(kvh, p);
          double s = 0;
          for (int i = 0; i < hd; ++i) s += static_cast<double>(q[i]) * k[i];
          scores[p] = s * a.scale;
          max_score = std::max(max_score, scores[p]);
        }
        double sum = 0;
        for (int p = 0; p <= pos; ++p) sum += (scores[p] = std::exp(scores[p] - max_score));
        float* out = a.out + (static_cast<size_t>(t) * a.num_heads + h) * hd;
        for (int i = 0; i < hd; ++i) {
          double acc = 0;
          for (int p = 0; p <= pos; ++p) acc += scores[p] * a.cache.ValueAt(kvh, p)[i];
          out[i] = static_cast<float>(acc / sum);
        }
      }
    }
  }

  void SiluMul(const float* gate, const float* up, size_t n, float* out) override {
    for (size_t i = 0; i < n; ++i) {
      const double g = gate[i];
      out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
    }
  }

  void Add(float* x, const float* y, size_t n) override {
    for (size_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void Embedding(const MatView& table, const int32_t* ids, int64_t n, float* out) override {
    std::vector<double> row;
    for (int64_t i = 0; i < n; ++i) {
      WeightRow(table, ids[i], &row);
      for (int64_t d = 0; d < table.cols; ++d) out[i * table.cols + d] = static_cast<float>(row[d]);
    }
  }
};

}  // namespace

std::unique_ptr<KernelBackend> MakeReferenceBackend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace llm
