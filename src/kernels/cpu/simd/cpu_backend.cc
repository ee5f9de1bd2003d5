// The CPU backend: SIMD kernels from cpu_kernels.cc spread over a ThreadPool.
// Decides how each op is split into tasks; the arithmetic lives in the kernels.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/cpu/amx/amx_gemm.h"
#include "kernels/cpu/simd/cpu_kernels.h"
#include "kernels/ops.h"

namespace llm {
namespace {

// From this many rows bfloat16 matmuls go to the AMX tiles where the CPU has
// them (rows past M padded to a 32-row block); below, the batched GEMV. The
// AMX kernel's cost is flat up to 32 rows, but it read W at only 53-64% of
// the bandwidth (each pass packed its panels, then computed), where the
// batched GEMV reads its four quarters at 82-85% for 4 rows, 63-69% for 5,
// 59-63% for 6 against 59-61% (roof_pairs --batch, 2048x5632 from memory,
// alternating; Xeon with AMX, 2 threads): TinyLlama bf16 tg64 at B = 4,
// three alternating runs, 9.5-10.1 tok/s from 4 rows, 12.6-13.2 from 6.
// With W read in place by the few-rows kernel (amx::FewRowsApply) the tiles
// read 73% at 6 rows and 71% at 8, the GEMV 59% and 49%; at 5 rows the GEMV
// reads 65-70% (2026-12-08), so the threshold stays.
// (Before the GEMV's quarters, S_TG at B = 2 / 4 / 8 / 12 was 23.9 / 42.3 /
// 59.8 / 68.5 tok/s from 16 rows on, 20.9-23.7 / 41.3 / 79.8 / 114.4 from 4.)
constexpr int64_t kAmxMinRows = 6;
constexpr int64_t kAmxMinQuantRows = 128;
// float16 W: three tile products per product (hi/lo splits of W and x), and
// the split costs more per panel than bf16's reorder.
constexpr int64_t kAmxMinF16Rows = 16;
// W rows per AMX task: four 32-row panels, so two threads get ~40+ tasks at
// Llama widths and the tail imbalance stays small.
constexpr int64_t kAmxRowBlock = 128;
// From this many rows bfloat16 matmuls go to the AVX512-BF16 dot products on
// CPUs where they beat FMA and there are no tiles (Zen 4); below, decode's
// GEMV reads W at the bandwidth limit.
constexpr int64_t kDotsMinRows = 64;
// --decode-x (ops.h DecodeX). auto rounds x to float16 for one-row float16 /
// bfloat16 matmuls where simd::HalfXPays (AMD AVX-512; measured in
// cpu_kernels.cc). bf16: one row (the decode of one sequence) of a bf16 matmul
// on the dot products wherever they exist, x rounded to bf16 as llama.cpp does.
// Zen 4, 2 threads, bf16 from DRAM, medians of 5 alternating rounds, one row
// after the other: 2048x5632 45.6 against 39.1 GB/s for float32 x widening W,
// 5632x2048 55.8-58.0 against 28.3-31.0 (float32 x, 22 KiB, is pushed out of L1
// by the stream; the four-stream widening GEMV read 30.9-32.2 there), 4096x4096
// 32.8 against 24.3-28.5. Not the default: the gqa_odd_bias fixture's decode
// logits then err 1.04e-2 against transformers' own bf16 error of 9.75e-3.
std::atomic<DecodeX> g_decode_x{DecodeX::kAuto};
bool Bf16DecodeX() { return g_decode_x.load() == DecodeX::kBf16; }
// Whether a one-row float16 / bfloat16 matmul on FMA takes float16 x.
bool HalfDecodeX() {
  const DecodeX mode = g_decode_x.load();
  return mode == DecodeX::kFloat16 || (mode != DecodeX::kFloat32 && simd::HalfXPays());
}

using Bf16Gemm = void (*)(const uint16_t*, int64_t, const MatView&, int64_t, int64_t, const float*, float*, void*,
                          int64_t);
// The unit of bf16 matrix products: the tiles where enabled, else the dot
// products where enabled (they beat FMA there), else FMA.
ComputeUnit Bf16MatrixUnit() {
  if (amx::AmxEnabled()) return ComputeUnit::kAmxBf16;
  return amx::Bf16DotsEnabled() ? ComputeUnit::kBf16Dot : ComputeUnit::kFma;
}
// The bf16 GEMM of a matrix unit: tiles or dot products, same operands.
Bf16Gemm Bf16GemmOn(ComputeUnit unit) { return unit == ComputeUnit::kBf16Dot ? amx::GemmBf16Dots : amx::GemmBf16; }
// Prefill attention switches to GEMMs from this many query tokens, in blocks
// of this many (query token, head) rows per task, and of at most
// kAttentionBlockTokens tokens: every row of a block computes scores up to
// the block's last token, so with one head per KV head (Llama 2) 384-token
// blocks did 62% more products than the causal triangle at pp512, 192-token
// ones 25% (Llama-2-7B bf16 pp512 sdpa.fused 192-200 -> 175-179 ms, 128
// tokens 171-185; Xeon with AMX). Grouped heads keep 384 rows (TinyLlama: 48
// tokens).
constexpr int kGemmAttentionMinTokens = 16;
constexpr int64_t kAttentionRowBlock = 384;
constexpr int64_t kAttentionBlockTokens = 192;

class CpuBackend final : public KernelBackend {
 public:
  explicit CpuBackend(ThreadPool* pool) : pool_(pool), scratch_(pool->num_threads()) {}

  const char* name() const override { return "cpu"; }

