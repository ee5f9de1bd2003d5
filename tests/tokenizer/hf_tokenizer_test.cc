// tokenizer.json (both Llama flavours) against ids recorded from Hugging Face
// `tokenizers` by tools/make_tokenizer_fixtures.py, and tokenizer.model against
// the Python SentencePiece library on the same strings.
#include "tokenizer/hf_tokenizer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
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
  const auto ref = Reference();  // kept alive: a range-for over Reference()[...] would read a dead temporary
  for (const auto& c : ref[GetParam()]) {
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
  const auto ref = Reference();
  for (const auto& c : ref["llama2_style"]) {
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

// A directory with the llama2_style tokenizer.json and the given
// tokenizer_config.json text.
std::string WithConfig(const testing::TempDir& tmp, const std::string& config) {
  const std::string dir = tmp.path();
  EXPECT_EQ(std::system(("cp " + Dir("llama2_style") + "/tokenizer.json " + dir).c_str()), 0);
  testing::WriteFile(dir + "/tokenizer_config.json", config);
  return dir;
}

TEST(HfTokenizerErrors, ACorruptOrWrongTokenizerConfigIsAnErrorNotALostBos) {
  for (const char* bad : {"{\"add_bos_token\": true, \"bos_token\": \"<s>\"", "", "[1, 2]", "\"<s>\"",
                          "{\"bos_token\": 7}", "{\"add_bos_token\": \"yes\"}"}) {
    testing::TempDir tmp;
    auto tok = LoadHfTokenizer(WithConfig(tmp, bad));
    ASSERT_FALSE(tok.ok()) << "accepted tokenizer_config.json: " << bad;
    EXPECT_EQ(tok.status().code(), StatusCode::kDataLoss) << tok.status().message();
    EXPECT_NE(tok.status().message().find("tokenizer_config.json"), std::string::npos) << tok.status().message();
  }
  testing::TempDir tmp;
  auto unknown = LoadHfTokenizer(WithConfig(tmp, R"({"add_bos_token": true, "bos_token": "<bos>"})"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("bos_token '<bos>'"), std::string::npos) << unknown.status().message();
  // Valid forms still load: a string, an AddedToken object, null.
  for (const char* good : {R"({"bos_token": "<s>"})", R"({"bos_token": {"content": "<s>", "special": true}})"}) {
    testing::TempDir t;
    auto tok = LoadHfTokenizer(WithConfig(t, good));
    ASSERT_TRUE(tok.ok()) << good << ": " << tok.status().message();
    EXPECT_EQ(tok.value()->Encode("hi", true).value().front(), 1) << good;
  }
  testing::TempDir t;
  EXPECT_TRUE(LoadHfTokenizer(WithConfig(t, R"({"bos_token": null, "eos_token": "</s>"})")).ok());
}

TEST(TokenizerFiles, AFifoOrDirectoryIsAClearErrorNotAHang) {
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    testing::TempDir tmp;
    ASSERT_EQ(std::system(("cp " + Dir("llama2_style") + "/tokenizer.json " + tmp.path()).c_str()), 0);
    std::remove((tmp.path() + "/" + name).c_str());
    ASSERT_EQ(::mkfifo((tmp.path() + "/" + name).c_str(), 0644), 0);
    ::alarm(30);  // a blocking open would hang: SIGALRM fails the test instead
    auto tok = LoadTokenizer(tmp.path());
    ::alarm(0);
    ASSERT_FALSE(tok.ok()) << name;
    EXPECT_NE(tok.status().message().find(std::string(name) + ": is a FIFO"), std::string::npos)
        << tok.status().message();
  }
  testing::TempDir tmp;
  ASSERT_EQ(::mkdir((tmp.path() + "/tokenizer.model").c_str(), 0755), 0);
  auto sp = LoadTokenizer(tmp.path());
  ASSERT_FALSE(sp.ok());
  EXPECT_NE(sp.status().message().find("tokenizer.model: is a directory"), std::string::npos) << sp.status().message();
}

TEST(TokenizerDecode, IdsPastTheVocabularyAreSkippedNotTheWholeText) {
  // Checkpoints pad the embedding past the tokenizer; a sampled padding id
  // must not blank the text of everything else, in either tokenizer.
  auto sp = LoadSentencePieceTokenizer(Dir("llama2_style") + "/tokenizer.model");
  auto hf = LoadHfTokenizer(Dir("llama2_style"));
  ASSERT_TRUE(sp.ok() && hf.ok());
  for (const auto* tok : {sp.value().get(), hf.value().get()}) {
    std::vector<int32_t> ids = tok->Encode("hello world", false).value();
    const std::string text = tok->Decode(ids);
    ASSERT_EQ(text, "hello world") << tok->description();
    ids.insert(ids.begin() + 1, tok->vocab_size() + 5);
    ids.push_back(-1);
    EXPECT_EQ(tok->Decode(ids), text) << tok->description();
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.Push(id);
    EXPECT_EQ(streamed + stream.Flush(), text) << tok->description();
  }
}

}  // namespace
}  // namespace llm
