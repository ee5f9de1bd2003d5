#include "tokenizer/gguf_tokenizer.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/printable.h"
#include "tokenizer/hf_tokenizer.h"

namespace llm {

namespace {

// Protocol-buffer wire format, just what a ModelProto needs (the Debian
// package ships no sentencepiece_model.pb.h to build one with).
class ProtoWriter {
 public:
  void Varint(uint32_t field, uint64_t v) {
    Tag(field, 0);
    Raw(v);
  }
  void Float(uint32_t field, float v) {
    Tag(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>((bits >> (8 * i)) & 0xff);
  }
  void Bytes(uint32_t field, const std::string& s) {
    Tag(field, 2);
    Raw(s.size());
    out_ += s;
  }
  const std::string& str() const { return out_; }

 private:
  void Tag(uint32_t field, uint32_t wire_type) { Raw((uint64_t{field} << 3) | wire_type); }
  void Raw(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  std::string out_;
};

// Field numbers of sentencepiece_model.proto.
namespace sp {
constexpr uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr uint32_t kPiecePiece = 1, kPieceScore = 2, kPieceType = 3;
constexpr uint32_t kTrainerModelType = 3, kTrainerVocabSize = 4, kTrainerAllowWhitespaceOnlyPieces = 26,
                   kTrainerByteFallback = 35, kTrainerUnkId = 40, kTrainerBosId = 41, kTrainerEosId = 42,
                   kTrainerPadId = 43, kTrainerUnkPiece = 45, kTrainerBosPiece = 46, kTrainerEosPiece = 47;
constexpr uint32_t kNormName = 1, kNormPrecompiledCharsmap = 2, kNormAddDummyPrefix = 3, kNormRemoveExtraWhitespaces = 4,
                   kNormEscapeWhitespaces = 5;
constexpr uint64_t kModelTypeBpe = 2;
}  // namespace sp

GgufTokenType TypeOf(const GgufVocab& v, size_t id) {
  return id < v.token_types.size() ? static_cast<GgufTokenType>(v.token_types[id]) : GgufTokenType::kNormal;
}

// A ModelProto equal to what Llama's tokenizer.model holds: BPE over the
// pieces with their scores, the identity normalizer unless the file carries a
// precompiled_charsmap, "▁" for spaces, a dummy prefix unless the file says
// otherwise, byte fallback when <0xXX> pieces exist.
Result<std::string> SentencePieceModelProto(const GgufVocab& v, const std::string& source) {
  ProtoWriter model;
  bool has_bytes = false, has_unk = false;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const int type = id < v.token_types.size() ? v.token_types[id] : 1;
    if (type < 1 || type > 6) {
      return DataLoss(source + ": tokenizer.ggml.token_type[" + std::to_string(id) + "] is " + std::to_string(type) +
                      " (valid: 1..6)");
    }
    has_bytes = has_bytes || type == static_cast<int>(GgufTokenType::kByte);
    has_unk = has_unk || type == static_cast<int>(GgufTokenType::kUnknown);
    ProtoWriter piece;
    piece.Bytes(sp::kPiecePiece, v.tokens[id]);
    piece.Float(sp::kPieceScore, id < v.scores.size() ? v.scores[id] : 0.0f);
    piece.Varint(sp::kPieceType, static_cast<uint64_t>(type));
    model.Bytes(sp::kModelPieces, piece.str());
  }
  if (!has_unk) return DataLoss(source + ": the llama vocabulary has no token of type UNKNOWN (SentencePiece needs one)");
  auto piece_or_default = [&](int id, const char* fallback) {
    return id >= 0 && static_cast<size_t>(id) < v.tokens.size() ? v.tokens[id] : std::string(fallback);
  };
  ProtoWriter trainer;
  trainer.Varint(sp::kTrainerModelType, sp::kModelTypeBpe);
  trainer.Varint(sp::kTrainerVocabSize, v.tokens.size());
  trainer.Varint(sp::kTrainerAllowWhitespaceOnlyPieces, 1);
  trainer.Varint(sp::kTrainerByteFallback, has_bytes ? 1 : 0);
  // SentencePiece finds its special ids by piece name; ids are written too
  // (negative ones as protobuf's 64-bit two's complement).
  int unk = v.unk_id;
  for (size_t id = 0; unk < 0 && id < v.tokens.size(); ++id) {
    if (TypeOf(v, id) == GgufTokenType::kUnknown) unk = static_cast<int>(id);
  }
  for (auto [field, id] : {std::pair{sp::kTrainerUnkId, unk}, std::pair{sp::kTrainerBosId, v.bos_id},
                           std::pair{sp::kTrainerEosId, v.eos_id}, std::pair{sp::kTrainerPadId, -1}}) {
    trainer.Varint(field, static_cast<uint64_t>(static_cast<int64_t>(id)));
  }
  trainer.Bytes(sp::kTrainerUnkPiece, piece_or_default(unk, "<unk>"));
  trainer.Bytes(sp::kTrainerBosPiece, piece_or_default(v.bos_id, "<s>"));
  trainer.Bytes(sp::kTrainerEosPiece, piece_or_default(v.eos_id, "</s>"));
  ProtoWriter normalizer;
  normalizer.Bytes(sp::kNormName, v.precompiled_charsmap.empty() ? "identity" : "precompiled (tokenizer.ggml)");
  if (!v.precompiled_charsmap.empty()) normalizer.Bytes(sp::kNormPrecompiledCharsmap, v.precompiled_charsmap);
  normalizer.Varint(sp::kNormAddDummyPrefix, v.add_space_prefix ? 1 : 0);
  normalizer.Varint(sp::kNormRemoveExtraWhitespaces, v.remove_extra_whitespaces ? 1 : 0);
  normalizer.Varint(sp::kNormEscapeWhitespaces, 1);
  model.Bytes(sp::kModelTrainerSpec, trainer.str());
  model.Bytes(sp::kModelNormalizerSpec, normalizer.str());
  return model.str();
}

// Split regexes by tokenizer.ggml.pre name, as llama.cpp's llama-vocab.cpp
// and the models' tokenizer.json spell them.
const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kGpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// A tokenizer.json (and tokenizer_config.json) equivalent to the GGUF
// byte-level vocabulary, for the existing implementation to run.
Result<std::unique_ptr<Tokenizer>> ByteLevelTokenizer(const GgufVocab& v, const std::string& source) {
  using nlohmann::json;
  const char* regex = nullptr;
  bool ignore_merges = false;
  if (v.pre == "llama-bpe" || v.pre == "llama3" || v.pre == "llama-v3") {
    regex = kLlama3Regex;
    ignore_merges = true;  // llama.cpp and tokenizers both skip merges for whole-vocabulary words here
  } else if (v.pre.empty() || v.pre == "default" || v.pre == "gpt-2") {
    regex = kGpt2Regex;
  } else {
    return Unimplemented(source + ": tokenizer.ggml.pre '" + PrintableName(v.pre) + "' is not supported (supported: " +
                         kSupportedGgufPreList + ")");
  }
  json vocab = json::object();
  json added = json::array();
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const GgufTokenType type = TypeOf(v, id);
    // Control and user-defined tokens are matched whole in the text, as
    // llama.cpp and tokenizers' added_tokens are.
    if (type == GgufTokenType::kControl || type == GgufTokenType::kUserDefined) {
      added.push_back({{"id", id}, {"content", v.tokens[id]}, {"special", type == GgufTokenType::kControl}});
    } else {
      vocab[v.tokens[id]] = id;
    }
  }
  json merges = json::array();
  for (size_t k = 0; k < v.merges.size(); ++k) {
    const std::string& m = v.merges[k];
    if (m.size() < 3 || m.find(' ', 1) == std::string::npos) {  // checked here: the message shows it escaped
      return DataLoss(source + ": tokenizer.ggml.merges[" + std::to_string(k) + "] '" + PrintableName(m) +
                      "' is not 'left right'");
    }
    merges.push_back(m);
  }
  json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", ignore_merges}}},
            {"added_tokens", added},
            {"pre_tokenizer",
             {{"type", "Sequence"},
              {"pretokenizers",
               json::array({{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
            {"decoder", {{"type", "ByteLevel"}}}};
  // BOS/EOS and add_bos are applied by GgufTokenizer from the metadata.
  json cfg = {{"add_bos_token", false}};
  std::string text;
  try {
    text = j.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception&) {  // a token that is not valid UTF-8
    return DataLoss(source + ": a token of tokenizer.ggml.tokens is not valid UTF-8 (a byte-level vocabulary never has one)");
  }
  return ParseHfTokenizer(text, cfg.dump(), source + " (tokenizer.ggml, " + (v.pre.empty() ? "default" : v.pre) + ")");
}

// BOS/EOS and add_bos as the GGUF metadata says, around the tokenizer that
// does the splitting.
class GgufTokenizer final : public Tokenizer {
 public:
  GgufTokenizer(std::unique_ptr<Tokenizer> inner, const GgufVocab& v, std::string description)
      : inner_(std::move(inner)), bos_id_(v.bos_id), eos_id_(v.eos_id), add_bos_(v.add_bos),
        description_(std::move(description)) {}
  Result<std::vector<int32_t>> Encode(const std::string& text, bool add_bos) const override {
    LLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, inner_->Encode(text, false));
    if (add_bos && add_bos_ && bos_id_ >= 0) ids.insert(ids.begin(), bos_id_);
    return ids;
  }
  std::string Decode(const std::vector<int32_t>& ids) const override { return inner_->Decode(ids); }
  int vocab_size() const override { return inner_->vocab_size(); }
  int bos_id() const override { return bos_id_; }
  std::vector<int> eos_ids() const override { return eos_id_ >= 0 ? std::vector<int>{eos_id_} : std::vector<int>{}; }
  std::string description() const override { return description_; }
  size_t MinTokens(const std::string& text) const override { return inner_->MinTokens(text); }

 private:
  std::unique_ptr<Tokenizer> inner_;
  int bos_id_, eos_id_;
  bool add_bos_;
  std::string description_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> MakeGgufTokenizer(const GgufVocab& v, const std::string& source) {
  if (v.tokens.empty()) return DataLoss(source + ": tokenizer.ggml.tokens is empty");
  if (!v.scores.empty() && v.scores.size() != v.tokens.size()) {
    return DataLoss(source + ": tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries for " +
                    std::to_string(v.tokens.size()) + " tokens");
  }
  if (!v.token_types.empty() && v.token_types.size() != v.tokens.size()) {
    return DataLoss(source + ": tokenizer.ggml.token_type has " + std::to_string(v.token_types.size()) +
                    " entries for " + std::to_string(v.tokens.size()) + " tokens");
  }
  const int n = static_cast<int>(v.tokens.size());
  for (auto [what, id] : {std::pair{"bos", v.bos_id}, std::pair{"eos", v.eos_id}, std::pair{"unknown", v.unk_id}}) {
    if (id >= n) {
      return DataLoss(source + ": tokenizer.ggml." + what + "_token_id " + std::to_string(id) + " is not below the " +
                      std::to_string(n) + " tokens");
    }
  }
  std::unique_ptr<Tokenizer> inner;
  std::string kind;
  if (v.model == "llama") {
    LLM_ASSIGN_OR_RETURN(std::string proto, SentencePieceModelProto(v, source));
    LLM_ASSIGN_OR_RETURN(inner, MakeSentencePieceTokenizer(proto, source + " (tokenizer.ggml)"));
    kind = "sentencepiece";
  } else if (v.model == "gpt2") {
    LLM_ASSIGN_OR_RETURN(inner, ByteLevelTokenizer(v, source));
    kind = "byte-level BPE, pre " + (v.pre.empty() ? std::string("default") : v.pre);
  } else {
    return Unimplemented(source + ": tokenizer.ggml.model '" + PrintableName(v.model) + "' is not supported (supported: llama, gpt2)");
  }
  return std::unique_ptr<Tokenizer>(new GgufTokenizer(std::move(inner), v, "gguf (" + kind + "):" + source));
}

}  // namespace llm
