// Operator-level profiler of the engine.
//
// Goals: every operator of the forward pass is a named scope with its layer,
// shapes, and the FLOPs and bytes it must do; worker threads get their own
// tracks; recording costs one branch when off and a timestamp pair plus a
// fixed-size append when on. Non-goals: sampling, call stacks. GPU activity
// is recorded by the CUDA backend (CUPTI) and handed over as GpuActivity.
//
// Each thread of the pool writes only its own pre-allocated buffer (indexed by
// worker), so recording takes no lock and no allocation. Names are built from
// (op, layer) only at export.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/memory_ledger.h"
#include "core/thread_pool.h"

namespace llm {

// The operators, in module-path terms users know from HF/torch.profiler.
enum class Op : uint8_t {
  kPrefill,
  kDecodeStep,
  kEmbedding,
  kLayer,            // layers.N
  kAttentionNorm,    // layers.N.attention_norm
  kAttention,        // layers.N.attention
  kQProj,
  kKProj,
  kVProj,
  kQkvProj,          // q, k and v in one fused projection (CUDA decode, bf16 prefill on a CPU matrix unit)
  kRope,
  kKvWrite,          // copy of K/V into the cache
  kSdpa,             // scaled dot-product attention, parent of the three below
  kSdpaScores,
  kSdpaSoftmax,
  kSdpaWeightedSum,
  kSdpaFused,        // the three above fused per block (prefill on AMX)
  kOProj,
  kAttentionResidual,
  kFfnNorm,          // layers.N.ffn_norm
  kFeedForward,      // layers.N.feed_forward
  kGateProj,
  kUpProj,
  kGateUpSilu,       // gate and up in one fused projection with silu * up (CUDA decode, bf16 CPU prefill)
  kSiluMul,
  kDownProj,
  kFfnResidual,
  kNorm,
  kLmHead,
  kSampling,
  kCount
};

struct OpInfo {
  const char* path;      // module path after "layers.N." (or the whole name for model-level ops)
  const char* category;  // Attention, FeedForward, Normalization, Memory, Other, Phase
  bool per_layer;
};
const OpInfo& GetOpInfo(Op op);
// "layers.3.attention.q_proj", "lm_head", "decode_step[7]"...
std::string OpName(Op op, int layer, int step);

// The arithmetic unit an operator's FLOPs ran on: its roof is that unit's
// measured peak (float32 FMA vectors, or AMX tiles with bf16 inputs).
enum class ComputeUnit : uint8_t { kFma, kAmxBf16, kInt8Vnni, kBf16Dot, kCount };
const char* ComputeUnitName(ComputeUnit unit);  // "FMA", "AMX-BF16", "VNNI-INT8", "AVX512-BF16"

// The work an operator must do, computed from its shapes (see profiler.cc for
// the formula of each operator).
struct OpCost {
  int64_t flops = 0;
  int64_t bytes = 0;
  int32_t m = 0, n = 0, k = 0;  // shape: rows, output features, input features (or op-specific)
  ComputeUnit unit = ComputeUnit::kFma;
};

// One GPU activity (kernel, copy or set) on the host clock, attributed to the
// operator scope that launched it (op == kCount when none did).
struct GpuActivity {
  enum Kind : uint8_t { kKernel, kMemcpy, kMemset };
  std::string name;          // kernel name, or "memcpy HtoD" ...
  int64_t begin_ns = 0, end_ns = 0;
  int64_t bytes = 0;         // copies and sets
  uint32_t stream = 0;
  int32_t step = -1;
  int16_t layer = -1;
  Op op = Op::kCount;
  Kind kind = kKernel;
  bool in_graph = false;     // replayed from a CUDA graph
};

// Mirrors scopes elsewhere while profiling (NVTX ranges, CUPTI correlation).
class ScopeListener {
 public:
  virtual ~ScopeListener() = default;
  virtual void OnBegin(Op op, int layer, int step) = 0;
  virtual void OnEnd() = 0;
};

struct ProfileEvent {
  int64_t begin_ns = 0, end_ns = 0;
  OpCost cost;
  int32_t step = -1;   // decode step index, -1 during prefill
  int16_t layer = -1;
  Op op = Op::kCount;
  bool worker_span = false;  // a worker's share of a parallel region of `op`
};

class Profiler final : public ParallelObserver {
 public:
  // `capacity` events per thread; events beyond it are dropped and counted.
  Profiler(int num_threads, size_t capacity);

  bool active() const { return active_.load(std::memory_order_relaxed); }
  void set_active(bool on) { active_.store(on, std::memory_order_relaxed); }
  void set_step(int step) { step_ = step; }
  int step() const { return step_; }

  // Scope bookkeeping on the calling (main) thread.
  void Begin(Op op, int layer) {
    stack_op_[depth_] = op;
    stack_layer_[depth_] = static_cast<int16_t>(layer);
    ++depth_;
    if (listener_ != nullptr) listener_->OnBegin(op, layer, step_);
  }
  void End(Op op, int layer, int64_t begin_ns, const OpCost& cost);

