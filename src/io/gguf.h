// Reader of GGUF v2/v3 files (llama.cpp's model format,
// https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), little-endian:
//   "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   | metadata: string key, u32 value type, value
//   | tensor infos: string name, u32 n_dims, u64 dims[n_dims] (ggml order:
//     dims[0] varies fastest), u32 ggml type, u64 offset (from the data start)
//   | padding to general.alignment (default 32) | tensor data.
// Strings are u64 length + bytes (no terminator); arrays are u32 element
// type, u64 count, elements (arrays of arrays allowed).
//
// Goals: never trust the file. Every count, length and offset is checked
// against the bytes that remain before it is used (no allocation is sized by
// the file beyond what the file itself can hold), arithmetic cannot overflow,
// and every failure is one line naming the file and what is wrong.
// Non-goals: writing GGUF (tools/ does that in Python), big-endian files, v1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/quant.h"
#include "core/status.h"

namespace llm {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", "array"...; "unknown" for other values.
const char* GgufValueTypeName(uint32_t type);

// Arrays nest at most this deep (real files use one level).
constexpr int kMaxGgufArrayDepth = 8;
// Arrays of strings or of arrays hold at most this many elements (a
// vocabulary has ~256k); numeric arrays are not copied and are bounded by the
// file alone.
constexpr uint64_t kMaxGgufArrayItems = uint64_t{1} << 24;
// Tensors have at most this many dimensions (GGML_MAX_DIMS).
constexpr uint32_t kMaxGgufDims = 4;

// One metadata value. Strings and numeric array elements are views into the
// parsed bytes (the mapping of a GgufFile): they live as long as it does.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  // Scalars: the value in the widest type of its kind.
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers
  double f = 0;    // float32 / float64
  std::string_view str;
  // Arrays: element type and count. Numeric and bool elements stay in the
  // file (`raw`, little-endian, packed); strings are in `strings`; arrays of
  // arrays in `items`.
  GgufValueType elem_type = GgufValueType::kUint8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;
  std::vector<std::string_view> strings;
  std::vector<GgufValue> items;

  bool is_integer() const;
  bool is_float() const { return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64; }
  // Element k of a numeric array, converted (0 when k >= count or the
  // elements are not numbers; floats saturate into int64).
  double ArrayFloat(uint64_t k) const;
  int64_t ArrayInt(uint64_t k) const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the contiguous (row) length
  GgmlType type = GgmlType::kF32;
  uint64_t num_elements = 0;
  size_t offset = 0;  // absolute byte offset in the file
  size_t nbytes = 0;
};

struct GgufHeader {
  uint32_t version = 0;
  uint64_t alignment = 32;
  size_t data_offset = 0;  // absolute offset of the tensor data section
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensorInfo> tensors;  // in file order
  std::map<std::string, size_t> tensor_index;  // name -> index in `tensors`

  const GgufValue* Find(const std::string& key) const;
  const GgufTensorInfo* FindTensor(const std::string& name) const;
  // Typed getters: NotFound when absent, DataLoss when of the wrong type or
  // out of range. Integers accept any integer type; floats also integers.
  Result<uint64_t> GetUint(const std::string& key) const;
  Result<double> GetFloat(const std::string& key) const;
  Result<std::string> GetString(const std::string& key) const;
};

// Parses the header, metadata and tensor infos of a GGUF file given as bytes
// (the fuzzer drives this). Every tensor lies inside [0, size). The result
// points into `data`.
Result<GgufHeader> ParseGguf(const uint8_t* data, size_t size, const std::string& path_for_messages);

// Unimplemented naming the architecture unless general.architecture is "llama".
Status CheckGgufArchitecture(const GgufHeader& header, const std::string& path_for_messages);

// A mapped GGUF file of a llama model and its validated header.
class GgufFile {
 public:
  static Result<std::shared_ptr<GgufFile>> Open(const std::string& path);

  const GgufHeader& header() const { return header_; }
  const uint8_t* TensorData(const GgufTensorInfo& t) const { return file_->data() + t.offset; }
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<MappedFile> file_;
  GgufHeader header_;
};

}  // namespace llm
