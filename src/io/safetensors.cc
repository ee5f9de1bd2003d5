#include "io/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace llm {

namespace {

bool ParseStDType(const std::string& s, DType* out) {
  if (s == "F32") { *out = DType::kF32; return true; }
  if (s == "F16") { *out = DType::kF16; return true; }
  if (s == "BF16") { *out = DType::kBF16; return true; }
  if (s == "I32") { *out = DType::kI32; return true; }
  if (s == "I64") { *out = DType::kI64; return true; }
  return false;
}

}  // namespace

Result<std::map<std::string, SafetensorsEntry>> ParseSafetensorsHeader(
    const uint8_t* data, size_t file_size, const std::string& path) {
  const std::string hint = " (the file is corrupt or truncated: download it again)";
  if (file_size < 8) return DataLoss(path + ": too short for a safetensors header (" +
                                     std::to_string(file_size) + " bytes)" + hint);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > kMaxSafetensorsHeaderBytes || header_len > file_size - 8) {
    return DataLoss(path + ": header length " + std::to_string(header_len) +
                    " exceeds the file size " + std::to_string(file_size) + hint);
  }
  const char* header_begin = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header = nlohmann::json::parse(header_begin, header_begin + header_len,
                                                nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return DataLoss(path + ": safetensors header is not a JSON object" + hint);
  }
  const size_t data_start = 8 + header_len;
  const size_t data_size = file_size - data_start;
  std::map<std::string, SafetensorsEntry> out;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const nlohmann::json& info = it.value();
    const std::string where = path + ": tensor '" + name + "'";
    if (!info.is_object()) return DataLoss(where + ": entry is not an object" + hint);
    auto dt = info.find("dtype");
    auto sh = info.find("shape");
    auto off = info.find("data_offsets");
    if (dt == info.end() || !dt->is_string() || sh == info.end() || !sh->is_array() ||
        off == info.end() || !off->is_array() || off->size() != 2) {
      return DataLoss(where + ": needs string 'dtype', array 'shape' and 2-element 'data_offsets'" + hint);
    }
    SafetensorsEntry e;
    if (!ParseStDType(dt->get<std::string>(), &e.dtype)) {
      return Unimplemented(where + ": unsupported dtype " + dt->get<std::string>() +
                           " (supported: F32, F16, BF16, I32, I64)");
    }
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) return DataLoss(where + ": shape has a non-integer or negative dimension" + hint);
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t{1} << 62) / dim) return DataLoss(where + ": shape overflows" + hint);
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned()) {
      return DataLoss(where + ": data_offsets must be non-negative integers" + hint);
    }
    const uint64_t begin = (*off)[0].get<uint64_t>();
    const uint64_t end = (*off)[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return DataLoss(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                      "] outside the " + std::to_string(data_size) + " data bytes" + hint);
    }
    const uint64_t expected = numel * DTypeSize(e.dtype);
    if (end - begin != expected) {
      return DataLoss(where + ": holds " + std::to_string(end - begin) + " bytes but its shape and dtype need " +
                      std::to_string(expected) + hint);
    }
    e.offset = data_start + begin;
    e.nbytes = end - begin;
    ranges.emplace_back(begin, end);
    out.emplace(name, std::move(e));
  }
  // Overlapping tensors mean a forged header; the spec forbids them.
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return DataLoss(path + ": tensors overlap in the data section" + hint);
  }
  return out;
}

Result<std::vector<std::string>> ReadSafetensorsIndex(const std::string& index_path) {
  LLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return DataLoss(index_path + ": not a valid index (needs a 'weight_map' object); download it again");
  }
  std::set<std::string> files;
  for (auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) return DataLoss(index_path + ": weight_map['" + name + "'] is not a file name");
    const std::string f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
      return DataLoss(index_path + ": shard name '" + f + "' must be a plain file name in the model directory");
    }
    files.insert(f);
  }
  return std::vector<std::string>(files.begin(), files.end());
}

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  LLM_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path, MemCategory::kWeights));
  LLM_ASSIGN_OR_RETURN(auto tensors, ParseSafetensorsHeader(mapped->data(), mapped->size(), path));
  auto f = std::make_shared<SafetensorsFile>();
  f->file_ = std::move(mapped);
  f->tensors_ = std::move(tensors);
  return f;
}

}  // namespace llm