  void MatMul(const float* x, int64_t M, const MatView& w, const float* bias, float* y) override {
    const int64_t N = w.rows;
    // Decode (of one sequence or a batch): memory-bound, W streams once and
    // serves every row; packing W for the register-tiled GEMM pays only above.
    const ComputeUnit unit = MatMulUnit(M, w);
    // Enough tasks for load balance, each long enough to amortise the hand-off.
    const int64_t grain = std::max<int64_t>(16, N / (8 * pool_->num_threads()) / 4 * 4);
    if (M == 1 && unit == ComputeUnit::kBf16Dot) {
      // Decode of bf16 W on the dot products: x rounded to bf16 once, read by every task.
      auto* xb = reinterpret_cast<uint16_t*>(Scratch(0, kRowsPacked, static_cast<size_t>(w.cols + 1) / 2));
      amx::RoundToBf16(x, w.cols, xb);
      pool_->ParallelRange(N, grain, [&](size_t b, size_t e, int) { amx::GemvBf16Dots(xb, w, b, e, bias, y); });
      return;
    }
    if (M >= simd::GemvMaxRows() && unit == ComputeUnit::kInt8Vnni) {
      PrefillOnPackedW(x, M, w, bias, y);
      return;
    }
    if (OnGemv(M, w)) {
      const GemvInput in = PrepareGemvInput(x, M, w);
      pool_->ParallelRange(N, GemvGrain(N, in.packed_rows != nullptr), [&](size_t b, size_t e, int worker) {
        GemvRowsOf(in, w, b, e, bias, y, worker);
      });
      return;
    }
    const int64_t K = w.cols;
    if (unit == ComputeUnit::kAmxBf16 && w.dtype == DType::kF16) {
      // float16 W on the bf16 tiles, W split exactly into hi + lo per panel
      // and x into hi + lo (amx::GemmF16Split): no bit of W is lost.
      auto* xb = reinterpret_cast<uint16_t*>(Scratch(0, kRowsPacked, amx::PackedActivationElems(M, K)));
      pool_->ParallelRange(amx::PaddedRows(M), amx::kBlock, [&](size_t b, size_t e, int) {
        amx::PackSplitActivations(x, M, K, b, e, xb);
      });
      // Up to kFewRowsMax rows: x's hi and lo rows as the few-rows kernel's B tiles.
      const bool few_rows = amx::FewRowsApplyF16(M, w);
      uint32_t* x_tiles = nullptr;
      if (few_rows) {
        const int64_t split_rows = 2 * amx::PaddedRows(M);
        x_tiles = reinterpret_cast<uint32_t*>(Scratch(0, kFewRowsX, amx::FewRowsXElems(split_rows, K)));
        amx::PackFewRows(xb, split_rows, K, x_tiles);
      }
      const size_t scratch_floats =
          few_rows ? amx::FewRowsF16ScratchBytes(K) / 4 : (amx::GemmScratchBytes(M, K, true) + 3) / 4;
      pool_->ParallelRange(N, kAmxRowBlock, [&](size_t b, size_t e, int worker) {
        if (few_rows) {
          amx::GemmF16FewRows(x_tiles, M, w, b, e, bias, y, Scratch(worker, kPack, scratch_floats));
        } else {
          amx::GemmF16Split(xb, M, w, b, e, bias, y, Scratch(worker, kPack, scratch_floats));
        }
      });
      return;
    }
    if (unit == ComputeUnit::kAmxBf16 || unit == ComputeUnit::kBf16Dot) {
      const Bf16Gemm gemm = Bf16GemmOn(unit);
      // Up to half a 32-row block, x runs as two bf16 rows, hi = bf16(x) and
      // lo = bf16(x - hi): both fit the block whose cost is paid anyway, and
      // y = hi W^T + lo W^T carries x to ~2^-16 instead of bf16's 2^-8 (decode
      // batches and short prompts keep float32-like activations).
      const bool split = M <= amx::kBlock / 2;
      const int64_t rows = split ? 2 * M : M;
      const float* a = x;
      float* y_parts = nullptr;
      if (split) {
        float* hi_lo = Scratch(0, kSplitRows, static_cast<size_t>(rows * K));
        for (int64_t i = 0; i < M * K; ++i) {
          const float hi = BF16ToF32(F32ToBF16(x[i]));
          hi_lo[i] = hi;
          hi_lo[M * K + i] = x[i] - hi;  // exact in float32
        }
        a = hi_lo;
        y_parts = Scratch(0, kSplitOut, static_cast<size_t>(rows * N));
      }
      // x as the few-rows kernel's B tiles, or rounded for the panel GEMM.
      const uint32_t* x_tiles =
          unit == ComputeUnit::kAmxBf16 && amx::FewRowsApply(rows, w) ? FewRowsX(a, rows, K) : nullptr;
      const uint16_t* xb = x_tiles == nullptr ? RoundRowsToBf16(a, rows, K) : nullptr;
      const size_t scratch_floats = (amx::GemmScratchBytes(rows, K) + 3) / 4;
      pool_->ParallelRange(N, kAmxRowBlock, [&](size_t b, size_t e, int worker) {
        if (IsQuantized(w.dtype)) {
          // The task's W rows dequantized (exactly, then rounded to bf16) into
          // the worker's panel, once per call for all M rows.
          const int64_t nb = static_cast<int64_t>(e - b);
          auto* panel = reinterpret_cast<uint16_t*>(Scratch(worker, kQuantPanel, (static_cast<size_t>(nb * K) + 1) / 2));
          float* row = Scratch(worker, kQuantRow, static_cast<size_t>(K));
          const size_t row_bytes = DTypeRowBytes(w.dtype, K);
          for (int64_t r = 0; r < nb; ++r) {
            simd::WidenRow(static_cast<const uint8_t*>(w.data) + (b + r) * row_bytes, w.dtype, K, row);
            ConvertFloats(row, DType::kF32, panel + r * K, DType::kBF16, static_cast<size_t>(K));
          }
          float* y_block = Scratch(worker, kQuantOut, static_cast<size_t>(rows * nb));
          gemm(xb, rows, MatView{panel, DType::kBF16, nb, K}, 0, nb, nullptr, y_block,
               Scratch(worker, kPack, scratch_floats), 0);
          for (int64_t m = 0; m < M; ++m) {
            for (int64_t n = 0; n < nb; ++n) {
              y[m * N + b + n] = y_block[m * nb + n] + (split ? y_block[(M + m) * nb + n] : 0.f) +
                                 (bias ? bias[b + n] : 0.f);
            }
          }
          return;
        }
        if (x_tiles != nullptr) {
          amx::GemmBf16FewRows(x_tiles, rows, w, b, e, split ? nullptr : bias, split ? y_parts : y);
        } else {
          gemm(xb, rows, w, b, e, split ? nullptr : bias, split ? y_parts : y, Scratch(worker, kPack, scratch_floats),
               0);
        }
        for (int64_t m = 0; split && m < M; ++m) {
          for (size_t n = b; n < e; ++n) {
            y[m * N + n] = y_parts[m * N + n] + y_parts[(M + m) * N + n] + (bias ? bias[n] : 0.f);
          }
        }
      });
      return;
    }
    float* x_packed = Scratch(0, kRowsPacked, simd::GemmPackedRowsFloats(M, K));
    const int64_t depth_blocks = (K + simd::kGemmDepth - 1) / simd::kGemmDepth;
    pool_->ParallelFor(depth_blocks, [&](size_t kb, int) {
      simd::PackGemmRows(x, M, K, static_cast<int64_t>(kb) * simd::kGemmDepth, x_packed);
    });
    // Blocks of GemmRowBlock() W rows (256 on AVX-512), or fewer where that
    // leaves a thread idle: k and v (256 rows in TinyLlama) were one task,
    // and ran at 44% of q's rate on 2 threads.
    const int64_t threads = pool_->num_threads();
    const int64_t per_thread = std::max<int64_t>(16, ((N + threads - 1) / threads + 15) / 16 * 16);
    const int64_t block = std::min(simd::GemmRowBlock(), per_thread);
    pool_->ParallelRange(N, block, [&](size_t b, size_t e, int worker) {
      simd::GemmRows(x_packed, M, w, b, e, bias, y, Scratch(worker, kPack, simd::GemmPackFloats()));
    });
  }

  // bfloat16 W on a matrix unit, from the rows where x goes in unsplit (see
  // MatMul): x rounded once for q, k and v; for gate and up, one GEMM whose
  // passes pair 64 rows of gate with the same rows of up
  // (amx::GemmBf16GateUpSilu).
  // Float W on the GEMV too: one region for q, k and v, one for gate and up
  // (SameXOnGemv, GateUpSiluOnGemv). Not quantized W: TinyLlama Q8_0 / Q4_0
  // decode read 1% slower fused in two A/B runs (within the noise), float W
  // 1-4% faster.
  bool FusesSameX(int64_t M, const MatView& w) const override {
    return FusesOnMatrixUnit(M, w) || (!IsQuantized(w.dtype) && OnGemv(M, w));
  }
  bool FusesGateUpSilu(int64_t M, const MatView& gate) const override { return FusesSameX(M, gate); }

