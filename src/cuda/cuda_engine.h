// The CUDA engine: the Llama forward pass on one NVIDIA GPU. Weights and the
// KV cache live on the device; prefill runs through cuBLAS tensor-core GEMMs,
// decode through memory-bound GEMV kernels with q/k/v and gate/up fused, and
// the whole decode step (sampling included) is captured once as a CUDA graph
// and replayed, so that only the sampled token id crosses to the host.
//
// This header has no CUDA types: the CLI, the benchmark and the tests include
// it whether or not the build has CUDA (cuda_stub.cc answers without it).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "io/llama_config.h"
#include "model/device_engine.h"
#include "model/weights.h"

namespace llm {

struct CudaOptions {
  int max_seq_len = 512;     // KV cache capacity
  int max_batch_tokens = 0;  // largest prefill chunk; 0 = max_seq_len
  bool graphs = true;        // replay the decode step as a CUDA graph
  int device = 0;
};

// Whether this binary was built with the CUDA backend.
bool CudaBuilt();
// Visible devices, or why there are none (no CUDA build, no driver, no GPU).
Result<int> CudaDeviceCount();
// Copies the weights to device `options.device` and allocates the KV cache.
Result<std::unique_ptr<DeviceEngine>> MakeCudaEngine(const LlamaConfig& config, const ModelWeights& weights,
                                                     const CudaOptions& options);
// Device-to-device copy bandwidth in GB/s (bytes read + written per second),
// best of `repetitions` copies of 1 GiB: the decode roofline of this GPU.
Result<double> MeasureCudaCopyBandwidth(int repetitions = 10);

}  // namespace llm
