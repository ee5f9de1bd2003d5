// Process-wide accounting of the engine's large buffers by category, with a
// timeline, so results and the profiler can say where memory goes and when.
// Allocations happen at load and set-up, never per token, so a mutex is cheap.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace llm {

enum class MemCategory : uint8_t { kWeights, kKvCache, kActivations, kOther, kCount };
const char* MemCategoryName(MemCategory c);  // "weights", "kv_cache", "activations", "other"

class MemoryLedger {
 public:
  struct Change {
    int64_t time_ns;  // steady clock
    MemCategory category;
    int64_t delta_bytes;
  };
  static MemoryLedger& Get();

  void Add(MemCategory c, int64_t delta_bytes);
  int64_t current(MemCategory c) const;
  int64_t peak(MemCategory c) const;
  std::vector<Change> timeline() const;

 private:
  mutable std::mutex mutex_;
  std::array<int64_t, static_cast<size_t>(MemCategory::kCount)> current_{}, peak_{};
  std::vector<Change> timeline_;
};

// Steady-clock nanoseconds; the one time base of profiler events and the ledger.
int64_t NowNs();

}  // namespace llm
