#include "tokenizer/hf_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"

namespace llm {

namespace {

using nlohmann::json;

const std::string kMetaspace = "\xe2\x96\x81";  // U+2581 "▁"

std::string CodepointToUtf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2's byte-to-unicode map: printable bytes map to themselves, the rest to
// U+0100 onwards, so every byte is a visible character of a vocabulary entry.
struct ByteLevelMap {
  std::string byte_to_utf8[256];
  std::unordered_map<std::string, uint8_t> utf8_to_byte;
  ByteLevelMap() {
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_utf8[b] = CodepointToUtf8(printable ? b : next++);
      utf8_to_byte[byte_to_utf8[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteLevelMap& ByteLevel() {
  static const ByteLevelMap m;
  return m;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// One text transformation step before BPE, in pipeline order.
struct Normalize {
  enum Kind { kPrepend, kReplace } kind;
  std::string a, b;
};

class HfTokenizer final : public Tokenizer {
 public:
  Status Init(const json& j, const json& cfg, const std::string& source, const std::string& cfg_source);

  Result<std::vector<int32_t>> Encode(const std::string& text, bool add_bos) const override;
  std::string Decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return static_cast<int>(id_to_token_.size()); }
  int bos_id() const override { return bos_id_; }
  std::vector<int> eos_ids() const override { return eos_id_ >= 0 ? std::vector<int>{eos_id_} : std::vector<int>{}; }
  std::string description() const override { return "tokenizer.json (" + flavour_ + "):" + source_; }
  size_t MinTokens(const std::string& text) const override { return bound_.MinTokens(text); }
  ~HfTokenizer() override {
    if (split_regex_) pcre2_code_free(split_regex_);
  }

 private:
  Status InitNormalizer(const json& n);
  Status InitPreTokenizer(const json& p);
  void EncodeSegment(const std::string& segment, bool first_segment, std::vector<int32_t>* out) const;
  void Bpe(const std::string& word, std::vector<int32_t>* out) const;
  int TokenId(const std::string& t) const {
    auto it = vocab_.find(t);
    return it == vocab_.end() ? -1 : it->second;
  }

  std::string source_, flavour_;
  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int> merge_rank_;  // "left\x01right" -> rank
  std::vector<std::pair<std::string, int>> added_;   // content, id; longest first
  std::vector<std::pair<std::string, int>> added_by_first_byte_[256];  // same, bucketed: scanning stays linear
  std::vector<bool> is_special_;
  std::vector<Normalize> normalizers_;
  AlnumTokenBound bound_;
  bool metaspace_ = false;
  std::string metaspace_replacement_ = kMetaspace;
  std::string metaspace_prepend_ = "always";  // always | first | never
  bool metaspace_split_ = false;
  bool byte_level_ = false;
  pcre2_code* split_regex_ = nullptr;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  int unk_id_ = -1;
  int bos_id_ = -1, eos_id_ = -1;
  bool add_bos_ = true;
  // Decoder steps (Llama 2 style): replace "▁" by " ", bytes from <0xXX>, strip one leading space.
  bool decode_metaspace_ = false, decode_byte_fallback_ = false, decode_strip_leading_space_ = false;
};

Status HfTokenizer::InitNormalizer(const json& n) {
  if (n.is_null()) return OkStatus();
  const std::string type = n.value("type", "");
  if (type == "Sequence") {
    for (const auto& s : n.value("normalizers", json::array())) LLM_RETURN_IF_ERROR(InitNormalizer(s));
    return OkStatus();
  }
  if (type == "Prepend") {
    normalizers_.push_back({Normalize::kPrepend, n.value("prepend", ""), ""});
    return OkStatus();
  }
  if (type == "Replace" && n.contains("pattern") && n["pattern"].contains("String")) {
    normalizers_.push_back({Normalize::kReplace, n["pattern"]["String"].get<std::string>(), n.value("content", "")});
    return OkStatus();
  }
  return Unimplemented(source_ + ": normalizer '" + type + "' is not supported (Llama uses Prepend and Replace)");
}

Status HfTokenizer::InitPreTokenizer(const json& p) {
  if (p.is_null()) return OkStatus();
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& s : p.value("pretokenizers", json::array())) LLM_RETURN_IF_ERROR(InitPreTokenizer(s));
    return OkStatus();
  }
  if (type == "Metaspace") {
    metaspace_ = true;
    metaspace_replacement_ = p.value("replacement", kMetaspace);
    if (p.contains("prepend_scheme")) {
      metaspace_prepend_ = p.value("prepend_scheme", "always");
    } else if (p.contains("add_prefix_space")) {
      metaspace_prepend_ = p.value("add_prefix_space", true) ? "always" : "never";
    }
    metaspace_split_ = p.value("split", true);
    return OkStatus();
  }
  if (type == "ByteLevel") {
    byte_level_ = true;
    if (p.value("add_prefix_space", false)) return Unimplemented(source_ + ": ByteLevel add_prefix_space is not supported");
    if (p.value("use_regex", true) && split_regex_ == nullptr) {
      return Unimplemented(source_ + ": ByteLevel with its built-in GPT-2 regex is not supported (Llama 3 uses a Split)");
    }
    return OkStatus();
  }
  if (type == "Split" && p.contains("pattern") && p["pattern"].contains("Regex")) {
    if (p.value("behavior", "") != "Isolated" || p.value("invert", false)) {
      return Unimplemented(source_ + ": Split pre-tokenizer needs behavior Isolated and invert false");
    }
    const std::string pattern = p["pattern"]["Regex"].get<std::string>();
    int err = 0;
    PCRE2_SIZE offset = 0;
    split_regex_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
    if (split_regex_ == nullptr) return DataLoss(source_ + ": Split regex does not compile at offset " + std::to_string(offset));
    pcre2_jit_compile(split_regex_, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
    return OkStatus();
  }
  return Unimplemented(source_ + ": pre_tokenizer '" + type + "' is not supported");
}

Status HfTokenizer::Init(const json& j, const json& cfg, const std::string& source, const std::string& cfg_source) {
  source_ = source;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    return DataLoss(source + ": not a tokenizer.json (no 'model' object)");
  }
  const json& m = j["model"];
  const std::string type = m.value("type", "BPE");
  if (type != "BPE") return Unimplemented(source + ": tokenizer model type '" + type + "' is not supported (only BPE)");
  if (!m.contains("vocab") || !m["vocab"].is_object()) return DataLoss(source + ": BPE model has no 'vocab' object");
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > (1 << 24)) {
      return DataLoss(source + ": vocab entry '" + it.key() + "' has no valid id");
    }
    vocab_[it.key()] = it.value().get<int>();
  }
  auto add_token = [&](const std::string& t, int id) {
    if (id >= static_cast<int>(id_to_token_.size())) id_to_token_.resize(id + 1);
    id_to_token_[id] = t;
  };
  for (const auto& [t, id] : vocab_) add_token(t, id);
  int rank = 0;
  for (const auto& mg : m.value("merges", json::array())) {
    std::string a, b;
    if (mg.is_string()) {
      const std::string s = mg.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) return DataLoss(source + ": merge '" + s + "' is not 'left right'");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      a = mg[0].get<std::string>();
      b = mg[1].get<std::string>();
    } else {
      return DataLoss(source + ": a merge is neither 'a b' nor ['a', 'b']");
    }
    merge_rank_.emplace(a + '\x01' + b, rank++);
  }
  byte_fallback_ = m.value("byte_fallback", false);
  fuse_unk_ = m.value("fuse_unk", false);
  ignore_merges_ = m.value("ignore_merges", false);
  if (m.contains("unk_token") && m["unk_token"].is_string()) unk_id_ = TokenId(m["unk_token"].get<std::string>());
  for (const auto& a : j.value("added_tokens", json::array())) {
    if (!a.contains("id") || !a.contains("content")) return DataLoss(source + ": added_tokens entry needs id and content");
    const int id = a["id"].get<int>();
    const std::string content = a["content"].get<std::string>();
    add_token(content, id);
    vocab_[content] = id;
    added_.emplace_back(content, id);
    if (static_cast<int>(is_special_.size()) <= id) is_special_.resize(id + 1, false);
    is_special_[id] = a.value("special", false);
  }
  is_special_.resize(id_to_token_.size(), false);
  std::sort(added_.begin(), added_.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
  for (const auto& a : added_) {
    if (!a.first.empty()) added_by_first_byte_[static_cast<unsigned char>(a.first[0])].push_back(a);
  }
  LLM_RETURN_IF_ERROR(InitNormalizer(j.contains("normalizer") ? j["normalizer"] : json()));
  // The Split regex must exist before ByteLevel is checked: initialise in order.
  LLM_RETURN_IF_ERROR(InitPreTokenizer(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json()));
  flavour_ = byte_level_ ? "byte-level BPE" : "sentencepiece-style BPE";
  // Prompt-length bound (MinTokens): every vocabulary entry and added token counts;
  // a Replace normalizer that could remove letters or digits leaves no bound.
  for (const std::string& t : id_to_token_) bound_.AddEntry(t);
  for (int c = 0; c < 128; ++c) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", c);
    bound_.known[c] = std::isalnum(c) && (TokenId(std::string(1, static_cast<char>(c))) >= 0 ||
                                          (byte_fallback_ && TokenId(hex) >= 0));
  }
  for (const Normalize& n : normalizers_) {
    for (unsigned char c : n.a) {
      if (n.kind == Normalize::kReplace && std::isalnum(c)) bound_.max_per_token = 0;
    }
  }
  // Decoder.
  const json dec = j.contains("decoder") ? j["decoder"] : json();
  std::vector<json> steps;
  if (dec.is_object() && dec.value("type", "") == "Sequence") {
    for (const auto& d : dec.value("decoders", json::array())) steps.push_back(d);
  } else if (dec.is_object()) {
    steps.push_back(dec);
  }
  for (const auto& d : steps) {
    const std::string t = d.value("type", "");
    if (t == "Replace") decode_metaspace_ = true;
    else if (t == "ByteFallback") decode_byte_fallback_ = true;
    else if (t == "Strip") decode_strip_leading_space_ = d.value("start", 0) > 0;
    else if (t == "Metaspace") decode_metaspace_ = decode_strip_leading_space_ = true;
    else if (t != "Fuse" && t != "ByteLevel") return Unimplemented(source + ": decoder '" + t + "' is not supported");
  }
  // BOS/EOS: tokenizer_config.json first (what transformers reads), then the
  // post-processor's template (Llama 3 adds <|begin_of_text|> there).
  // A token named there must exist: an unknown one would silently lose BOS
  // (or the stop token). null means "none", as transformers reads it.
  auto token_of = [&](const json& v, const char* key, int* id) -> Status {
    if (v.is_null()) return OkStatus();
    std::string name;
    if (v.is_string()) name = v.get<std::string>();
    else if (v.is_object() && v.contains("content") && v["content"].is_string()) name = v["content"].get<std::string>();
    else return DataLoss(cfg_source + ": '" + key + "' is neither a string nor {\"content\": ...}");
    *id = TokenId(name);
    if (*id < 0) return DataLoss(cfg_source + ": " + key + " '" + name + "' is not in " + source + "'s vocabulary");
    return OkStatus();
  };
  if (cfg.is_object()) {
    if (cfg.contains("add_bos_token") && !cfg["add_bos_token"].is_boolean() && !cfg["add_bos_token"].is_null()) {
      return DataLoss(cfg_source + ": 'add_bos_token' is not true or false");
    }
    if (cfg.contains("bos_token")) LLM_RETURN_IF_ERROR(token_of(cfg["bos_token"], "bos_token", &bos_id_));
    if (cfg.contains("eos_token")) LLM_RETURN_IF_ERROR(token_of(cfg["eos_token"], "eos_token", &eos_id_));
  }
  const json pp = j.contains("post_processor") ? j["post_processor"] : json();
  bool template_bos = false;
  if (pp.is_object() && pp.value("type", "") == "TemplateProcessing" && pp.contains("single") &&
      pp["single"].is_array() && !pp["single"].empty() && pp["single"][0].contains("SpecialToken")) {
    const int id = TokenId(pp["single"][0]["SpecialToken"].value("id", ""));
    if (id >= 0) {
      template_bos = true;
      if (bos_id_ < 0) bos_id_ = id;
    }
  }
  add_bos_ = cfg.is_object() && cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()
                 ? cfg["add_bos_token"].get<bool>()
                 : (template_bos || !byte_level_);
  return OkStatus();
}

void HfTokenizer::Bpe(const std::string& word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const int id = TokenId(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  std::vector<std::string> sym;
  for (size_t i = 0; i < word.size();) {
    const size_t n = std::min(Utf8SequenceLength(static_cast<unsigned char>(word[i])), word.size() - i);
    sym.push_back(word.substr(i, n));
    i += n;
  }
  // Merge the lowest-ranked adjacent pair (leftmost on ties) until none applies.
  for (;;) {
    int best = INT_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = merge_rank_.find(sym[i] + '\x01' + sym[i + 1]);
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == INT_MAX) break;
    sym[at] += sym[at + 1];
    sym.erase(sym.begin() + at + 1);
  }
  bool last_unk = false;
  for (const std::string& s : sym) {
    const int id = TokenId(s);
    if (id >= 0) {
      out->push_back(id);
      last_unk = false;
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      for (unsigned char c : s) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", c);
        const int bid = TokenId(name);
        if (bid < 0) break;
        bytes.push_back(bid);
      }
      if (bytes.size() == s.size()) {
        out->insert(out->end(), bytes.begin(), bytes.end());
        last_unk = false;
        continue;
      }
    }
    if (unk_id_ >= 0 && !(fuse_unk_ && last_unk)) out->push_back(unk_id_);
    last_unk = true;
  }
}

