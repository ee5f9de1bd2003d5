// Read-only memory-mapped file. Weights are used straight from the page cache
// when their stored dtype is the one requested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/memory_ledger.h"
#include "core/status.h"

namespace llm {

class MappedFile {
 public:
  // The mapping is counted in the MemoryLedger under `category` while it lives.
  static Result<std::shared_ptr<MappedFile>> Open(const std::string& path,
                                                  MemCategory category = MemCategory::kOther);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  MemCategory category_ = MemCategory::kOther;
};

// Every input file of the product is opened through OpenInputFile: it never
// blocks on a FIFO or a device (the open is O_NONBLOCK until fstat has said
// "regular file"), and a directory, FIFO, socket or device is one clear error.
// Returns a read-only descriptor (blocking mode, close-on-exec) the caller
// closes; NotFound when the path does not exist, IoError otherwise.
Result<int> OpenInputFile(const std::string& path);

// Reads a whole (small) file, e.g. config.json, through OpenInputFile.
// NotFound only when the file does not exist.
Result<std::string> ReadTextFile(const std::string& path);

bool PathExists(const std::string& path);
bool IsRegularFile(const std::string& path);
bool IsDirectory(const std::string& path);
// Size in bytes, or -1 when the path cannot be stat'ed.
int64_t FileSize(const std::string& path);
// mkdir -p: creates every missing directory of `path`.
Status MakeDirectories(const std::string& path);

}  // namespace llm
