// The tokenizer a GGUF file carries (fixtures written by
// tools/make_gguf_model_fixtures.py from tests/fixtures/tokenizers/ as
// llama.cpp's converter writes them) gives the ids of the safetensors model's
// own tokenizer on every string of reference.json: tokenizer.model's
// (SentencePiece) ids for the "llama" vocabulary, tokenizer.json's for the
// "gpt2" one.
#include "tokenizer/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "model/gguf_model.h"
#include "test_util.h"

namespace llm {
namespace {

std::string Fixtures() { return testing::FixturesDir(); }

nlohmann::json Reference() {
  std::ifstream in(Fixtures() + "/tokenizers/reference.json");
  return nlohmann::json::parse(in);
}

std::unique_ptr<Tokenizer> FromGguf(const std::string& name) {
  const std::string path = Fixtures() + "/gguf/" + name;
  auto file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status().message();
  if (!file.ok()) return nullptr;
  auto vocab = GgufVocabOf(file.value()->header(), path);
  EXPECT_TRUE(vocab.ok()) << vocab.status().message();
  if (!vocab.ok()) return nullptr;
  auto tok = MakeGgufTokenizer(vocab.value(), path);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  return tok.ok() ? std::move(tok.value()) : nullptr;
}

TEST(GgufTokenizer, LlamaVocabularyGivesTheSentencePieceIdsOfTokenizerModel) {
  auto tok = FromGguf("tokenizer_llama2_style.gguf");
  ASSERT_TRUE(tok);
  auto sp = LoadSentencePieceTokenizer(Fixtures() + "/tokenizers/llama2_style/tokenizer.model");
  ASSERT_TRUE(sp.ok()) << sp.status().message();
  EXPECT_NE(tok->description().find("sentencepiece"), std::string::npos) << tok->description();
  EXPECT_EQ(tok->vocab_size(), sp.value()->vocab_size());
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_ids(), std::vector<int>{2});
  const auto ref = Reference();
  ASSERT_GE(ref["llama2_style"].size(), 20u);
  for (const auto& c : ref["llama2_style"]) {
    const std::string text = c["text"];
    const auto want = c["sentencepiece_ids"].get<std::vector<int32_t>>();
    auto ids = tok->Encode(text, false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids.value(), want) << "'" << text << "'";
    std::vector<int32_t> with_bos = {1};
    with_bos.insert(with_bos.end(), want.begin(), want.end());
    EXPECT_EQ(tok->Encode(text, true).value(), with_bos) << "'" << text << "'";
    EXPECT_EQ(tok->Decode(want), sp.value()->Decode(want)) << "'" << text << "'";
  }
}

TEST(GgufTokenizer, Gpt2LlamaBpeVocabularyGivesTheIdsOfTokenizerJson) {
  auto tok = FromGguf("tokenizer_llama3_style.gguf");
  ASSERT_TRUE(tok);
  EXPECT_NE(tok->description().find("llama-bpe"), std::string::npos) << tok->description();
  EXPECT_EQ(tok->bos_id(), 0);                  // <|begin_of_text|>
  EXPECT_EQ(tok->eos_ids(), std::vector<int>{2});  // <|eot_id|> of tokenizer_config.json
  const auto ref = Reference();
  ASSERT_GE(ref["llama3_style"].size(), 20u);
  for (const auto& c : ref["llama3_style"]) {
    const std::string text = c["text"];
    auto ids = tok->Encode(text, false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids.value(), c["ids"].get<std::vector<int32_t>>()) << "'" << text << "'";
    EXPECT_EQ(tok->Encode(text, true).value(), c["ids_with_bos"].get<std::vector<int32_t>>()) << "'" << text << "'";
    EXPECT_EQ(tok->Decode(c["ids"].get<std::vector<int32_t>>()), c["decoded"].get<std::string>()) << "'" << text << "'";
  }
}

// A model file with its tokenizer (tokenizer.model converted): the prompt ids
// transformers gave for the fixture's CLI text.
TEST(GgufTokenizer, ModelFileTokenizerMatchesTheCheckpointsTokenizer) {
  auto tok = FromGguf("mha_tied_f32.gguf");
  ASSERT_TRUE(tok);
  std::ifstream in(Fixtures() + "/reference/mha_tied_f32.json");
  const auto meta = nlohmann::json::parse(in);
  EXPECT_EQ(tok->Encode(meta["cli"]["text"].get<std::string>(), true).value(),
            meta["cli"]["prompt_ids"].get<std::vector<int32_t>>());
  for (const auto& c : meta["tokenizer_cases"]) {
    EXPECT_EQ(tok->Encode(c["text"].get<std::string>(), false).value(), c["ids"].get<std::vector<int32_t>>())
        << c["text"];
  }
}

GgufVocab TinyVocab() {
  GgufVocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "a", "b"};
  v.token_types = {2, 3, 3, 1, 1};
  v.scores = {0, 0, 0, -1, -2};
  v.bos_id = 1;
  v.eos_id = 2;
  return v;
}