void HfTokenizer::EncodeSegment(const std::string& segment, bool first_segment, std::vector<int32_t>* out) const {
  std::string text = segment;
  for (const Normalize& n : normalizers_) {
    text = n.kind == Normalize::kPrepend ? (text.empty() ? text : n.a + text) : ReplaceAll(text, n.a, n.b);
  }
  if (metaspace_) {
    text = ReplaceAll(text, " ", metaspace_replacement_);
    const bool prepend = metaspace_prepend_ == "always" || (metaspace_prepend_ == "first" && first_segment);
    if (prepend && !text.empty() && text.compare(0, metaspace_replacement_.size(), metaspace_replacement_) != 0) {
      text = metaspace_replacement_ + text;
    }
    if (!metaspace_split_) return Bpe(text, out);
    // Split before each replacement character (it stays with the following piece).
    size_t start = 0;
    for (size_t pos = text.find(metaspace_replacement_, 1); pos != std::string::npos;
         pos = text.find(metaspace_replacement_, pos + 1)) {
      Bpe(text.substr(start, pos - start), out);
      start = pos;
    }
    return Bpe(text.substr(start), out);
  }
  auto byte_map = [&](const std::string& piece) {
    if (!byte_level_) return piece;
    std::string mapped;
    for (unsigned char c : piece) mapped += ByteLevel().byte_to_utf8[c];
    return mapped;
  };
  if (split_regex_ == nullptr) return Bpe(byte_map(text), out);
  // Isolated split: every match is a piece, and so is every gap between matches.
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(split_regex_, nullptr);
  size_t pos = 0, last = 0;
  // PCRE2 checks the whole subject for valid UTF-8 on every call unless told
  // not to: check once, then skip it (otherwise encoding is quadratic).
  uint32_t options = 0;
  while (pos <= text.size()) {
    const int rc =
        pcre2_match(split_regex_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, options, md, nullptr);
    if (rc < 0) break;  // no more matches, or invalid UTF-8: the rest is one piece (bytes are still encoded)
    options = PCRE2_NO_UTF_CHECK;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[0] > last) Bpe(byte_map(text.substr(last, ov[0] - last)), out);
    if (ov[1] > ov[0]) Bpe(byte_map(text.substr(ov[0], ov[1] - ov[0])), out);
    last = ov[1];
    pos = ov[1] > ov[0] ? ov[1] : ov[1] + Utf8SequenceLength(static_cast<unsigned char>(text[ov[1]]));
  }
  if (last < text.size()) Bpe(byte_map(text.substr(last)), out);
  pcre2_match_data_free(md);
}

