#include "io/gguf.h"

#include "core/printable.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace llm {

namespace {

const char* const kHint = " (the file is corrupt or truncated: download or convert it again)";

// A name from the file as it may appear in a one-line message: printable
// ASCII only, at most 80 characters.
std::string Printable(std::string_view s) { return PrintableName(s); }

size_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    default: return 0;  // string, array
  }
}

uint64_t LoadLE(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t k = n; k-- > 0;) v = (v << 8) | p[k];
  return v;
}

// Decodes one little-endian scalar of type t at p into v.
void DecodeScalar(GgufValueType t, const uint8_t* p, GgufValue* v) {
  const uint64_t bits = LoadLE(p, ScalarSize(t));
  v->type = t;
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kUint16: case GgufValueType::kUint32:
    case GgufValueType::kUint64: case GgufValueType::kBool:
      v->u = bits;
      break;
    case GgufValueType::kInt8: v->i = static_cast<int8_t>(bits); break;
    case GgufValueType::kInt16: v->i = static_cast<int16_t>(bits); break;
    case GgufValueType::kInt32: v->i = static_cast<int32_t>(bits); break;
    case GgufValueType::kInt64: v->i = static_cast<int64_t>(bits); break;
    case GgufValueType::kFloat32: {
      float f;
      const auto b32 = static_cast<uint32_t>(bits);
      std::memcpy(&f, &b32, 4);
      v->f = f;
      break;
    }
    case GgufValueType::kFloat64: std::memcpy(&v->f, &bits, 8); break;
    default: break;
  }
}

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  Result<GgufHeader> Run();

 private:
  size_t remaining() const { return size_ - pos_; }
  Status Truncated(const std::string& what) const {
    return DataLoss(path_ + ": truncated GGUF file: " + what + " at byte " + std::to_string(pos_) +
                    " needs more than the " + std::to_string(remaining()) + " bytes left" + kHint);
  }
  Status Corrupt(const std::string& what) const { return DataLoss(path_ + ": " + what + kHint); }

  bool Read(size_t n, const uint8_t** out) {
    if (n > remaining()) return false;
    *out = data_ + pos_;
    pos_ += n;
    return true;
  }
  bool ReadU32(uint32_t* v) {
    const uint8_t* p;
    if (!Read(4, &p)) return false;
    *v = static_cast<uint32_t>(LoadLE(p, 4));
    return true;
  }
  bool ReadU64(uint64_t* v) {
    const uint8_t* p;
    if (!Read(8, &p)) return false;
    *v = LoadLE(p, 8);
    return true;
  }
  Status ReadString(const std::string& what, uint64_t max_len, std::string_view* out);
  Status ReadValue(const std::string& key, GgufValueType type, int depth, GgufValue* out);
  Status ReadTensorInfo(GgufHeader* h, size_t index);

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

Status Parser::ReadString(const std::string& what, uint64_t max_len, std::string_view* out) {
  uint64_t len = 0;
  if (!ReadU64(&len)) return Truncated("the length of " + what);
  if (len > remaining()) {
    return Truncated(what + " of " + std::to_string(len) + " bytes");
  }
  if (len > max_len) {
    return Corrupt(what + " is " + std::to_string(len) + " bytes long (at most " + std::to_string(max_len) +
                   " allowed)");
  }
  const uint8_t* p;
  Read(static_cast<size_t>(len), &p);
  *out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  return OkStatus();
}

