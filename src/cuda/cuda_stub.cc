// The CUDA entry points of a build without the CUDA toolkit: each says so.
#include "cuda/cuda_engine.h"

namespace llm {

namespace {
Status NotBuilt() {
  return Unimplemented("this build has no CUDA backend (install the CUDA toolkit and rebuild with -DLLM_CUDA=ON)");
}
}  // namespace

bool CudaBuilt() { return false; }
Result<int> CudaDeviceCount() { return NotBuilt(); }
Result<std::unique_ptr<DeviceEngine>> MakeCudaEngine(const LlamaConfig&, const ModelWeights&, const CudaOptions&) {
  return NotBuilt();
}
Result<double> MeasureCudaCopyBandwidth(int) { return NotBuilt(); }

}  // namespace llm
