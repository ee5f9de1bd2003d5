#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "core/mapped_file.h"
#include "core/printable.h"
#include "tokenizer/hf_tokenizer.h"

namespace llm {

size_t Utf8SequenceLength(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
}

size_t CompleteUtf8Prefix(const std::string& s) {
  // Walk back over at most 3 continuation bytes to the last lead byte and
  // check whether its sequence is complete.
  const size_t n = s.size();
  size_t i = n;
  int back = 0;
  while (i > 0 && back < 4) {
    const unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {
      const size_t need = Utf8SequenceLength(c);
      return (n - (i - 1) >= need) ? n : i - 1;
    }
    --i;
    ++back;
  }
  return n;  // only continuation bytes: invalid UTF-8, pass through
}

std::string StreamDecoder::Push(int32_t id) {
  ids_.push_back(id);
  const std::string text = tok_->Decode(ids_);
  const size_t complete = CompleteUtf8Prefix(text);
  if (complete <= emitted_) return "";
  std::string out = text.substr(emitted_, complete - emitted_);
  emitted_ = complete;
  return out;
}

void AlnumTokenBound::AddEntry(const std::string& token) {
  size_t n = 0;
  for (unsigned char c : token) n += std::isalnum(c) && c < 128;
  max_per_token = std::max(max_per_token, n);
}

size_t AlnumTokenBound::MinTokens(const std::string& text) const {
  if (max_per_token == 0) return 0;
  // A letter followed by a non-ASCII byte may compose with it (NFKC: e + U+0301
  // is é, which may be unknown): only letters followed by ASCII count.
  size_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    n += c < 128 && known[c] && (i + 1 == text.size() || static_cast<unsigned char>(text[i + 1]) < 128);
  }
  return (n + max_per_token - 1) / max_per_token;
}

std::string StreamDecoder::Flush() {
  const std::string text = tok_->Decode(ids_);
  std::string out = text.size() > emitted_ ? text.substr(emitted_) : "";
  emitted_ = text.size();
  return out;
}

namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  Status Load(const std::string& path) {
    // Read through the product's input-file helper (a directory or FIFO is a
    // clear error, never a hang or a C++ stream exception), then parse.
    LLM_ASSIGN_OR_RETURN(std::string proto, ReadTextFile(path));
    return LoadProto(proto, path);
  }
  // `path` names where the model came from in messages and description().
  Status LoadProto(const std::string& proto, const std::string& path) {
    const auto st = sp_.LoadFromSerializedProto(proto);
    // The library's message may quote a piece: escaped, so the error stays one line.
    if (!st.ok()) return DataLoss(path + ": not a valid SentencePiece model (" + PrintableName(st.ToString(), 200) + ")");
    path_ = path;
    for (int id = 0; id < sp_.GetPieceSize(); ++id) bound_.AddEntry(sp_.IdToPiece(id));
    // A letter or digit counts when it comes through the model's normalizer
    // unchanged (no case folding) as tokens that are not <unk>.
    for (int c = 0; c < 128; ++c) {
      if (!std::isalnum(c)) continue;
      const std::string one(1, static_cast<char>(c));
      std::vector<int> ids;
      if (!sp_.Encode(one, &ids).ok() || ids.empty()) continue;
      std::string back;
      bool unk = false;
      for (int id : ids) unk = unk || sp_.IsUnknown(id);
      bound_.known[c] = !unk && sp_.Decode(ids, &back).ok() && back == one;
    }
    return OkStatus();
  }
  size_t MinTokens(const std::string& text) const override { return bound_.MinTokens(text); }
  Result<std::vector<int32_t>> Encode(const std::string& text, bool add_bos) const override {
    std::vector<int> ids;
    const auto st = sp_.Encode(text, &ids);
    if (!st.ok()) return InvalidArgument("cannot tokenize prompt: " + st.ToString());
    std::vector<int32_t> out;
    if (add_bos && sp_.bos_id() >= 0) out.push_back(sp_.bos_id());
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    // Ids past the vocabulary (embeddings padded beyond the tokenizer) are
    // skipped, as transformers does; SentencePiece would fail the whole call.
    std::vector<int> v;
    v.reserve(ids.size());
    for (int32_t id : ids) {
      if (id >= 0 && id < sp_.GetPieceSize()) v.push_back(id);
    }
    std::string text;
    sp_.Decode(v, &text);
    return text;
  }
  int vocab_size() const override { return sp_.GetPieceSize(); }
  int bos_id() const override { return sp_.bos_id(); }
  std::vector<int> eos_ids() const override { return {sp_.eos_id()}; }
  std::string description() const override { return "sentencepiece:" + path_; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
  std::string path_;
  AlnumTokenBound bound_;
};

class ByteTokenizer final : public Tokenizer {
 public:
  Result<std::vector<int32_t>> Encode(const std::string& text, bool add_bos) const override {
    std::vector<int32_t> out;
    if (add_bos) out.push_back(1);
    for (unsigned char c : text) out.push_back(static_cast<int32_t>(c) + 3);
    return out;
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id >= 3 && id < 259) s.push_back(static_cast<char>(id - 3));
    }
    return s;
  }
  int vocab_size() const override { return 259; }
  int bos_id() const override { return 1; }
  std::vector<int> eos_ids() const override { return {2}; }
  std::string description() const override { return "byte-level (built-in)"; }
  size_t MinTokens(const std::string& text) const override { return text.size(); }  // one id per byte
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::string& path) {
  auto tok = std::make_unique<SentencePieceTokenizer>();
  LLM_RETURN_IF_ERROR(tok->Load(path));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

Result<std::unique_ptr<Tokenizer>> MakeSentencePieceTokenizer(const std::string& serialized_model_proto,
                                                              const std::string& source) {
  auto tok = std::make_unique<SentencePieceTokenizer>();
  LLM_RETURN_IF_ERROR(tok->LoadProto(serialized_model_proto, source));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_dir) {
  // tokenizer.json first: it is what transformers' fast tokenizer uses.
  if (PathExists(model_dir + "/tokenizer.json")) return LoadHfTokenizer(model_dir);
  const std::string sp_path = model_dir + "/tokenizer.model";
  if (PathExists(sp_path)) return LoadSentencePieceTokenizer(sp_path);
  return NotFound(model_dir + ": no tokenizer.json or tokenizer.model found");
}

std::unique_ptr<Tokenizer> MakeByteTokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace llm