Status Parser::ReadValue(const std::string& key, GgufValueType type, int depth, GgufValue* out) {
  const std::string where = "metadata '" + Printable(key) + "'";
  out->type = type;
  if (type == GgufValueType::kString) return ReadString(where + " string", UINT64_MAX, &out->str);
  if (type != GgufValueType::kArray) {
    const size_t n = ScalarSize(type);
    if (n == 0) {
      return Corrupt(where + " has unknown value type " + std::to_string(static_cast<uint32_t>(type)) +
                     " (known: uint8, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, "
                     "int64, float64)");
    }
    const uint8_t* p;
    if (!Read(n, &p)) return Truncated(where + " value");
    DecodeScalar(type, p, out);
    return OkStatus();
  }
  if (depth >= kMaxGgufArrayDepth) {
    return Corrupt(where + " nests arrays deeper than " + std::to_string(kMaxGgufArrayDepth) + " levels");
  }
  uint32_t elem = 0;
  if (!ReadU32(&elem)) return Truncated(where + " array element type");
  if (GgufValueTypeName(elem) == std::string("unknown")) {
    return Corrupt(where + " is an array of unknown value type " + std::to_string(elem) +
                   " (known: uint8, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, "
                   "int64, float64)");
  }
  out->elem_type = static_cast<GgufValueType>(elem);
  if (!ReadU64(&out->count)) return Truncated(where + " array length");
  // The smallest encoding of one element bounds the count by the bytes left,
  // before anything is allocated.
  const size_t scalar = ScalarSize(out->elem_type);
  const size_t min_elem = out->elem_type == GgufValueType::kString  ? 8
                          : out->elem_type == GgufValueType::kArray ? 12
                                                                    : scalar;
  if (out->count > remaining() / min_elem) {
    return Truncated(where + " array of " + std::to_string(out->count) + " " + GgufValueTypeName(elem) +
                     " elements");
  }
  if (scalar == 0 && out->count > kMaxGgufArrayItems) {
    return Corrupt(where + " is an array of " + std::to_string(out->count) + " " + GgufValueTypeName(elem) +
                   " elements (at most " + std::to_string(kMaxGgufArrayItems) + " allowed)");
  }
  const auto count = static_cast<size_t>(out->count);
  if (scalar != 0) {
    Read(count * scalar, &out->raw);
    return OkStatus();
  }
  if (out->elem_type == GgufValueType::kString) {
    out->strings.resize(count);
    for (size_t k = 0; k < count; ++k) {
      LLM_RETURN_IF_ERROR(ReadString(where + " element " + std::to_string(k), UINT64_MAX, &out->strings[k]));
    }
    return OkStatus();
  }
  out->items.resize(count);
  for (size_t k = 0; k < count; ++k) {
    LLM_RETURN_IF_ERROR(ReadValue(key, GgufValueType::kArray, depth + 1, &out->items[k]));
  }
  return OkStatus();
}

Status Parser::ReadTensorInfo(GgufHeader* h, size_t index) {
  const std::string nth = "tensor info " + std::to_string(index);
  std::string_view name;
  LLM_RETURN_IF_ERROR(ReadString(nth + " name", 255, &name));
  if (name.empty()) return Corrupt(nth + " has an empty name");
  GgufTensorInfo t;
  t.name = std::string(name);
  const std::string where = "tensor '" + Printable(name) + "'";
  if (h->tensor_index.count(t.name)) return Corrupt(where + " appears twice");
  uint32_t n_dims = 0;
  if (!ReadU32(&n_dims)) return Truncated(where + " dimension count");
  if (n_dims > kMaxGgufDims) {
    return Corrupt(where + " has " + std::to_string(n_dims) + " dimensions (at most " +
                   std::to_string(kMaxGgufDims) + ")");
  }
  t.num_elements = 1;
  for (uint32_t k = 0; k < n_dims; ++k) {
    uint64_t d = 0;
    if (!ReadU64(&d)) return Truncated(where + " dimensions");
    if (d != 0 && t.num_elements > (uint64_t{1} << 62) / d) {
      return Corrupt(where + " has an absurd shape: its element count overflows");
    }
    t.num_elements *= d;
    t.dims.push_back(d);
  }
  uint32_t type = 0;
  if (!ReadU32(&type)) return Truncated(where + " type");
  const GgmlTypeInfo* info = GgmlTypeInfoOf(type);
  if (info == nullptr) {
    return Unimplemented(path_ + ": " + where + " has ggml type " + GgmlTypeName(type) + " (" +
                         std::to_string(type) + "), which is not supported (supported: " +
                         kSupportedGgmlTypesList + ")");
  }
  t.type = static_cast<GgmlType>(type);
  const uint64_t row = t.dims.empty() ? 1 : t.dims[0];
  if (row % info->block_size != 0) {
    return Corrupt(where + " of type " + info->name + " has rows of " + std::to_string(row) +
                   " elements, not a multiple of its block size " + std::to_string(info->block_size));
  }
  const uint64_t nbytes = t.num_elements / info->block_size * info->type_size;  // < 2^62 * 210 / 256
  if (nbytes > size_) {
    return Corrupt(where + " needs " + std::to_string(nbytes) + " bytes, more than the whole file (" +
                   std::to_string(size_) + ")");
  }
  t.nbytes = static_cast<size_t>(nbytes);
  uint64_t offset = 0;
  if (!ReadU64(&offset)) return Truncated(where + " offset");
  if (offset > size_) {
    return Corrupt(where + " has data offset " + std::to_string(offset) + " beyond the file size " +
                   std::to_string(size_));
  }
  t.offset = static_cast<size_t>(offset);  // relative until the data section's start is known
  h->tensor_index[t.name] = h->tensors.size();
  h->tensors.push_back(std::move(t));
  return OkStatus();
}