  // One rounding of x and one parallel region over the tasks of every W: k
  // and v alone (256 rows each in TinyLlama) ran at 58% of q's rate, half of
  // their time rounding the same x again.
  void MatMulSameX(const float* x, int64_t M, const MatView* ws, const float* const* biases, float* const* ys,
                   int count) override {
    bool fused = FusesSameX(M, ws[0]);
    for (int i = 1; i < count; ++i) fused = fused && ws[i].dtype == ws[0].dtype && ws[i].cols == ws[0].cols;
    if (!fused) {
      KernelBackend::MatMulSameX(x, M, ws, biases, ys, count);
      return;
    }
    if (OnGemv(M, ws[0])) {
      SameXOnGemv(x, M, ws, biases, ys, count);
      return;
    }
    const int64_t K = ws[0].cols;
    const ComputeUnit unit = MatMulUnit(M, ws[0]);
    const Bf16Gemm gemm = Bf16GemmOn(unit);
    same_x_tasks_.clear();
    for (int i = 0; i < count; ++i) {
      for (int64_t n = 0; n < ws[i].rows; n += kAmxRowBlock) same_x_tasks_.push_back({i, n});
    }
    bool few_rows = unit == ComputeUnit::kAmxBf16;
    for (int i = 0; i < count; ++i) few_rows = few_rows && amx::FewRowsApply(M, ws[i]);
    const uint32_t* x_tiles = few_rows ? FewRowsX(x, M, K) : nullptr;
    const uint16_t* xb = few_rows ? nullptr : RoundRowsToBf16(x, M, K);
    const size_t scratch_floats = (amx::GemmScratchBytes(M, K) + 3) / 4;
    pool_->ParallelFor(same_x_tasks_.size(), [&](size_t t, int worker) {
      const auto [i, n] = same_x_tasks_[t];
      if (few_rows) {
        amx::GemmBf16FewRows(x_tiles, M, ws[i], n, std::min(n + kAmxRowBlock, ws[i].rows), biases[i], ys[i]);
        return;
      }
      gemm(xb, M, ws[i], n, std::min(n + kAmxRowBlock, ws[i].rows), biases[i], ys[i],
           Scratch(worker, kPack, scratch_floats), 0);
    });
  }

  void GateUpSilu(const float* x, int64_t M, const MatView& gate, const MatView& up, const float* gate_bias,
                  const float* up_bias, float* out) override {
    if (!FusesGateUpSilu(M, gate) || up.dtype != gate.dtype || up.rows != gate.rows || up.cols != gate.cols) {
      KernelBackend::GateUpSilu(x, M, gate, up, gate_bias, up_bias, out);
      return;
    }
    if (OnGemv(M, gate)) {
      GateUpSiluOnGemv(x, M, gate, up, gate_bias, up_bias, out);
      return;
    }
    const int64_t K = gate.cols;
    const bool dots = MatMulUnit(M, gate) == ComputeUnit::kBf16Dot;
    const uint32_t* x_tiles = !dots && amx::FewRowsApply(M, gate) ? FewRowsX(x, M, K) : nullptr;
    const uint16_t* xb = x_tiles == nullptr ? RoundRowsToBf16(x, M, K) : nullptr;
    const size_t scratch_floats = (amx::GemmScratchBytes(M, K) + 3) / 4;
    // Tasks of 64 rows of each: the 128 W rows of MatMul's tasks.
    pool_->ParallelRange(gate.rows, kAmxRowBlock / 2, [&](size_t b, size_t e, int worker) {
      if (x_tiles != nullptr) {
        amx::GemmBf16GateUpSiluFewRows(x_tiles, M, gate, up, b, e, gate_bias, up_bias, out);
      } else {
        amx::GemmBf16GateUpSilu(xb, M, gate, up, b, e, gate_bias, up_bias, out, Scratch(worker, kPack, scratch_floats),
                                dots);
      }
    });
  }

  ComputeUnit MatMulUnit(int64_t M, const MatView& w) const override {
    // (AVX2's int8 dot products have no probe of their own: their roof is the FMA peak.)
    if (IsQuantized(w.dtype) && M < simd::GemvMaxRows() && simd::QuantActivationBytes(M, w) > 0 &&
        simd::Int8DotsOnVnni()) {
      return ComputeUnit::kInt8Vnni;
    }
    if (Int8Prefill(M, w)) return ComputeUnit::kInt8Vnni;
    // Quantized W of a bfloat16 model: dequantizing W costs about as much as
    // the FMA GEMM of ~100 rows, so only long prefill chunks go to the bf16
    // unit (TinyLlama Q4_0 pp512 on Zen 4: 88 tok/s on the FMA GEMM, ~155 on
    // the dot products).
    if (IsQuantized(w.dtype) && w.bf16_compute && M >= kAmxMinQuantRows) return Bf16MatrixUnit();
    if (M == 1 && w.dtype == DType::kBF16 && Bf16DecodeX() && amx::Bf16DotsUsable()) {
      return ComputeUnit::kBf16Dot;
    }
    if (!amx::AmxEnabled()) return w.dtype == DType::kBF16 && M >= kDotsMinRows ? Bf16MatrixUnit() : ComputeUnit::kFma;
    if (w.dtype == DType::kBF16 && M >= kAmxMinRows) return ComputeUnit::kAmxBf16;
    if (w.dtype == DType::kF16 && M >= kAmxMinF16Rows) return ComputeUnit::kAmxBf16;
    return ComputeUnit::kFma;
  }
  // Prefill (M >= GemvMaxRows) of W repacked for VNNI on the decode kernel's
  // tiles (4 rows of x per pass), x quantized to int8 per 32 as in decode
  // and in llama.cpp: W's values exact. Zen 4, TinyLlama pp512 over the
  // dequantized panels: float16 models (FMA GEMM) 2.0-2.6x, bfloat16 models
  // (AVX512-BF16 dot products) 1.10-1.42x. A bfloat16 model's long chunks
  // stay on AMX tiles where there are some (not measured against them).
  bool Int8Prefill(int64_t M, const MatView& w) const {
    if (!IsQuantized(w.dtype) || M < simd::GemvMaxRows() || !simd::Int8DotsOnVnni() ||
        simd::QuantActivationBytes(M, w) == 0 || packed_.count(w.data) == 0) {
      return false;
    }
    return !(w.bf16_compute && M >= kAmxMinQuantRows && amx::AmxEnabled());
  }
  // Tasks of kPrefillRowBlock rows of x (their int8 copy stays in L2) by a
  // few 16-row groups of W (each reused from L1 by every row of the block).
  static constexpr int64_t kPrefillRowBlock = 64;
  void PrefillOnPackedW(const float* x, int64_t M, const MatView& w, const float* bias, float* y) {
    void* prepared = Scratch(0, kQuantX, (simd::QuantActivationBytes(M, w) + 3) / 4);
    pool_->ParallelRange(M, 16, [&](size_t b, size_t e, int) {
      simd::PrepareQuantActivations(x, M, w, prepared, true, static_cast<int64_t>(b), static_cast<int64_t>(e));
    });
    const void* rows = packed_.find(w.data)->second.rows;
    const int64_t groups = w.rows / simd::kPackedRows, row_blocks = (M + kPrefillRowBlock - 1) / kPrefillRowBlock;
    const int64_t groups_per_task = std::max<int64_t>(1, groups / (8 * pool_->num_threads()));
    const int64_t group_tasks = (groups + groups_per_task - 1) / groups_per_task;
    pool_->ParallelFor(static_cast<size_t>(row_blocks * group_tasks), [&](size_t task, int) {
      const int64_t rb = static_cast<int64_t>(task) / group_tasks, gt = static_cast<int64_t>(task) % group_tasks;
      const int64_t g0 = gt * groups_per_task, g1 = std::min(groups, g0 + groups_per_task);
      const int64_t m0 = rb * kPrefillRowBlock, m1 = std::min(M, m0 + kPrefillRowBlock);
      simd::GemvPackedRows(prepared, M, w, rows, g0 * simd::kPackedRows, g1 * simd::kPackedRows, bias, y, m0, m1);
    });
  }

