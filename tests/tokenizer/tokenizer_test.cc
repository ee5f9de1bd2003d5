// Tokenizers against ids recorded from the Python sentencepiece library
// (tools/make_fixtures.py), and streaming decode that never splits UTF-8.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace llm {
namespace {

TEST(SentencePiece, MatchesPythonSentencePieceIds) {
  const auto ref = testing::LoadReference("mha_tied_f32");
  auto tok = LoadTokenizer(testing::FixtureModel("mha_tied_f32"));
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  for (const auto& c : ref.meta["tokenizer_cases"]) {
    auto ids = tok.value()->Encode(c["text"].get<std::string>(), /*add_bos=*/false);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids.value(), c["ids"].get<std::vector<int32_t>>()) << c["text"];
  }
  auto with_bos = tok.value()->Encode(ref.meta["cli"]["text"].get<std::string>(), true);
  EXPECT_EQ(with_bos.value(), ref.meta["cli"]["prompt_ids"].get<std::vector<int32_t>>());
}

TEST(SentencePiece, CorruptModelFileIsAnError) {
  testing::TempDir dir;
  testing::WriteFile(dir.path() + "/tokenizer.model", "not a protobuf");
  auto tok = LoadTokenizer(dir.path());
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("tokenizer.model"), std::string::npos);
}

TEST(ByteTokenizer, RoundTripsUtf8) {
  auto tok = MakeByteTokenizer();
  const std::string text = "Hello, 한국어 😀!";
  auto ids = tok->Encode(text, true);
  EXPECT_EQ(ids.value()[0], 1);
  EXPECT_EQ(ids.value().size(), text.size() + 1);
  EXPECT_EQ(tok->Decode(ids.value()), text);
}

TEST(StreamDecoder, HoldsIncompleteCharactersAndEqualsBatchDecode) {
  auto tok = MakeByteTokenizer();
  const std::string text = "a한😀b";
  auto ids = tok->Encode(text, false).value();
  StreamDecoder dec(tok.get());
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = dec.Push(id);
    EXPECT_EQ(CompleteUtf8Prefix(piece), piece.size()) << "piece ends inside a character";
    streamed += piece;
  }
  streamed += dec.Flush();
  EXPECT_EQ(streamed, text);
}

TEST(Utf8, CompletePrefix) {
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xed\x95"), 1u);          // 3-byte char missing its last byte
  EXPECT_EQ(CompleteUtf8Prefix("a\xed\x95\x9c"), 4u);
  EXPECT_EQ(CompleteUtf8Prefix("\xf0\x9f\x98"), 0u);
}

}  // namespace
}  // namespace llm