Result<GgufHeader> Parser::Run() {
  GgufHeader h;
  const uint8_t* magic;
  if (!Read(4, &magic)) return Truncated("the magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    return DataLoss(path_ + ": not a GGUF file (it does not start with \"GGUF\")");
  }
  if (!ReadU32(&h.version)) return Truncated("the version");
  const uint32_t swapped = __builtin_bswap32(h.version);
  if (swapped == 2 || swapped == 3) {
    return Unimplemented(path_ + ": big-endian GGUF is not supported (convert the model on a little-endian machine)");
  }
  if (h.version != 2 && h.version != 3) {
    return Unimplemented(path_ + ": GGUF version " + std::to_string(h.version) +
                         " is not supported (supported: 2, 3; convert it again with a current llama.cpp)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (!ReadU64(&n_tensors)) return Truncated("the tensor count");
  if (!ReadU64(&n_kv)) return Truncated("the metadata count");
  // Smallest encodings: a key/value is 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 4 + 8.
  if (n_kv > remaining() / 14) {
    return Truncated("a metadata count of " + std::to_string(n_kv));
  }
  if (n_tensors > remaining() / 25) {
    return Truncated("a tensor count of " + std::to_string(n_tensors));
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string_view key;
    LLM_RETURN_IF_ERROR(ReadString("metadata key " + std::to_string(k), 65535, &key));
    if (key.empty()) return Corrupt("metadata key " + std::to_string(k) + " is empty");
    std::string skey(key);
    if (h.metadata.count(skey)) return Corrupt("metadata key '" + Printable(key) + "' appears twice");
    uint32_t type = 0;
    if (!ReadU32(&type)) return Truncated("the type of metadata '" + Printable(key) + "'");
    GgufValue v;
    LLM_RETURN_IF_ERROR(ReadValue(skey, static_cast<GgufValueType>(type), 0, &v));
    h.metadata.emplace(std::move(skey), std::move(v));
  }
  if (const GgufValue* a = h.Find("general.alignment")) {
    if (!a->is_integer() || a->type == GgufValueType::kBool) {
      return Corrupt(std::string("general.alignment is a ") + GgufValueTypeName(static_cast<uint32_t>(a->type)) +
                     ", not an integer");
    }
    const bool negative = a->i < 0;
    const uint64_t al = negative ? 0 : (a->u ? a->u : static_cast<uint64_t>(a->i));
    if (al == 0 || (al & (al - 1)) != 0 || al > (uint64_t{1} << 30)) {
      return Corrupt("general.alignment " + (negative ? std::to_string(a->i) : std::to_string(al)) +
                     " is not a power of two up to 2^30");
    }
    h.alignment = al;
  }
  h.tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) LLM_RETURN_IF_ERROR(ReadTensorInfo(&h, static_cast<size_t>(k)));
  // pos_ <= size_ and alignment <= 2^30: no overflow.
  const uint64_t data_offset = (uint64_t{pos_} + h.alignment - 1) / h.alignment * h.alignment;
  if (!h.tensors.empty() && data_offset > size_) {
    return DataLoss(path_ + ": truncated GGUF file: the tensor data would start at byte " +
                    std::to_string(data_offset) + ", past its end (" + std::to_string(size_) + " bytes)" + kHint);
  }
  const size_t data_size = data_offset > size_ ? 0 : size_ - static_cast<size_t>(data_offset);
  h.data_offset = static_cast<size_t>(std::min<uint64_t>(data_offset, size_));
  std::vector<size_t> order(h.tensors.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  for (GgufTensorInfo& t : h.tensors) {
    const std::string where = "tensor '" + Printable(t.name) + "'";
    if (t.offset % h.alignment != 0) {
      return Corrupt(where + " has data offset " + std::to_string(t.offset) + ", not a multiple of the alignment " +
                     std::to_string(h.alignment));
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return DataLoss(path_ + ": " + where + " needs bytes [" + std::to_string(t.offset) + ", " +
                      std::to_string(uint64_t{t.offset} + t.nbytes) + ") of the data section, which holds " +
                      std::to_string(data_size) + " bytes (truncated file or lying offset)" + kHint);
    }
    t.offset += static_cast<size_t>(data_offset);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return h.tensors[a].offset < h.tensors[b].offset;
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = h.tensors[order[k - 1]];
    const GgufTensorInfo& cur = h.tensors[order[k]];
    if (prev.nbytes > 0 && cur.nbytes > 0 && prev.offset + prev.nbytes > cur.offset) {
      return Corrupt("tensors '" + Printable(prev.name) + "' and '" + Printable(cur.name) + "' overlap");
    }
  }
  return h;
}

}  // namespace

const char* GgufValueTypeName(uint32_t type) {
  static const char* const kNames[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32", "float32",
                                       "bool",  "string", "array",  "uint64", "int64",  "float64"};
  return type < sizeof(kNames) / sizeof(kNames[0]) ? kNames[type] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kUint16:
    case GgufValueType::kInt16: case GgufValueType::kUint32: case GgufValueType::kInt32:
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kBool:
      return true;
    default:
      return false;
  }
}

