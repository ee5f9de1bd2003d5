// Picks the next token from logits: greedy (argmax, first index on ties, like
// torch.argmax) or temperature / top-k / top-p sampling with a seeded RNG.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace llm {

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& o) : options_(o), rng_(o.seed) {}
  int32_t Sample(const float* logits, int vocab);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused: no allocation per token
};

int32_t ArgMax(const float* logits, int vocab);

}  // namespace llm
