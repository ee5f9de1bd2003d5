// Parser for the safetensors format (https://huggingface.co/docs/safetensors):
//   8 bytes little-endian N | N bytes JSON header | raw tensor bytes.
// The header maps tensor names to {dtype, shape, data_offsets=[begin,end]},
// offsets relative to the first byte after the header.
//
// Goals: never trust the file. Every size and offset is checked against the
// file size before use; a lying header is a DataLoss error naming the file and
// tensor. Non-goals: writing files, dtypes other than F32/F16/BF16/I32/I64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/status.h"

namespace llm {

struct SafetensorsEntry {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  size_t offset = 0;  // absolute byte offset in the file
  size_t nbytes = 0;
};

// Headers larger than this are refused before allocating (real ones are < 1 MB).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

// Parses a header from the file's raw bytes. `file_size` bounds every offset.
// Exposed separately from the file so the fuzzer can drive it.
Result<std::map<std::string, SafetensorsEntry>> ParseSafetensorsHeader(
    const uint8_t* data, size_t file_size, const std::string& path_for_messages);

// Shard file names of a sharded checkpoint's model.safetensors.index.json
// (its weight_map values), sorted and unique; each must be a plain file name
// in the model directory.
Result<std::vector<std::string>> ReadSafetensorsIndex(const std::string& index_path);

// A mapped safetensors file and its validated tensor table.
class SafetensorsFile {
 public:
  static Result<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::map<std::string, SafetensorsEntry>& tensors() const { return tensors_; }
  const uint8_t* TensorData(const SafetensorsEntry& e) const { return file_->data() + e.offset; }
  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<MappedFile>& mapped() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, SafetensorsEntry> tensors_;
};

}  // namespace llm