  ComputeUnit AttentionUnit(const AttentionArgs& a) const override {
    if (!a.bf16_inputs || a.num_tokens < kGemmAttentionMinTokens) return ComputeUnit::kFma;
    return Bf16MatrixUnit();
  }

  // x[M, K] rounded to bf16 as the matrix units' A operand (amx::PackActivations),
  // over the threads, into worker 0's scratch.
  const uint16_t* RoundRowsToBf16(const float* x, int64_t M, int64_t K) {
    auto* xb = reinterpret_cast<uint16_t*>(Scratch(0, kRowsPacked, (amx::PackedActivationElems(M, K) + 1) / 2));
    pool_->ParallelRange(amx::PaddedRows(M), amx::kBlock, [&](size_t b, size_t e, int) {
      amx::PackActivations(x, M, K, b, e, xb);
    });
    return xb;
  }

  // x[M, K] as the B tiles of amx's few-rows GEMM (rounded to bf16 first), once per call.
  const uint32_t* FewRowsX(const float* x, int64_t M, int64_t K) {
    const uint16_t* xb = RoundRowsToBf16(x, M, K);
    auto* x_tiles = reinterpret_cast<uint32_t*>(Scratch(0, kFewRowsX, amx::FewRowsXElems(M, K)));
    amx::PackFewRows(xb, M, K, x_tiles);
    return x_tiles;
  }

  // GemmRows on one worker: packs x[M, K] into that worker's scratch first.
  void GemmOnWorker(const float* x, int64_t M, const MatView& w, int64_t n_end, float* y, int worker,
                    int64_t ldw = 0) {
    float* x_packed = Scratch(worker, kRowsPacked, simd::GemmPackedRowsFloats(M, w.cols));
    for (int64_t k0 = 0; k0 < w.cols; k0 += simd::kGemmDepth) simd::PackGemmRows(x, M, w.cols, k0, x_packed);
    simd::GemmRows(x_packed, M, w, 0, n_end, nullptr, y, Scratch(worker, kPack, simd::GemmPackFloats()), ldw);
  }

  void RmsNorm(const float* x, const MatView& weight, float eps, int64_t M, float* out) override {
    const int64_t D = weight.cols;
    pool_->ParallelRange(M, 8, [&](size_t b, size_t e, int) {
      for (size_t m = b; m < e; ++m) simd::RmsNormRow(x + m * D, weight, eps, out + m * D);
    });
  }

  void Rope(float* x, int64_t M, int num_heads, int head_dim, int start_pos, const float* cos_table,
            const float* sin_table) override {
    const int half = head_dim / 2;
    const auto rows = [&](int64_t m_begin, int64_t m_end) {
      for (int64_t m = m_begin; m < m_end; ++m) {
        const float* c = cos_table + (start_pos + m) * half;
        const float* s = sin_table + (start_pos + m) * half;
        for (int h = 0; h < num_heads; ++h) {
          float* v = x + (m * num_heads + h) * head_dim;
          for (int i = 0; i < half; ++i) {  // HF rotate_half: (a, b) -> (a c - b s, b c + a s)
            const float a = v[i], b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
          }
        }
      }
    };
    // Prefill chunks on every thread (TinyLlama pp512: 11.7 ms on one, 1.8%
    // of a bf16 prefill); a decode step's few rows are not worth a hand-off.
    if (M < 16) return rows(0, M);
    pool_->ParallelRange(M, 8, [&](size_t b, size_t e, int) { rows(b, e); });
  }

  // Prompt chunks of 16+ tokens: AttentionFused (or AttentionBf16 on a bf16
  // matrix unit). Decode and shorter chunks: three parallel passes, so the
  // profiler can show scores, softmax and the weighted sum apart. Scores and
  // weighted sum run per (token, KV head) and serve all query heads of the
  // group from one read of each K and V row: with grouped-query attention
  // the cache is read once, not once per head. Scores of every (token, head)
  // sit in one scratch matrix [T * H, cache capacity] (sized once: no
  // allocation per token).
  void Attention(const AttentionArgs& a) override {
    if (const ComputeUnit unit = AttentionUnit(a); unit != ComputeUnit::kFma) return AttentionBf16(a, unit);
    if (a.num_tokens >= kGemmAttentionMinTokens) return AttentionFused(a);
    // Decode and short chunks: one dot product per (row, position).
    const int hd = a.cache.head_dim;
    const int kv_heads = a.cache.num_kv_heads;
    const int group = a.num_heads / kv_heads;
    const size_t stride = static_cast<size_t>(a.cache.capacity);
    const size_t num_rows = static_cast<size_t>(a.num_tokens) * a.num_heads;
    float* scores = Scratch(0, kScores, num_rows * stride);
    // Softmax leaves exp(s - max) unnormalized; outputs are scaled by 1/sum at
    // the end, which saves a pass over every score.
    float* inv_sum = Scratch(0, kRowSums, num_rows);
    const SdpaWork work = SdpaCost(a);
    // Task (t, kvh): query rows t*H + kvh*group ... + group-1.
    auto for_groups = [&](const std::function<void(int t, int kvh, int pos)>& fn) {
      pool_->ParallelFor(static_cast<size_t>(a.num_tokens) * kv_heads, [&](size_t task, int) {
        const int t = static_cast<int>(task / kv_heads);
        fn(t, static_cast<int>(task % kv_heads), a.start_pos + t);
      });
    };
    {
      LLM_PROFILE(profiler_, Op::kSdpaScores, a.layer, work.scores);
      for_groups([&](int t, int kvh, int pos) {
        const size_t row0 = static_cast<size_t>(t) * a.num_heads + static_cast<size_t>(kvh) * group;
        simd::AttentionScores(a.q + row0 * hd, group, a.cache.KeyAt(kvh, 0), pos + 1, hd, a.scale,
                              scores + row0 * stride, static_cast<int64_t>(stride));
      });
    }
    {
      LLM_PROFILE(profiler_, Op::kSdpaSoftmax, a.layer, work.softmax);
      pool_->ParallelFor(num_rows, [&](size_t row, int) {
        const int pos = a.start_pos + static_cast<int>(row / a.num_heads);
        float* s = scores + row * stride;
        inv_sum[row] = 1.0f / simd::ExpShiftSum(s, pos + 1, simd::MaxOf(s, pos + 1));
      });
    }
    {
      LLM_PROFILE(profiler_, Op::kSdpaWeightedSum, a.layer, work.weighted_sum);
      for_groups([&](int t, int kvh, int pos) {
        const size_t row0 = static_cast<size_t>(t) * a.num_heads + static_cast<size_t>(kvh) * group;
        simd::AttentionWeightedSum(scores + row0 * stride, group, static_cast<int64_t>(stride),
                                   a.cache.ValueAt(kvh, 0), pos + 1, hd, a.out + row0 * hd);
        for (int g = 0; g < group; ++g) simd::Scale(inv_sum[row0 + g], a.out + (row0 + g) * hd, hd);
      });
    }
  }

