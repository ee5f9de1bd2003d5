#include "core/memory_ledger.h"

#include <algorithm>
#include <chrono>

namespace llm {

const char* MemCategoryName(MemCategory c) {
  switch (c) {
    case MemCategory::kWeights: return "weights";
    case MemCategory::kKvCache: return "kv_cache";
    case MemCategory::kActivations: return "activations";
    default: return "other";
  }
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

MemoryLedger& MemoryLedger::Get() {
  static MemoryLedger ledger;
  return ledger;
}

void MemoryLedger::Add(MemCategory c, int64_t delta) {
  if (delta == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t i = static_cast<size_t>(c);
  current_[i] += delta;
  peak_[i] = std::max(peak_[i], current_[i]);
  timeline_.push_back({NowNs(), c, delta});
}

int64_t MemoryLedger::current(MemCategory c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_[static_cast<size_t>(c)];
}

int64_t MemoryLedger::peak(MemCategory c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_[static_cast<size_t>(c)];
}

std::vector<MemoryLedger::Change> MemoryLedger::timeline() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return timeline_;
}

}  // namespace llm