TEST(GgufTokenizer, RefusesUnknownModelsAndPreNamesByName) {
  GgufVocab v = TinyVocab();
  v.model = "bert";
  auto bert = MakeGgufTokenizer(v, "x.gguf");
  ASSERT_FALSE(bert.ok());
  EXPECT_EQ(bert.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(bert.status().message().find("'bert'"), std::string::npos) << bert.status().message();
  v.model = "gpt2";
  v.pre = "qwen2";
  auto qwen = MakeGgufTokenizer(v, "x.gguf");
  ASSERT_FALSE(qwen.ok());
  EXPECT_NE(qwen.status().message().find("'qwen2'"), std::string::npos) << qwen.status().message();
  EXPECT_NE(qwen.status().message().find("llama-bpe"), std::string::npos) << qwen.status().message();
}

TEST(GgufTokenizer, NamesFromTheFileStayOnOneLine) {
  GgufVocab v = TinyVocab();
  v.model = "llama\nerror: forged";
  auto r = MakeGgufTokenizer(v, "x.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("llama\\x0aerror"), std::string::npos) << r.status().message();
  v.model = "gpt2";
  v.merges = {"a b", "ab\n"};
  auto m = MakeGgufTokenizer(v, "x.gguf");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message().find('\n'), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("merges[1]"), std::string::npos) << m.status().message();
}

TEST(GgufTokenizer, RefusesInconsistentVocabularies) {
  GgufVocab v = TinyVocab();
  v.model = "llama";
  v.scores.pop_back();
  EXPECT_EQ(MakeGgufTokenizer(v, "x.gguf").status().code(), StatusCode::kDataLoss);
  v = TinyVocab();
  v.model = "llama";
  v.bos_id = 5;
  auto bos = MakeGgufTokenizer(v, "x.gguf");
  ASSERT_FALSE(bos.ok());
  EXPECT_NE(bos.status().message().find("bos_token_id 5"), std::string::npos) << bos.status().message();
  v = TinyVocab();
  v.model = "llama";
  v.token_types[0] = 1;  // no UNKNOWN token
  EXPECT_FALSE(MakeGgufTokenizer(v, "x.gguf").ok());
  v = TinyVocab();
  v.model = "llama";
  v.token_types[3] = 9;
  EXPECT_FALSE(MakeGgufTokenizer(v, "x.gguf").ok());
  v = TinyVocab();
  v.model = "llama";
  v.add_bos = false;
  auto no_bos = MakeGgufTokenizer(v, "x.gguf");
  ASSERT_TRUE(no_bos.ok()) << no_bos.status().message();
  EXPECT_EQ(no_bos.value()->Encode("ab", true).value().front() == 1, false);  // add_bos_token false is obeyed
}

}  // namespace
}  // namespace llm
