#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace llm {

int32_t ArgMax(const float* logits, int vocab) {
  int32_t best = 0;
  for (int i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

int32_t Sampler::Sample(const float* logits, int vocab) {
  if (options_.temperature <= 0.0f) return ArgMax(logits, vocab);
  candidates_.resize(vocab);
  for (int i = 0; i < vocab; ++i) candidates_[i] = {logits[i] / options_.temperature, i};
  // Order by probability (stable on ties) when top-k or top-p needs it.
  size_t keep = candidates_.size();
  if (options_.top_k > 0 || options_.top_p < 1.0f) {
    std::stable_sort(candidates_.begin(), candidates_.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    if (options_.top_k > 0) keep = std::min(keep, static_cast<size_t>(options_.top_k));
  }
  const float max_logit = std::max_element(candidates_.begin(), candidates_.begin() + keep)->first;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += (candidates_[i].first = std::exp(candidates_[i].first - max_logit));
  if (options_.top_p < 1.0f) {
    // Smallest prefix whose probability mass reaches top_p (HF TopPLogitsWarper keeps at least one).
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += candidates_[i].first / sum;
      if (cum >= options_.top_p) { cut = i + 1; break; }
    }
    keep = cut;
    sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += candidates_[i].first;
  }
  std::uniform_real_distribution<double> uniform(0.0, sum);
  const double r = uniform(rng_);
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += candidates_[i].first;
    if (r < acc) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace llm
