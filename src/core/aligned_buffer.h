// Owning, 64-byte aligned, uninitialised byte buffer for weights, KV cache and
// scratch. Allocation size is checked by the caller before calling Allocate.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/memory_ledger.h"

namespace llm {

// `bytes` rounded up to AlignedBuffer's 64-byte alignment: the step at which
// several tensors placed one after another in one buffer all stay aligned.
constexpr size_t AlignedSize(size_t bytes) { return (bytes + 63) / 64 * 64; }

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(MemCategory category) : category_(category) {}
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::move(o.data_)), size_(o.size_), category_(o.category_) { o.size_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    Release();
    data_ = std::move(o.data_);
    size_ = o.size_;
    category_ = o.category_;
    o.size_ = 0;
    return *this;
  }
  ~AlignedBuffer() { Release(); }

  void set_category(MemCategory c) { category_ = c; }
  // Returns false when the allocation fails (so the caller can report it).
  bool Allocate(size_t bytes) {
    Release();
    // Buffers of a huge page or more (weights, KV cache) are 2 MiB aligned
    // and ask for huge pages: fewer page faults at load and fewer TLB misses
    // when streaming. From 8 MiB before: TinyLlama's float32 k_proj and
    // v_proj (2 MiB each) on 4 KiB pages read 3.1 GB/s in decode on one
    // thread, 14.2 on huge pages (Xeon with AMX; q_proj 14.6-14.9 either way).
    const size_t align = bytes >= kHugePage ? kHugePage : 64;
    const size_t rounded = (bytes + align - 1) / align * align;
    void* p = rounded ? std::aligned_alloc(align, rounded) : nullptr;
    if (rounded && p == nullptr) return false;
    if (align == kHugePage) ::madvise(p, rounded, MADV_HUGEPAGE);
    data_.reset(p);
    size_ = bytes;
    MemoryLedger::Get().Add(category_, static_cast<int64_t>(size_));
    return true;
  }
  void* data() { return data_.get(); }
  const void* data() const { return data_.get(); }
  template <typename T> T* as() { return static_cast<T*>(data_.get()); }
  template <typename T> const T* as() const { return static_cast<const T*>(data_.get()); }
  size_t size() const { return size_; }

 private:
  void Release() {
    if (data_) MemoryLedger::Get().Add(category_, -static_cast<int64_t>(size_));
    data_.reset();
    size_ = 0;
  }
  static constexpr size_t kHugePage = 2u << 20;
  std::unique_ptr<void, FreeDeleter> data_;
  size_t size_ = 0;
  MemCategory category_ = MemCategory::kOther;
};

// One buffer handed out front to back, so that several tensors or packed
// matrices share one allocation (and its huge pages). Holders keep it alive
// through a shared_ptr aliasing the piece they took.
struct BufferArena {
  explicit BufferArena(MemCategory category) : buffer(category) {}
  AlignedBuffer buffer;
  size_t used = 0;
  // `bytes` (a multiple of 64 keeps the next piece aligned) from the unused
  // end, or null when they do not fit.
  void* Take(size_t bytes) {
    if (buffer.size() - used < bytes) return nullptr;
    void* p = buffer.as<uint8_t>() + used;
    used += bytes;
    return p;
  }
  bool full() const { return used == buffer.size(); }
};

}  // namespace llm