  // One task of fused prefill attention: rows r0 .. r0 + rows - 1 of KV head
  // kvh's block matrix, whose row r is query token r / group, head
  // kvh * group + r % group.
  struct QueryBlock {
    int kvh = 0;
    int64_t r0 = 0, rows = 0;
    int64_t need = 0;          // keys the block's last row sees (causal)
    float* qo = nullptr;       // [rows, hd]: the block's Q rows in, its unnormalized O rows out
    float* inv_sum = nullptr;  // [rows]: 1 / the softmax sum of each row, set by the task
    int worker = 0;
    int group = 1, start_pos = 0;
    int64_t Seen(int64_t r) const { return start_pos + (r0 + r) / group + 1; }  // positions row r sees
  };

  // Prefill attention fused per task (KV head, block of query rows), the
  // shared frame of AttentionFused and AttentionBf16: gathers the block's Q
  // rows, lets `compute` run S = Q Kᵀ, the causal softmax and O = P V on the
  // worker's scratch, and scatters O / sum into a.out.
  template <class Compute>
  void ForEachQueryBlock(const AttentionArgs& a, const Compute& compute) {
    const int hd = a.cache.head_dim;
    const int kv_heads = a.cache.num_kv_heads;
    const int group = a.num_heads / kv_heads;
    const int64_t group_rows = static_cast<int64_t>(a.num_tokens) * group;  // rows of one KV head
    const int64_t block_rows = std::min(kAttentionRowBlock, kAttentionBlockTokens * group);
    const int64_t blocks = (group_rows + block_rows - 1) / block_rows;
    auto row_of = [&](int kvh, int64_t r) {
      return static_cast<size_t>(r / group) * a.num_heads + static_cast<size_t>(kvh) * group + r % group;
    };
    pool_->ParallelFor(static_cast<size_t>(kv_heads) * blocks, [&](size_t task, int worker) {
      QueryBlock b;
      b.kvh = static_cast<int>(task / blocks);
      b.r0 = static_cast<int64_t>(task % blocks) * block_rows;
      b.rows = std::min(block_rows, group_rows - b.r0);
      b.group = group;
      b.start_pos = a.start_pos;
      b.need = b.Seen(b.rows - 1);
      b.worker = worker;
      b.qo = Scratch(worker, kRowsA, static_cast<size_t>(b.rows) * hd);
      b.inv_sum = Scratch(worker, kRowSums, static_cast<size_t>(b.rows));
      for (int64_t r = 0; r < b.rows; ++r) std::copy_n(a.q + row_of(b.kvh, b.r0 + r) * hd, hd, b.qo + r * hd);
      compute(b);
      for (int64_t r = 0; r < b.rows; ++r) {
        float* dst = a.out + row_of(b.kvh, b.r0 + r) * hd;
        for (int d = 0; d < hd; ++d) dst[d] = b.qo[r * hd + d] * b.inv_sum[r];
      }
    });
  }

  // Prefill attention on FMA (float32 and float16 models), fused per task
  // (KV head, block of query rows) as AttentionBf16 is: S = Q Kᵀ as a
  // register-tiled GEMM, the causal softmax on S's rows, O = P V, back to back
  // on the worker's scratch. Before, each step was its own parallel region
  // through a [T * H, capacity] score matrix (TinyLlama pp512: 32 MiB per
  // layer, written, read and rewritten, read again). Vᵀ of each KV head is
  // built once per call and shared by its blocks.
  void AttentionFused(const AttentionArgs& a) {
    LLM_PROFILE(profiler_, Op::kSdpaFused, a.layer, SdpaCost(a).fused);
    const int hd = a.cache.head_dim;
    const int kv_heads = a.cache.num_kv_heads;
    const int64_t ctx = a.start_pos + a.num_tokens;  // cache positions any row can see
    float* vt_all = Scratch(0, kValuesT, static_cast<size_t>(kv_heads) * hd * ctx);
    pool_->ParallelFor(kv_heads, [&](size_t kvh, int) {
      float* vt = vt_all + kvh * hd * ctx;
      for (int64_t p = 0; p < ctx; ++p) {
        const float* v = a.cache.ValueAt(static_cast<int>(kvh), static_cast<int>(p));
        for (int d = 0; d < hd; ++d) vt[d * ctx + p] = v[d];
      }
    });
    ForEachQueryBlock(a, [&](const QueryBlock& b) {
      // Keys past `need` are skipped, and P·V reads only that prefix of each Vᵀ row.
      float* p = Scratch(b.worker, kRowsB, static_cast<size_t>(b.rows) * b.need);
      GemmOnWorker(b.qo, b.rows, MatView{a.cache.KeyAt(b.kvh, 0), DType::kF32, b.need, hd}, b.need, p, b.worker);
      for (int64_t r = 0; r < b.rows; ++r) {
        const int64_t seen = b.Seen(r);
        float* s = p + r * b.need;
        simd::Scale(a.scale, s, seen);
        b.inv_sum[r] = 1.0f / simd::ExpShiftSum(s, seen, simd::MaxOf(s, seen));
        std::fill(s + seen, s + b.need, 0.f);  // the causal mask
      }
      GemmOnWorker(p, b.rows, MatView{vt_all + static_cast<size_t>(b.kvh) * hd * ctx, DType::kF32, hd, b.need}, hd,
                   b.qo, b.worker, ctx);
    });
  }

