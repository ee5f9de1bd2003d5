// tokenizer.json (both Llama flavours) against ids recorded from Hugging Face
// `tokenizers` by tools/make_tokenizer_fixtures.py, and tokenizer.model against
// the Python SentencePiece library on the same strings.
#include "tokenizer/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace llm {
namespace {

std::string Dir(const std::string& flavour) { return std::string(LLM_FIXTURES_DIR) + "/tokenizers/" + flavour; }

nlohmann::json Reference() {
  std::ifstream in(std::string(LLM_FIXTURES_DIR) + "/tokenizers/reference.json");
  auto j = nlohmann::json::parse(in);
  if (j.value("magic", "") != "llama-speedbench-tokenizer-fixture" || j.value("version", 0) != 1) {
    throw std::runtime_error("tokenizer reference: wrong magic/version; HINT: re-run tools/make_tokenizer_fixtures.py");
  }
  return j;
}

class HfTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfTokenizerTest, EncodeMatchesHuggingFaceIdForId) {
  auto tok = LoadHfTokenizer(Dir(GetParam()));
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto ref = Reference();
  for (const auto& c : ref[GetParam()]) {
    const std::string text = c["text"];
    auto ids = tok.value()->Encode(text, /*add_bos=*/false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids.value(), c["ids"].get<std::vector<int32_t>>()) << "'" << text << "'";
    if (c.contains("ids_with_bos")) {
      EXPECT_EQ(tok.value()->Encode(text, true).value(), c["ids_with_bos"].get<std::vector<int32_t>>()) << text;
    }
  }
}

TEST_P(HfTokenizerTest, DecodeMatchesAndStreamingEqualsBatch) {
  auto tok = LoadHfTokenizer(Dir(GetParam()));
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  for (const auto& c : Reference()[GetParam()]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const std::string batch = tok.value()->Decode(ids);
    EXPECT_EQ(batch, c["decoded"].get<std::string>()) << c["text"];
    StreamDecoder stream(tok.value().get());
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = stream.Push(id);
      EXPECT_EQ(CompleteUtf8Prefix(piece), piece.size()) << "broken UTF-8 in a streamed piece of " << c["text"];
      streamed += piece;
    }
    streamed += stream.Flush();
    EXPECT_EQ(streamed, batch) << c["text"];
  }
}

TEST_P(HfTokenizerTest, KoreanAndEmojiRoundTrip) {
  auto tok = LoadHfTokenizer(Dir(GetParam()));
  ASSERT_TRUE(tok.ok());
  for (const std::string s : {"안녕하세요, 세계! 한국어 텍스트입니다.", "emoji 😀🎉👍🏽 and 🇰🇷", "새 문장 😀"}) {
    EXPECT_EQ(tok.value()->Decode(tok.value()->Encode(s, false).value()), s);
  }
}

INSTANTIATE_TEST_SUITE_P(Flavours, HfTokenizerTest, ::testing::Values("llama2_style", "llama3_style"));

TEST(SentencePieceModel, MatchesPythonSentencePiece) {
  auto tok = LoadSentencePieceTokenizer(Dir("llama2_style") + "/tokenizer.model");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  for (const auto& c : Reference()["llama2_style"]) {
    EXPECT_EQ(tok.value()->Encode(c["text"].get<std::string>(), false).value(),
              c["sentencepiece_ids"].get<std::vector<int32_t>>())
        << c["text"];
  }
}

TEST(TokenizerChoice, PrefersTokenizerJsonAndSaysSo) {
  auto tok = LoadTokenizer(Dir("llama2_style"));
  ASSERT_TRUE(tok.ok());
  EXPECT_NE(tok.value()->description().find("tokenizer.json"), std::string::npos) << tok.value()->description();
  EXPECT_EQ(tok.value()->Encode("hi", true).value().front(), 1);  // BOS <s>
  auto l3 = LoadTokenizer(Dir("llama3_style"));
  ASSERT_TRUE(l3.ok());
  EXPECT_EQ(l3.value()->eos_ids(), std::vector<int>{2});  // <|eot_id|> from tokenizer_config.json
}

TEST(HfTokenizerErrors, RefusesOtherModelsAndCorruptFiles) {
  auto wp = ParseHfTokenizer(R"({"model":{"type":"WordPiece","vocab":{"a":0}}})", "", "x/tokenizer.json");
  ASSERT_FALSE(wp.ok());
  EXPECT_NE(wp.status().message().find("WordPiece"), std::string::npos);
  auto uni = ParseHfTokenizer(R"({"model":{"type":"Unigram","vocab":[["a",0.0]]}})", "", "x/tokenizer.json");
  EXPECT_EQ(uni.status().code(), StatusCode::kUnimplemented);
  auto bad = ParseHfTokenizer("{\"model\": {\"type\": \"BPE\", \"vocab\": {", "", "x/tokenizer.json");
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  auto wrong = ParseHfTokenizer(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[1]}})", "", "x/tokenizer.json");
  EXPECT_FALSE(wrong.ok());
  auto norm = ParseHfTokenizer(R"({"normalizer":{"type":"NFKC"},"model":{"type":"BPE","vocab":{"a":0}}})", "", "x");
  EXPECT_NE(norm.status().message().find("NFKC"), std::string::npos);
}

}  // namespace
}  // namespace llm
