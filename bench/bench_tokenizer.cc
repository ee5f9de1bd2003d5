// Tokenizer speed: loading a tokenizer.json with a Llama-3-sized vocabulary
// (128,256 tokens, ~128k merges) and encoding 1 MB of mixed text with it.
// The tokenizer is synthetic (built here, byte-level, Llama 3's split regex):
// real Llama 3 files cannot be downloaded on the build machines, and what is
// measured (JSON parse, hash tables, BPE loop, PCRE2 split) depends on the
// sizes, not on which merges were learned.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unordered_set>

#include "tokenizer/hf_tokenizer.h"

namespace llm {
namespace {

const std::string& MixedText() {
  static std::string text;
  if (text.empty()) {
    const std::string para =
        "The quick brown fox jumps over the lazy dog; engineers measure 1234567 tokens per second. "
        "안녕하세요, 세계! 한국어 텍스트입니다. 日本語のテキスト。中文文本测试。 emoji 😀🎉 "
        "def f(x): return x ** 2  # code\n\tindented line with numbers 3.14159 and ids 0xDEADBEEF\n";
    while (text.size() < (1u << 20)) text += para;
  }
  return text;
}

const std::string& BigTokenizerJson() {
  static std::string json_text;
  if (!json_text.empty()) return json_text;
  nlohmann::json vocab = nlohmann::json::object(), merges = nlohmann::json::array();
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(ByteLevelChar(static_cast<uint8_t>(b)));
    vocab[tokens.back()] = b;
  }
  // Merges of frequent pairs of the text first (so encoding does real work),
  // then random pairs up to Llama 3's vocabulary size.
  std::mt19937 rng(1);
  std::unordered_set<std::string> seen(tokens.begin(), tokens.end());
  const std::string& text = MixedText();
  auto add = [&](std::string a, std::string b) {  // by value: `tokens` grows below
    const std::string t = a + b;
    if (!seen.insert(t).second) return;
    vocab[t] = static_cast<int>(tokens.size());
    tokens.push_back(t);
    merges.push_back(a + " " + b);
  };
  for (size_t i = 0; i + 1 < 4096; ++i) add(ByteLevelChar(static_cast<uint8_t>(text[i])), ByteLevelChar(static_cast<uint8_t>(text[i + 1])));
  while (tokens.size() < 128000) {
    add(tokens[rng() % tokens.size()], tokens[rng() % std::min<size_t>(2000, tokens.size())]);
  }
  nlohmann::json added = nlohmann::json::array();
  for (int i = 0; i < 256; ++i) {
    added.push_back({{"id", 128000 + i}, {"content", "<|reserved_special_token_" + std::to_string(i) + "|>"},
                     {"special", true}});
  }
  const nlohmann::json j = {
      {"added_tokens", added},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern", {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", vocab}, {"merges", merges}}}};
  json_text = j.dump();
  return json_text;
}

void BM_LoadTokenizerJson_128k(benchmark::State& state) {
  const std::string& text = BigTokenizerJson();
  for (auto _ : state) {
    auto tok = ParseHfTokenizer(text, "", "synthetic");
    if (!tok.ok()) state.SkipWithError(tok.status().message().c_str());
    benchmark::DoNotOptimize(tok);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.counters["file_MB"] = text.size() / 1e6;
}

void BM_Encode_1MB_128k(benchmark::State& state) {
  auto tok = ParseHfTokenizer(BigTokenizerJson(), "", "synthetic");
  const std::string& text = MixedText();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.value()->Encode(text, false);
    tokens = ids.value().size();
    benchmark::DoNotOptimize(ids);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

BENCHMARK(BM_LoadTokenizerJson_128k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Encode_1MB_128k)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace llm

BENCHMARK_MAIN();
