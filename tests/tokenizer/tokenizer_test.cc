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

// MinTokens lets a prompt that cannot fit be refused before tokenizing (a 52 MB
// line took 86 s to tokenize before its refusal): it must never exceed the real
// count, on any tokenizer, whatever normalization, casing, unknown characters,
// combining marks or special-token texts the string holds; and it must be large
// for large ordinary text.
TEST(Tokenizers, MinTokensIsALowerBoundAndBitesOnLargeText) {
  std::vector<std::unique_ptr<Tokenizer>> toks;
  toks.push_back(MakeByteTokenizer());
  for (const std::string& dir : {testing::FixtureModel("mha_tied_f32"), testing::FixturesDir() + "/tokenizers/llama2_style",
                                testing::FixturesDir() + "/tokenizers/llama3_style"}) {
    auto t = LoadTokenizer(dir);
    ASSERT_TRUE(t.ok()) << dir << ": " << t.status().message();
    toks.push_back(std::move(t.value()));
  }
  const std::vector<std::string> hard = {
      "", "a", "once upon a time", "ONCE UPON A TIME", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
      "e\u0301e\u0301e\u0301", "e\xcc\x81" "e\xcc\x81" "e\xcc\x81" "e\xcc\x81" "e\xcc\x81", "\xef\xbc\xa1\xef\xbc\xa1\xef\xbc\xa1",
      "          spaces          everywhere          ", "<s><s><s></s>", "<|begin_of_text|><|begin_of_text|><|eot_id|>",
      "1234567890123456789012345678901234567890", "tokens per second tokens per second tokens per second",
      "\x01\x02\x03" "abc\x7f", "caf\xc3\xa9 \xed\x95\x9c\xea\xb5\xad", "the_quick-brown.fox/jumps\\over"};
  for (const auto& tok : toks) {
    for (const std::string& text : hard) {
      auto ids = tok->Encode(text, /*add_bos=*/false);
      ASSERT_TRUE(ids.ok());
      EXPECT_LE(tok->MinTokens(text), ids->size()) << tok->description() << ": '" << text << "'";
    }
    std::string big;
    while (big.size() < (1u << 20)) big += "once upon a time the quick brown fox jumps over the lazy dog ";
    EXPECT_GT(tok->MinTokens(big), 4096u) << tok->description() << ": no bound on 1 MB of ordinary text";
  }
}

TEST(Utf8, CompletePrefix) {
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xed\x95"), 1u);          // 3-byte char missing its last byte
  EXPECT_EQ(CompleteUtf8Prefix("a\xed\x95\x9c"), 4u);
  EXPECT_EQ(CompleteUtf8Prefix("\xf0\x9f\x98"), 0u);
}

}  // namespace
}  // namespace llm