  // ParallelObserver: a worker's busy span inside ParallelFor, attributed to the
  // innermost open scope of the main thread.
  bool observing() const override { return active(); }
  void OnWorkerSpan(int worker, int64_t begin_ns, int64_t end_ns) override;

  // Counter samples (e.g. KV-cache bytes in use) for the trace.
  struct Counter {
    int64_t time_ns;
    std::string name;
    int64_t value;
  };
  void AddCounter(const std::string& name, int64_t value);

  // A listener sees every recorded scope open and close (null = none).
  void set_listener(ScopeListener* l) { listener_ = l; }
  // GPU activity, added after the run by the device backend.
  void AddGpuActivities(std::vector<GpuActivity> a);
  const std::vector<GpuActivity>& gpu_activities() const { return gpu_; }
  // Free-form facts for the stats header (device name, memory).
  void AddNote(const std::string& note) { notes_.push_back(note); }
  const std::vector<std::string>& notes() const { return notes_; }

  const std::vector<ProfileEvent>& events(int worker) const { return buffers_[worker]; }
  int num_threads() const { return static_cast<int>(buffers_.size()); }
  const std::vector<Counter>& counters() const { return counters_; }
  int64_t dropped() const { return dropped_.load(); }
  void Clear();

 private:
  void Append(int worker, const ProfileEvent& e);

  std::atomic<bool> active_{false};
  int step_ = -1;
  static constexpr int kMaxDepth = 16;
  Op stack_op_[kMaxDepth] = {};
  int16_t stack_layer_[kMaxDepth] = {};
  int depth_ = 0;
  size_t capacity_;
  std::vector<std::vector<ProfileEvent>> buffers_;  // one per worker, reserved up front
  std::vector<Counter> counters_;
  std::atomic<int64_t> dropped_{0};
  ScopeListener* listener_ = nullptr;
  std::vector<GpuActivity> gpu_;
  std::vector<std::string> notes_;
};

// RAII scope: records [construction, destruction) as one event on thread 0.
// Non-copyable and non-movable; costs a null/flag check when profiling is off.
class ProfileScope {
 public:
  ProfileScope(Profiler* p, Op op, int layer, const OpCost& cost = {})
      : p_(p != nullptr && p->active() ? p : nullptr), op_(op), layer_(layer), cost_(cost) {
    if (p_ != nullptr) {
      p_->Begin(op, layer);
      begin_ns_ = NowNs();
    }
  }
  ~ProfileScope() {
    if (p_ != nullptr) p_->End(op_, layer_, begin_ns_, cost_);
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  Profiler* p_;
  Op op_;
  int layer_;
  OpCost cost_;
  int64_t begin_ns_ = 0;
};

// Work formulas, inline so that with profiling off they cost next to nothing.
// matmul y[m,n] = x[m,k] W[n,k]^T: 2mnk FLOPs (one multiply and one add per
// term); bytes = W once + x + y. Rereading W per row is the kernel's problem,
// not the operator's requirement.
// wbytes: bytes per weight element (0.5625 for Q4_0's 18-byte blocks of 32).
inline OpCost MatMulCost(int64_t m, int64_t n, int64_t k, double wbytes) {
  OpCost c;
  c.flops = 2 * m * n * k;
  c.bytes = static_cast<int64_t>(static_cast<double>(n * k) * wbytes) + 4 * (m * k + m * n);
  c.m = static_cast<int32_t>(m);
  c.n = static_cast<int32_t>(n);
  c.k = static_cast<int32_t>(k);
  return c;
}

inline OpCost OnUnit(OpCost c, ComputeUnit unit) {
  c.unit = unit;
  return c;
}
// RMSNorm over m rows of d: square+add for the sum, then scale and weight
// multiply: 4 FLOPs per element; reads x and weight, writes out.
inline OpCost RmsNormCost(int64_t m, int64_t d, size_t wbytes) {
  OpCost c;
  c.flops = 4 * m * d;
  c.bytes = 8 * m * d + d * static_cast<int64_t>(wbytes);
  c.m = static_cast<int32_t>(m);
  c.n = static_cast<int32_t>(d);
  return c;
}

// Elementwise op over n float32 values touching `streams` arrays (reads + writes).
inline OpCost ElementwiseCost(int64_t n, int64_t flops_per_elem, int64_t streams) {
  OpCost c;
  c.flops = n * flops_per_elem;
  c.bytes = 4 * n * streams;
  c.n = static_cast<int32_t>(n);
  return c;
}


}  // namespace llm

// One line at a call site. With LLM_PROFILER off it compiles to nothing and
// its arguments are not evaluated.
#if defined(LLM_PROFILER_DISABLED)
#define LLM_PROFILE(profiler, op, layer, ...) \
  do {                                        \
  } while (0)
#else
#define LLM_PROFILE_CONCAT_INNER(a, b) a##b
#define LLM_PROFILE_CONCAT(a, b) LLM_PROFILE_CONCAT_INNER(a, b)
#define LLM_PROFILE(profiler, op, layer, ...) \
  ::llm::ProfileScope LLM_PROFILE_CONCAT(llm_profile_scope_, __LINE__)(profiler, op, layer, ##__VA_ARGS__)
#endif