double GgufValue::ArrayFloat(uint64_t k) const {
  GgufValue v;
  const size_t n = ScalarSize(elem_type);
  if (raw == nullptr || n == 0 || k >= count) return 0;
  DecodeScalar(elem_type, raw + k * n, &v);
  if (v.is_float()) return v.f;
  return v.i != 0 ? static_cast<double>(v.i) : static_cast<double>(v.u);
}

int64_t GgufValue::ArrayInt(uint64_t k) const {
  GgufValue v;
  const size_t n = ScalarSize(elem_type);
  if (raw == nullptr || n == 0 || k >= count) return 0;
  DecodeScalar(elem_type, raw + k * n, &v);
  if (v.is_float()) {
    // Saturating (NaN -> 0): a float element read as an integer must not be UB.
    if (!(v.f == v.f)) return 0;
    if (v.f >= 9.2e18) return INT64_MAX;
    if (v.f <= -9.2e18) return INT64_MIN;
    return static_cast<int64_t>(v.f);
  }
  return v.i != 0 ? v.i : static_cast<int64_t>(v.u);
}

const GgufValue* GgufHeader::Find(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufHeader::FindTensor(const std::string& name) const {
  auto it = tensor_index.find(name);
  return it == tensor_index.end() ? nullptr : &tensors[it->second];
}

Result<uint64_t> GgufHeader::GetUint(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF metadata has no " + key);
  if (!v->is_integer() || v->i < 0) {
    return DataLoss("GGUF metadata " + key + " is not a non-negative integer (it is a " +
                    GgufValueTypeName(static_cast<uint32_t>(v->type)) + ")");
  }
  return v->u != 0 ? v->u : static_cast<uint64_t>(v->i);
}

Result<double> GgufHeader::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF metadata has no " + key);
  if (v->is_float()) return v->f;
  if (v->is_integer()) return v->i != 0 ? static_cast<double>(v->i) : static_cast<double>(v->u);
  return DataLoss("GGUF metadata " + key + " is not a number (it is a " +
                  GgufValueTypeName(static_cast<uint32_t>(v->type)) + ")");
}

Result<std::string> GgufHeader::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound("GGUF metadata has no " + key);
  if (v->type != GgufValueType::kString) {
    return DataLoss("GGUF metadata " + key + " is not a string (it is a " +
                    GgufValueTypeName(static_cast<uint32_t>(v->type)) + ")");
  }
  return std::string(v->str);
}

Result<GgufHeader> ParseGguf(const uint8_t* data, size_t size, const std::string& path_for_messages) {
  return Parser(data, size, path_for_messages).Run();
}

Status CheckGgufArchitecture(const GgufHeader& header, const std::string& path) {
  const GgufValue* a = header.Find("general.architecture");
  if (a == nullptr) return DataLoss(path + ": GGUF metadata has no general.architecture" + std::string(kHint));
  if (a->type != GgufValueType::kString) {
    return DataLoss(path + ": GGUF general.architecture is not a string" + std::string(kHint));
  }
  if (a->str != "llama") {
    return Unimplemented(path + ": GGUF architecture '" + Printable(a->str) +
                         "' is not supported (supported: llama)");
  }
  return OkStatus();
}

Result<std::shared_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::shared_ptr<GgufFile> f(new GgufFile());
  LLM_ASSIGN_OR_RETURN(f->file_, MappedFile::Open(path, MemCategory::kWeights));
  LLM_ASSIGN_OR_RETURN(f->header_, ParseGguf(f->file_->data(), f->file_->size(), path));
  LLM_RETURN_IF_ERROR(CheckGgufArchitecture(f->header_, path));
  return f;
}

}  // namespace llm