  // Prefill attention of a bf16 model on a bf16 matrix unit (AMX tiles or
  // AVX512-BF16 dot products), fused per task (KV head, block
  // of query rows): S = Q Kᵀ, the causal softmax and O = P V run back to back
  // on the worker's own scratch, so the block's scores stay in L2 instead of
  // passing through a [T * H, capacity] matrix three times. K and Vᵀ of each
  // KV head are rounded to bf16 and packed into the tiles' panels once per
  // call and shared by its blocks (each block packed them itself before). The
  // profile shows the fused work as one operator, `sdpa.fused`.
  void AttentionBf16(const AttentionArgs& a, ComputeUnit unit) {
    LLM_PROFILE(profiler_, Op::kSdpaFused, a.layer, OnUnit(SdpaCost(a).fused, unit));
    const int hd = a.cache.head_dim;
    const int kv_heads = a.cache.num_kv_heads;
    const int64_t ctx = a.start_pos + a.num_tokens;
    // K (for Q·Kᵀ) and Vᵀ (for P·V) of each KV head rounded to bf16 and put
    // in the tiles' panel order once, shared by all its blocks of query rows.
    const size_t k_elems = amx::PrepackedElems(ctx, hd), v_elems = amx::PrepackedElems(hd, ctx);
    auto* keys_packed = reinterpret_cast<uint32_t*>(Scratch(0, kKeysPacked, kv_heads * k_elems));
    auto* values_packed = reinterpret_cast<uint32_t*>(Scratch(0, kValuesT, kv_heads * v_elems));
    pool_->ParallelFor(2 * static_cast<size_t>(kv_heads), [&](size_t task, int) {
      const int kvh = static_cast<int>(task / 2);
      if (task % 2 == 0) {
        amx::PrepackRows(a.cache.KeyAt(kvh, 0), hd, ctx, hd, keys_packed + kvh * k_elems);
      } else {
        amx::PrepackColumns(a.cache.ValueAt(kvh, 0), hd, hd, ctx, values_packed + kvh * v_elems);
      }
    });
    const bool dots = unit == ComputeUnit::kBf16Dot;
    ForEachQueryBlock(a, [&](const QueryBlock& b) {
      const int64_t rows = b.rows, need = b.need;
      float* s = Scratch(b.worker, kRowsB, static_cast<size_t>(rows) * need);
      auto* xb = reinterpret_cast<uint16_t*>(
          Scratch(b.worker, kBf16Rows, (amx::PackedActivationElems(rows, std::max<int64_t>(need, hd)) + 1) / 2));
      void* gemm_scratch =
          Scratch(b.worker, kPack, (amx::GemmScratchBytes(rows, std::max<int64_t>(need, hd)) + 3) / 4);
      amx::PackActivations(b.qo, rows, hd, 0, amx::PaddedRows(rows), xb);
      amx::GemmBf16Prepacked(xb, rows, keys_packed + b.kvh * k_elems, hd, hd, 0, need, s, need, gemm_scratch, dots);
      // The causal softmax written straight into P·V's bf16 operand (one
      // pass for the maximum, one for exp, sum and rounding: the separate
      // scale, exp and rounding passes took 40% of this task's time).
      const int64_t ld = amx::RowStride(need);
      for (int64_t r = 0; r < rows; ++r) {
        b.inv_sum[r] = 1.0f / amx::SoftmaxRowToBf16(s + r * need, b.Seen(r), a.scale, ld, xb + r * ld);
      }
      std::fill(xb + rows * ld, xb + amx::PaddedRows(rows) * ld, uint16_t{0});
      amx::GemmBf16Prepacked(xb, rows, values_packed + b.kvh * v_elems, ctx, need, 0, hd, b.qo, hd, gemm_scratch,
                             dots);
    });
  }

  void set_profiler(Profiler* profiler) override { profiler_ = profiler; }

  void SiluMul(const float* gate, const float* up, size_t n, float* out) override {
    pool_->ParallelRange(n, 4096, [&](size_t b, size_t e, int) { simd::SiluMul(gate + b, up + b, e - b, out + b); });
  }

  void Add(float* x, const float* y, size_t n) override {
    pool_->ParallelRange(n, 1 << 16, [&](size_t b, size_t e, int) { simd::Add(x + b, y + b, e - b); });
  }

  // A prompt chunk's K and V on every thread, one KvWritePart (a KV head's K
  // or V) per task: one thread's scatter of 512-byte rows over 64 heads'
  // regions copied 4.5 GB/s (Llama-2-7B pp512: 118 ms, 2.9% of a bf16
  // prefill, Xeon with AMX). Decode's one row stays serial.
  void KvWrite(const float* k, const float* v, int64_t num_tokens, const KvCacheView& cache,
               int start_pos) override {
    if (num_tokens < kGemmAttentionMinTokens) return KernelBackend::KvWrite(k, v, num_tokens, cache, start_pos);
    pool_->ParallelFor(2 * static_cast<size_t>(cache.num_kv_heads), [&](size_t part, int) {
      KvWritePart(k, v, num_tokens, cache, start_pos, static_cast<int>(part));
    });
  }

  // The model's sum of PrepareWeightsBytes, before its PrepareWeights calls:
  // one arena for them all (see Packed).
  void ReserveWeights(size_t bytes) override {
    arena_.reset();
    auto arena = std::make_shared<BufferArena>(MemCategory::kWeights);
    if (bytes > 0 && arena->buffer.Allocate(bytes)) arena_ = std::move(arena);
  }

  // Q4_0 / Q8_0 / Q4_K / Q6_K matrices in the 16-row groups of the VNNI decode kernel
  // (simd::PackQuantRows), where this CPU runs it; MatMul reads them from
  // then on for decode, while prefill keeps the row-major original.
  void PrepareWeights(const MatView& w) override {
    auto it = packed_.find(w.data);
    if (it != packed_.end()) {
      ++it->second.refs;
      return;
    }
    const size_t bytes = PackedBytes(w);
    if (bytes == 0) return;
    Packed p;
    if (arena_ && (p.rows = arena_->Take(bytes)) != nullptr) {
      p.arena = arena_;
      if (arena_->full()) arena_.reset();  // its matrices hold it from here on
    } else {
      p.own.set_category(MemCategory::kWeights);
      if (!p.own.Allocate(bytes)) return;  // no room: the row-major kernels serve it
      p.rows = p.own.data();
    }
    p.bytes = bytes;
    void* dst = p.rows;
    pool_->ParallelRange(static_cast<size_t>(w.rows / simd::kPackedRows), 16,
                         [&](size_t b, size_t e, int) { simd::PackQuantRows(w, b, e, dst); });
    packed_.emplace(w.data, std::move(p));
  }

  size_t PrepareWeightsBytes(const MatView& w) const override { return packed_.count(w.data) ? 0 : PackedBytes(w); }

  size_t prepared_weight_bytes() const override {
    size_t total = 0;
    for (const auto& [data, p] : packed_) total += p.bytes;
    return total;
  }

  void ReleaseWeights(const MatView& w) override {
    auto it = packed_.find(w.data);
    if (it != packed_.end() && --it->second.refs == 0) packed_.erase(it);
    if (arena_ && arena_.use_count() == 1) arena_.reset();  // a reservation none of whose matrices is left
  }

  void Embedding(const MatView& table, const int32_t* ids, int64_t n, float* out) override {
    const size_t row_bytes = DTypeRowBytes(table.dtype, table.cols);
    for (int64_t i = 0; i < n; ++i) {
      const auto* row = static_cast<const uint8_t*>(table.data) + static_cast<size_t>(ids[i]) * row_bytes;
      simd::WidenRow(row, table.dtype, table.cols, out + i * table.cols);
    }
  }

