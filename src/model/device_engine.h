// A forward pass that runs on an accelerator with its own copy of the weights
// and its own KV cache (the CUDA engine in src/cuda). LlamaModel delegates to
// it when it has one; the interface is plain C++ so that the model, the
// benchmark and the tests never include a CUDA header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "profiler/profiler.h"

namespace llm {

struct DeviceMemory {
  size_t weights = 0, kv_cache = 0, workspace = 0;  // allocated by the engine
  size_t peak = 0;                                  // peak of the engine's total
  size_t free = 0, total = 0;                       // from the driver, now
};

class DeviceEngine {
 public:
  virtual ~DeviceEngine() = default;
  virtual std::string name() const = 0;         // "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)"
  // Runs tokens at positions start_pos .. start_pos+n-1 and appends them to the
  // device KV cache. Logits stay on the device: of the last row, or of every
  // row when `all_logits`.
  virtual Status Forward(const int32_t* tokens, int n, int start_pos, bool all_logits) = 0;
  // Copies `rows` rows of logits of the last Forward to the host.
  virtual Status CopyLogits(float* host, int rows) = 0;
  // Argmax of the last logits computed on the device (first index on ties);
  // only the id crosses to the host.
  virtual Result<int32_t> GreedyToken() = 0;
  // Records GPU activity while a profiler is attached (null detaches).
  virtual void set_profiler(Profiler* profiler) = 0;
  // Hands the GPU activity recorded so far to the attached profiler.
  virtual Status FlushTrace() = 0;
  virtual DeviceMemory memory() const = 0;
};

}  // namespace llm
