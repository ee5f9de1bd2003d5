#include "profiler/profiler.h"

#include <algorithm>

namespace llm {

namespace {
const OpInfo kOps[] = {
    {"prefill", "Phase", false},
    {"decode_step", "Phase", false},
    {"embedding", "Memory", false},
    {"", "Layer", true},
    {"attention_norm", "Normalization", true},
    {"attention", "Attention", true},
    {"attention.q_proj", "Attention", true},
    {"attention.k_proj", "Attention", true},
    {"attention.v_proj", "Attention", true},
    {"attention.qkv_proj", "Attention", true},
    {"attention.rope", "Attention", true},
    {"attention.kv_write", "Memory", true},
    {"attention.sdpa", "Attention", true},
    {"attention.sdpa.scores", "Attention", true},
    {"attention.sdpa.softmax", "Attention", true},
    {"attention.sdpa.weighted_sum", "Attention", true},
    {"attention.sdpa.fused", "Attention", true},
    {"attention.o_proj", "Attention", true},
    {"attention.residual_add", "Other", true},
    {"ffn_norm", "Normalization", true},
    {"feed_forward", "FeedForward", true},
    {"feed_forward.gate_proj", "FeedForward", true},
    {"feed_forward.up_proj", "FeedForward", true},
    {"feed_forward.gate_up_silu", "FeedForward", true},
    {"feed_forward.silu_mul", "FeedForward", true},
    {"feed_forward.down_proj", "FeedForward", true},
    {"feed_forward.residual_add", "Other", true},
    {"norm", "Normalization", false},
    {"lm_head", "Other", false},
    {"sampling", "Other", false},
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == static_cast<size_t>(Op::kCount), "one OpInfo per Op");
}  // namespace

const OpInfo& GetOpInfo(Op op) { return kOps[static_cast<size_t>(op)]; }

std::string OpName(Op op, int layer, int step) {
  const OpInfo& info = GetOpInfo(op);
  if (op == Op::kDecodeStep) return "decode_step[" + std::to_string(step) + "]";
  if (!info.per_layer) return info.path;
  const std::string base = "layers." + std::to_string(layer);
  return info.path[0] ? base + "." + info.path : base;
}

Profiler::Profiler(int num_threads, size_t capacity) : capacity_(capacity), buffers_(std::max(1, num_threads)) {
  for (auto& b : buffers_) b.reserve(capacity_);
  counters_.reserve(capacity_ / 16 + 16);
}

void Profiler::Append(int worker, const ProfileEvent& e) {
  std::vector<ProfileEvent>& buf = buffers_[worker];
  if (buf.size() >= capacity_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  buf.push_back(e);  // never reallocates: reserved to capacity_
}

void Profiler::End(Op op, int layer, int64_t begin_ns, const OpCost& cost) {
  ProfileEvent e;
  e.end_ns = NowNs();
  e.begin_ns = begin_ns;
  e.cost = cost;
  e.step = step_;
  e.layer = static_cast<int16_t>(layer);
  e.op = op;
  if (depth_ > 0) --depth_;
  if (listener_ != nullptr) listener_->OnEnd();
  Append(0, e);
}

void Profiler::OnWorkerSpan(int worker, int64_t begin_ns, int64_t end_ns) {
  if (worker <= 0 || depth_ == 0) return;  // thread 0's own time is inside its scopes already
  ProfileEvent e;
  e.begin_ns = begin_ns;
  e.end_ns = end_ns;
  e.step = step_;
  e.op = stack_op_[depth_ - 1];
  e.layer = stack_layer_[depth_ - 1];
  e.worker_span = true;
  Append(worker, e);
}

void Profiler::AddCounter(const std::string& name, int64_t value) {
  if (!active()) return;
  counters_.push_back({NowNs(), name, value});
}

void Profiler::AddGpuActivities(std::vector<GpuActivity> a) {
  gpu_.insert(gpu_.end(), std::make_move_iterator(a.begin()), std::make_move_iterator(a.end()));
}

void Profiler::Clear() {
  gpu_.clear();
  for (auto& b : buffers_) b.clear();
  counters_.clear();
  dropped_ = 0;
  depth_ = 0;
  step_ = -1;
}

const char* ComputeUnitName(ComputeUnit unit) {
  switch (unit) {
    case ComputeUnit::kAmxBf16: return "AMX-BF16";
    case ComputeUnit::kInt8Vnni: return "VNNI-INT8";
    case ComputeUnit::kBf16Dot: return "AVX512-BF16";
    default: return "FMA";
  }
}

}  // namespace llm