 private:
  enum Slot { kPack, kRowsPacked, kScores, kRowSums, kValuesT, kRowsA, kRowsB, kKeysPacked, kBf16Rows, kSplitRows, kSplitOut, kQuantPanel, kQuantRow, kQuantOut, kQuantX, kUpRows, kFewRowsX, kNumSlots };

  // bfloat16 W on a matrix unit, from the rows where x goes in unsplit (see MatMul).
  bool FusesOnMatrixUnit(int64_t M, const MatView& w) const {
    const ComputeUnit unit = MatMulUnit(M, w);
    return w.dtype == DType::kBF16 && M > amx::kBlock / 2 &&
           (unit == ComputeUnit::kAmxBf16 || unit == ComputeUnit::kBf16Dot);
  }
  // Decode (of one sequence or a batch of fewer than GemvMaxRows rows) on the
  // GEMV kernels: W streams once and serves every row of x.
  bool OnGemv(int64_t M, const MatView& w) const {
    const ComputeUnit unit = MatMulUnit(M, w);
    return M < simd::GemvMaxRows() && unit != ComputeUnit::kAmxBf16 && unit != ComputeUnit::kBf16Dot;
  }
  // W's 16-row groups for the VNNI decode kernel (PrepareWeights), or null.
  const void* PackedRows(const MatView& w) const {
    if (simd::PackedQuantBytes(w) == 0) return nullptr;
    const auto it = packed_.find(w.data);
    return it == packed_.end() ? nullptr : it->second.rows;
  }

  // x as the GEMV kernels read it, prepared once per call (for every matrix
  // of W's type and width, float W): float16 for one row of float16 / bfloat16 W where
  // HalfDecodeX (half the L1 of float32 x beside the weight stream) and every
  // |x| fits; int8 blocks for quantized W on the dot products; else float32.
  // One row's int8 x is made by each worker as its first task begins, rather
  // than by worker 0 alone before the others start: they waited 2-10 us per
  // projection for it (TinyLlama Q4_0 decode trace, Zen 4: k_proj 13.7 us of
  // which 7.6 streaming), and x then came to them through worker 0's cache.
  // A batch's: once, by worker 0, read by every task.
  struct GemvInput {
    const float* x = nullptr;
    int64_t M = 1;
    const uint16_t* x_f16 = nullptr;
    size_t quant_bytes = 0;  // 0: quantized W reads float32 x
    const void* packed_rows = nullptr;  // quantized W's 16-row groups (x prepared for them), or null
    uint64_t call = 0;       // one row: the preparation each worker's scratch must hold
  };
  GemvInput PrepareGemvInput(const float* x, int64_t M, const MatView& w) {
    GemvInput in;
    in.x = x;
    in.M = M;
    if (!IsQuantized(w.dtype)) {
      if (M == 1 && (w.dtype == DType::kF16 || w.dtype == DType::kBF16) && HalfDecodeX()) {
        auto* xh = reinterpret_cast<uint16_t*>(Scratch(0, kRowsPacked, static_cast<size_t>(w.cols + 1) / 2));
        if (simd::RoundToF16(x, w.cols, xh)) in.x_f16 = xh;
      }
      return in;
    }
    in.quant_bytes = simd::QuantActivationBytes(M, w);
    if (in.quant_bytes == 0) return in;
    in.packed_rows = PackedRows(w);
    const size_t floats = (in.quant_bytes + 3) / 4;
    if (M == 1) {
      in.call = ++quant_x_calls_;
      for (int worker = 0; worker < pool_->num_threads(); ++worker) Scratch(worker, kQuantX, floats);
    } else {
      simd::PrepareQuantActivations(x, M, w, Scratch(0, kQuantX, floats), in.packed_rows != nullptr);
    }
    return in;
  }
  // Rows b .. e - 1 of y = x W^T (+ bias) on the GEMV kernels; multiples of
  // 16 for W in groups. Float W of the type and width `in` was prepared
  // for; quantized W, the matrix itself.
  void GemvRowsOf(const GemvInput& in, const MatView& w, int64_t b, int64_t e, const float* bias, float* y,
                  int worker) {
    if (!IsQuantized(w.dtype)) {
      if (in.x_f16 != nullptr) simd::GemvRowsHalfX(in.x_f16, w, b, e, bias, y);
      else simd::GemvRows(in.x, in.M, w, b, e, bias, y);
      return;
    }
    const void* xq = nullptr;
    if (in.quant_bytes > 0) {
      WorkerScratch& mine = scratch_[in.call != 0 ? worker : 0];
      if (in.call != 0 && mine.quant_x_call != in.call) {
        simd::PrepareQuantActivations(in.x, in.M, w, mine.slots[kQuantX].data(), in.packed_rows != nullptr);
        mine.quant_x_call = in.call;
      }
      xq = mine.slots[kQuantX].data();
    }
    if (in.packed_rows != nullptr) simd::GemvPackedRows(xq, in.M, w, in.packed_rows, b, e, bias, y);
    else simd::GemvQuantRows(in.x, xq, in.M, w, b, e, bias, y);
  }
  // Rows per GEMV task: ~8 tasks per thread, each long enough to amortise
  // the hand-off; whole 4-group tiles (64 rows) of W in groups.
  int64_t GemvGrain(int64_t rows, bool packed) const {
    const int64_t per_task = rows / (8 * pool_->num_threads());
    return packed ? std::max<int64_t>(64, per_task / 64 * 64) : std::max<int64_t>(16, per_task / 4 * 4);
  }

  // Several matrices of one x (q, k and v) in one parallel region: each
  // region pays its start and its tail (the last task alone), and k and v
  // (1 MiB each in TinyLlama bfloat16) are short enough for that to be a
  // third of their time.
  void SameXOnGemv(const float* x, int64_t M, const MatView* ws, const float* const* biases, float* const* ys,
                   int count) {
    const GemvInput in = PrepareGemvInput(x, M, ws[0]);
    int64_t total = 0;
    for (int i = 0; i < count; ++i) total += ws[i].rows;
    const int64_t grain = GemvGrain(total, false);  // float W only
    same_x_tasks_.clear();
    for (int i = 0; i < count; ++i) {
      for (int64_t n = 0; n < ws[i].rows; n += grain) same_x_tasks_.push_back({i, n});
    }
    pool_->ParallelFor(same_x_tasks_.size(), [&](size_t t, int worker) {
      const auto [i, n] = same_x_tasks_[t];
      GemvRowsOf(in, ws[i], n, std::min(n + grain, ws[i].rows), biases[i], ys[i], worker);
    });
  }

  // gate and up in one region, each task the same rows of both, silu(g) * u
  // written: no second region for up, none for SiluMul.
  void GateUpSiluOnGemv(const float* x, int64_t M, const MatView& gate, const MatView& up, const float* gate_bias,
                        const float* up_bias, float* out) {
    const GemvInput in = PrepareGemvInput(x, M, gate);
    const int64_t F = gate.rows;
    float* u = Scratch(0, kUpRows, static_cast<size_t>(M * F));
    // Tasks of as many bytes as MatMul's: half its rows of each matrix.
    pool_->ParallelRange(F, GemvGrain(F / 2, false), [&](size_t b, size_t e, int worker) {  // float W only
      GemvRowsOf(in, gate, b, e, gate_bias, out, worker);
      GemvRowsOf(in, up, b, e, up_bias, u, worker);
      for (int64_t m = 0; m < M; ++m) simd::SiluMul(out + m * F + b, u + m * F + b, e - b, out + m * F + b);
    });
  }

