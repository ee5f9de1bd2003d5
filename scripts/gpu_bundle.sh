#!/usr/bin/env bash
# For a GPU machine that has the CUDA toolkit but cannot install Debian
# packages: builds build-cuda/ here (CUDA on) and gathers, in gpu-bundle/, the
# binaries scripts/gpu_check.sh runs plus the shared libraries they need that
# are not part of the CUDA toolkit or the C runtime (~25 MB). Carry gpu-bundle/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build-cuda -DLLM_CUDA=ON -DLLM_BUILD_FUZZERS=OFF
rm -rf gpu-bundle
mkdir -p gpu-bundle/tests gpu-bundle/bench gpu-bundle/bundled-libs
BINS=(speed_benchmark tests/cuda_tests tests/kernel_math_tests bench/bench_cuda)
for b in "${BINS[@]}"; do
  cp "build-cuda/$b" "gpu-bundle/$b"
  strip "gpu-bundle/$b"
  ldd "build-cuda/$b" | awk '/=> \//{print $3}'
done | sort -u | grep -v -E '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt|ld-linux[^/]*)\.so|/usr/local/cuda|libcuda\.so' \
  | xargs -r cp -L -t gpu-bundle/bundled-libs
du -sh gpu-bundle
