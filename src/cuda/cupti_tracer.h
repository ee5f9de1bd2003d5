// GPU activity for the profiler: CUPTI's activity API records every kernel,
// copy and set with device timestamps; each is attributed to the operator
// scope that launched it through CUPTI external correlation ids pushed on
// scope entry (eager launches), or by position in the captured sequence (CUDA
// graph replays, whose kernels all share the graph launch's correlation id).
// Scopes also become NVTX ranges for Nsight Systems users.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/status.h"
#include "profiler/profiler.h"

namespace llm::cuda {

class CuptiTracer final : public ScopeListener {
 public:
  // Enables activity recording for this process (one tracer at a time).
  static Result<std::unique_ptr<CuptiTracer>> Start();
  ~CuptiTracer() override;

  void OnBegin(Op op, int layer, int step) override;
  void OnEnd() override;

  // Flushes CUPTI's buffers and returns what ran since Start (or the last
  // Flush), on the host clock. `graph_ops` lists the (op, layer) of each kernel
  // of the captured decode graph in launch order.
  std::vector<GpuActivity> Flush(const std::vector<std::pair<Op, int>>& graph_ops);

 private:
  CuptiTracer() = default;
  int64_t host_minus_gpu_ns_ = 0;  // NowNs() - cuptiGetTimestamp() at Start
};

}  // namespace llm::cuda