  // Per-worker scratch, grown on first use and then reused: no allocation per token.
  float* Scratch(int worker, Slot slot, size_t floats) {
    AlignedBuffer& buf = scratch_[worker].slots[slot];
    if (buf.size() < floats * sizeof(float)) {
      buf.set_category(MemCategory::kActivations);
      buf.Allocate(floats * sizeof(float));
    }
    return buf.as<float>();
  }

  // One cache line or more per worker: workers write their quant_x_call concurrently.
  struct alignas(64) WorkerScratch {
    AlignedBuffer slots[kNumSlots];
    uint64_t quant_x_call = 0;  // the MatMul whose x slots[kQuantX] holds
  };
  uint64_t quant_x_calls_ = 0;
  ThreadPool* pool_;
  Profiler* profiler_ = nullptr;
  std::vector<WorkerScratch> scratch_;
  // MatMulSameX's tasks (matrix, first row): kept to reuse the allocation.
  std::vector<std::pair<int, int64_t>> same_x_tasks_;
  // Packed matrices in 64-byte steps, so that consecutive ones in an arena stay aligned.
  static size_t PackedBytes(const MatView& w) { return AlignedSize(simd::PackedQuantBytes(w)); }

  // One allocation for all the matrices a model prepares (ReserveWeights): it
  // is large enough for huge pages, where TinyLlama's matrices alone (0.3-6.5
  // MB) are below AlignedBuffer's threshold and would stream from 4 KiB pages.
  struct Packed {
    void* rows = nullptr;
    size_t bytes = 0;
    std::shared_ptr<BufferArena> arena;  // holds rows, or
    AlignedBuffer own;                   // when there was no reservation (or no room left in it)
    int refs = 1;
  };
  std::shared_ptr<BufferArena> arena_;  // the reservation being filled
  std::unordered_map<const void*, Packed> packed_;  // by the row-major matrix's data
};

}  // namespace

std::unique_ptr<KernelBackend> MakeCpuBackend(ThreadPool* pool) { return std::make_unique<CpuBackend>(pool); }
const char* CpuSimdTargetName() { return simd::TargetName(); }
void SetCpuInt8DotEnabled(bool on) { simd::SetInt8DotEnabled(on); }
void SetCpuRepackEnabled(bool on) { simd::SetRepackEnabled(on); }
void SetCpuDecodeX(DecodeX mode) { g_decode_x.store(mode); }
bool CpuDecodeHalfX() { return simd::HalfXPays(); }

// Where a bfloat16 model's quantized matrices run long prefill chunks (MatMulUnit).
static std::string QuantBf16Prefill() {
  const ComputeUnit matrix_unit = Bf16MatrixUnit();
  if (matrix_unit == ComputeUnit::kFma) return "";
  const char* unit = matrix_unit == ComputeUnit::kAmxBf16 ? "AMX-BF16 tiles" : "AVX512-BF16 dot products";
  return std::string(" (a bfloat16 model's: from ") + std::to_string(kAmxMinQuantRows) +
         " rows, W dequantized exactly, rounded to bf16, on the " + unit + ")";
}

// CpuMatMulPath without --decode-x bf16.
static std::string DefaultMatMulPath(DType dtype) {
  const std::string fma = std::string(simd::TargetName()) + " FMA";
  if (dtype == DType::kBF16 && amx::AmxEnabled()) {
    return "batches of " + std::to_string(kAmxMinRows) +
           "+ rows (prefill, batched decode) and prefill attention on AMX-BF16 tiles (up to " +
           std::to_string(amx::kFewRowsMax) + " rows W read in place, x as the B tiles; more: W packed per pass), decode " +
           fma;
  }
  if (dtype == DType::kBF16 && amx::Bf16DotsEnabled()) {
    char ratio[16];
    std::snprintf(ratio, sizeof ratio, "%.1f", amx::Bf16DotsOverFma());
    return "batches of " + std::to_string(kDotsMinRows) + "+ rows (prefill) and prefill attention on AVX512-BF16 dot products (activations rounded to bf16, " +
           "float32 accumulation; " + ratio + "x the FMA rate, measured at startup), decode " + fma;
  }
  if (dtype == DType::kF16 && amx::AmxEnabled()) {
    return "batches of " + std::to_string(kAmxMinF16Rows) + "+ rows (prefill, batched decode) on AMX-BF16 tiles with W split exactly into bf16 hi + lo "
           "and x into hi + lo (3 tile products per product: the AMX peak counts one; up to " +
           std::to_string(amx::kFewRowsMax) + " rows W split 16 rows at a time, x as the B tiles), decode " + fma +
           " (weights widened to float32)";
  }
  if (IsQuantized(dtype)) {
    // A matrix of one 16-row group (Q5_K: int8 x only where W is packed).
    const MatView group{nullptr, dtype, simd::kPackedRows, DTypeBlockSize(dtype)};
    const bool int8 = simd::QuantActivationBytes(1, group) > 0;
    const char* unit = simd::Int8DotsOnVnni() ? " VNNI int8 dot products" : " int8 dot products (VPMADDUBSW)";
    const bool packed = simd::PackedQuantBytes(group) > 0;
    const std::string decode =
        std::string("decode reads ") + DTypeName(dtype) + (packed ? " blocks repacked at load in 16-row groups (" : " blocks (") +
        (int8 ? std::string(simd::TargetName()) + unit + ", activations quantized to int8 per 32" : fma + ", activations float32") +
        ")";
    if (packed) {  // CpuBackend::Int8Prefill (packed W implies VNNI and int8 x)
      return decode + ", prefill on the same blocks and dot products (4 rows of x per pass)" +
             (amx::AmxEnabled() ? QuantBf16Prefill() : "");
    }
    return decode + ", prefill dequantizes panels into the " + fma + " GEMM" + QuantBf16Prefill();
  }
  const char* widened = dtype == DType::kF32 ? "" : " (weights widened to float32)";
  return fma + widened;
}

std::string CpuMatMulPath(DType dtype) {
  if (dtype == DType::kBF16 && Bf16DecodeX() && amx::Bf16DotsUsable()) {
    return DefaultMatMulPath(dtype) + "; one-sequence decode on AVX512-BF16 dot products, x rounded to bf16 (--decode-x bf16)";
  }
  if ((dtype == DType::kF16 || dtype == DType::kBF16) && HalfDecodeX()) {
    const std::string why = g_decode_x.load() == DecodeX::kFloat16
                                ? "(--decode-x float16)"
                                : "(x in half the L1: one W row after the other up to " +
                                      std::to_string(simd::kHalfXOneRowMaxK) + " columns, four beyond)";
    return DefaultMatMulPath(dtype) + "; one-sequence decode with x rounded to float16 where every |x| <= 65504 " + why;
  }
  return DefaultMatMulPath(dtype);
}

}  // namespace llm