Result<std::vector<int32_t>> HfTokenizer::Encode(const std::string& text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);
  // Added tokens are found in the raw text first; the text between them is
  // normalized, pre-tokenized and run through BPE.
  size_t seg_start = 0;
  bool first = true;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, int>* hit = nullptr;
    for (const auto& a : added_by_first_byte_[static_cast<unsigned char>(text[i])]) {
      if (text.compare(i, a.first.size(), a.first) == 0) {
        hit = &a;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    if (i > seg_start) EncodeSegment(text.substr(seg_start, i - seg_start), first, &out);
    out.push_back(hit->second);
    first = false;
    i += hit->first.size();
    seg_start = i;
  }
  if (seg_start < text.size()) EncodeSegment(text.substr(seg_start), first, &out);
  return out;
}

std::string HfTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size())) continue;
    if (is_special_[id]) continue;  // like skip_special_tokens=True
    const std::string& t = id_to_token_[id];
    if (byte_level_) {
      for (size_t i = 0; i < t.size();) {
        const size_t n = std::min(Utf8SequenceLength(static_cast<unsigned char>(t[i])), t.size() - i);
        auto it = ByteLevel().utf8_to_byte.find(t.substr(i, n));
        if (it != ByteLevel().utf8_to_byte.end()) out += static_cast<char>(it->second);
        else out += t.substr(i, n);
        i += n;
      }
      continue;
    }
    if (decode_byte_fallback_ && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
      out += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
      continue;
    }
    out += decode_metaspace_ ? ReplaceAll(t, metaspace_replacement_, " ") : t;
  }
  if (decode_strip_leading_space_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace

const std::string& ByteLevelChar(uint8_t b) { return ByteLevel().byte_to_utf8[b]; }

Result<std::unique_ptr<Tokenizer>> ParseHfTokenizer(const std::string& tokenizer_json, const std::string& config_json,
                                                    const std::string& source) {
  json j = json::parse(tokenizer_json, nullptr, false);
  if (j.is_discarded()) return DataLoss(source + ": not valid JSON (truncated or corrupt tokenizer.json)");
  // tokenizer_config.json is optional, but one that is there must be valid:
  // ignoring it would silently drop BOS (add_bos_token, bos_token).
  const std::string cfg_source =
      source.size() >= 14 && source.compare(source.size() - 14, 14, "tokenizer.json") == 0
          ? source.substr(0, source.size() - 14) + "tokenizer_config.json"
          : source + " (tokenizer_config.json)";
  json cfg = config_json.empty() ? json() : json::parse(config_json, nullptr, false);
  if (cfg.is_discarded() || (!config_json.empty() && !cfg.is_object())) {
    return DataLoss(cfg_source + ": not a valid JSON object (truncated or corrupt tokenizer_config.json)");
  }
  auto tok = std::make_unique<HfTokenizer>();
  try {
    LLM_RETURN_IF_ERROR(tok->Init(j, cfg, source, cfg_source));
  } catch (const json::exception& e) {  // a field of the wrong JSON type
    return DataLoss(source + ": unexpected structure (" + e.what() + ")");
  }
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

Result<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::string& dir) {
  LLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(dir + "/tokenizer.json"));
  auto cfg = ReadTextFile(dir + "/tokenizer_config.json");
  if (!cfg.ok() && cfg.status().code() != StatusCode::kNotFound) return cfg.status();  // a FIFO, a directory...
  if (cfg.ok() && cfg.value().empty()) {
    return DataLoss(dir + "/tokenizer_config.json: empty file (truncated or corrupt tokenizer_config.json)");
  }
  return ParseHfTokenizer(text, cfg.ok() ? cfg.value() : "", dir + "/tokenizer.json");
}

}  // namespace llm
