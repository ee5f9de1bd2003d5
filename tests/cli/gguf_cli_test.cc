// speed_benchmark on GGUF files: a converted fixture runs with its own
// tokenizer and records what it loaded; every damaged or unsupported file
// (made here by editing the bytes of a good one) is one `error:` line and
// exit 2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "io/gguf.h"
#include "test_util.h"

namespace llm {
namespace {

using testing::CliRun;
using testing::TempDir;

std::string GgufFixture(const std::string& name) { return testing::FixturesDir() + "/gguf/" + name; }

CliRun RunCli(const std::string& args) {
  return testing::RunShell("timeout 60 " + std::string(LLM_SPEED_BENCHMARK) + " " + args);
}

const char* kQuick = " --device cpu --dtype float32 --max-gen-len 4 --warmup 0 --repetitions 1 --quiet";

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// Byte position just past the name of tensor info `name` (u64 length + bytes):
// then come u32 n_dims, u64 dims[n_dims], u32 type, u64 offset.
size_t AfterTensorName(const std::string& file, const std::string& name) {
  std::string needle(8, '\0');
  const uint64_t n = name.size();
  std::memcpy(needle.data(), &n, 8);
  needle += name;
  const size_t at = file.find(needle);
  EXPECT_NE(at, std::string::npos) << name;
  return at == std::string::npos ? 0 : at + needle.size();
}

template <class T>
void Put(std::string* file, size_t pos, T v) {
  std::memcpy(file->data() + pos, &v, sizeof(T));
}

void ExpectOneErrorLine(const CliRun& r, const std::string& must_mention) {
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("error:", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find(must_mention), std::string::npos) << "should mention '" << must_mention << "': " << r.out;
}

class GgufCliTest : public ::testing::Test {
 protected:
  // A copy of mha_tied_f32.gguf edited by `edit`, run with a text prompt.
  template <class Edit>
  CliRun RunEdited(Edit edit) {
    std::string bytes = ReadBytes(GgufFixture("mha_tied_f32.gguf"));
    edit(&bytes);
    const std::string path = tmp_.path() + "/model.gguf";
    WriteBytes(path, bytes);
    return RunCli("--model-path " + path + " --prompt hi --output-dir " + tmp_.path() + "/out" + kQuick);
  }
  TempDir tmp_;
};

TEST_F(GgufCliTest, ConvertedFixtureRunsWithItsOwnTokenizerAndRecordsWhatItLoaded) {
  std::ifstream in(testing::FixturesDir() + "/reference/mha_tied_f32.json");
  const auto meta = nlohmann::json::parse(in);
  const std::string text = meta["cli"]["text"];
  for (const std::string name : {"mha_tied_f32.gguf", "mha_tied_q8_0.gguf"}) {
    const CliRun r = RunCli("--model-path " + GgufFixture(name) + " --prompt '" + text + "' --ignore-eos --output-dir " +
                            tmp_.path() + kQuick);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(ReadBytes(tmp_.path() + "/benchmark_results.json"));
    EXPECT_EQ(j["model"]["format"], "gguf");
    EXPECT_EQ(j["model"]["source"], GgufFixture(name));
    EXPECT_NE(j["model"]["tokenizer"].get<std::string>().find("gguf (sentencepiece)"), std::string::npos);
    EXPECT_EQ(j["runs"][0]["prompt_token_ids"], meta["cli"]["prompt_ids"]) << name;
    if (name == "mha_tied_f32.gguf") {
      EXPECT_EQ(j["model"]["tensor_types"], (nlohmann::json{{"F32", 20}}));
      EXPECT_FALSE(j["model"].contains("load_note"));
      // transformers' greedy tokens of the same model and prompt.
      const auto greedy = meta["cli"]["greedy_ids"].get<std::vector<int>>();
      EXPECT_EQ(j["runs"][0]["generated_token_ids"].get<std::vector<int>>(),
                std::vector<int>(greedy.begin(), greedy.begin() + 4));
    } else {
      EXPECT_EQ(j["model"]["tensor_types"], (nlohmann::json{{"F32", 5}, {"Q8_0", 15}}));
      EXPECT_NE(j["model"]["load_note"].get<std::string>().find("used as stored"), std::string::npos);
    }
  }
  // The safetensors run says so too (new key, old keys unchanged).
  const CliRun st = RunCli("--model-path " + testing::FixtureModel("mha_tied_f32") + " --prompt hi --output-dir " +
                           tmp_.path() + kQuick);
  ASSERT_EQ(st.exit_code, 0) << st.out;
  EXPECT_EQ(nlohmann::json::parse(ReadBytes(tmp_.path() + "/benchmark_results.json"))["model"]["format"], "safetensors");
}

// llama-quantize's Q4_K_M of a Llama with its own vocabulary, end to end from
// text: the file's tokenizer gives SentencePiece's ids, and decode (Q4_K and
// Q6_K kernels, int8 activations) gives transformers' greedy tokens on the
// dequantized weights.
TEST_F(GgufCliTest, LlamaQuantizeQ4_K_MFileRunsFromTextWithItsOwnTokenizer) {
  std::ifstream in(GgufFixture("q4_k_m_llama.greedy.json"));
  const auto ref = nlohmann::json::parse(in);
  const CliRun r = RunCli("--model-path " + GgufFixture("q4_k_m_llama.gguf") + " --prompt '" +
                          ref["text"].get<std::string>() + "' --ignore-eos --output-dir " + tmp_.path() + kQuick);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(ReadBytes(tmp_.path() + "/benchmark_results.json"));
  EXPECT_EQ(j["model"]["tensor_types"], (nlohmann::json{{"F32", 5}, {"Q4_K", 13}, {"Q6_K", 3}}));
  EXPECT_NE(j["model"]["tokenizer"].get<std::string>().find("gguf (sentencepiece)"), std::string::npos);
  EXPECT_EQ(j["runs"][0]["prompt_token_ids"], ref["prompt_ids"]);
  const auto greedy = ref["greedy_ids"].get<std::vector<int>>();
  const auto got = j["runs"][0]["generated_token_ids"].get<std::vector<int>>();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got, std::vector<int>(greedy.begin(), greedy.begin() + got.size()));
  EXPECT_TRUE(j["system"].contains("matmul_q4_k")) << j["system"].dump();
  EXPECT_TRUE(j["system"].contains("matmul_q6_k")) << j["system"].dump();
}

TEST_F(GgufCliTest, ADirectoryWithOneGgufLoadsItAndWithTwoIsRefused) {
  const std::string dir = tmp_.path() + "/dir";
  ASSERT_EQ(std::system(("mkdir -p " + dir + " && cp " + GgufFixture("mha_tied_f32.gguf") + " " + dir).c_str()), 0);
  const CliRun one = RunCli("--model-path " + dir + " --prompt hi --output-dir " + tmp_.path() + "/out" + kQuick);
  EXPECT_EQ(one.exit_code, 0) << one.out;
  ASSERT_EQ(std::system(("cp " + GgufFixture("mha_tied_q8_0.gguf") + " " + dir).c_str()), 0);
  ExpectOneErrorLine(RunCli("--model-path " + dir + " --prompt hi" + kQuick), "holds 2 .gguf files");
}

TEST_F(GgufCliTest, TruncatedFile) {
  ExpectOneErrorLine(RunEdited([](std::string* b) { b->resize(b->size() / 2); }), "truncated");
  ExpectOneErrorLine(RunEdited([](std::string* b) { b->resize(100); }), "truncated");
}

TEST_F(GgufCliTest, LyingTensorOffset) {
  ExpectOneErrorLine(RunEdited([](std::string* b) {
                       const size_t p = AfterTensorName(*b, "blk.1.ffn_up.weight");
                       Put<uint64_t>(b, p + 4 + 2 * 8 + 4, uint64_t{1} << 40);
                     }),
                     "blk.1.ffn_up.weight");
}

TEST_F(GgufCliTest, UnsupportedTensorTypeIsNamedWithTheSupportedList) {
  const CliRun r = RunEdited([](std::string* b) {
    Put<uint32_t>(b, AfterTensorName(*b, "blk.0.attn_q.weight") + 4 + 2 * 8, 16);  // IQ2_XXS
  });
  ExpectOneErrorLine(r, "IQ2_XXS");
  EXPECT_NE(r.out.find("Q4_K"), std::string::npos) << r.out;
}

TEST_F(GgufCliTest, OtherArchitectureIsRefusedByName) {
  ExpectOneErrorLine(RunCli("--model-path " + GgufFixture("qwen2.gguf") + " --prompt hi" + kQuick), "'qwen2'");
}

TEST_F(GgufCliTest, MissingTensor) {
  ExpectOneErrorLine(RunEdited([](std::string* b) {
                       const size_t p = AfterTensorName(*b, "output_norm.weight");
                       (*b)[p - 1] = 'X';  // output_norm.weighX
                     }),
                     "'output_norm.weight' is missing");
}

TEST_F(GgufCliTest, TensorWithWrongShape) {
  ExpectOneErrorLine(RunEdited([](std::string* b) {
                       Put<uint64_t>(b, AfterTensorName(*b, "blk.0.attn_norm.weight") + 4, 32);  // hidden is 64
                     }),
                     "'blk.0.attn_norm.weight' has ggml dims [32]");
}

TEST_F(GgufCliTest, UnknownTokenizerModelIsRefusedByName) {
  ExpectOneErrorLine(RunEdited([](std::string* b) {
                       const std::string key = "tokenizer.ggml.model";
                       const size_t at = b->find(key);
                       ASSERT_NE(at, std::string::npos);
                       // key, u32 type 8 (string), u64 length 5, "llama"
                       b->replace(at + key.size() + 4 + 8, 5, "bertx");
                     }),
                     "'bertx'");
}

TEST_F(GgufCliTest, MemoryBudgetIsCheckedBeforeLoading) {
  ExpectOneErrorLine(RunCli("--model-path " + GgufFixture("mha_tied_f32.gguf") +
                            " --gen-lengths 1 --max-seq-len 2000000000" + kQuick),
                     "available; lower --max-seq-len");
}

// A float32 weight beyond float16's range, loaded with --dtype float16, is
// refused by name (it would become inf), and a NaN as a corrupt file.
TEST_F(GgufCliTest, WeightsThatDoNotFitTheDtypeAreNamed) {
  auto file = GgufFile::Open(GgufFixture("mha_tied_f32.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().message();
  const size_t offset = file.value()->header().FindTensor("blk.1.ffn_down.weight")->offset + 5 * sizeof(float);
  for (const float value : {1e6f, NAN}) {
    std::string bytes = ReadBytes(GgufFixture("mha_tied_f32.gguf"));
    Put<float>(&bytes, offset, value);
    const std::string path = tmp_.path() + "/poisoned.gguf";
    WriteBytes(path, bytes);
    const CliRun r = RunCli("--model-path " + path + " --prompt hi --device cpu --dtype float16 --max-gen-len 1 "
                            "--warmup 0 --repetitions 1 --quiet");
    ExpectOneErrorLine(r, "'blk.1.ffn_down.weight' holds");
    EXPECT_NE(r.out.find(value > 0 ? "beyond the range of float16" : "corrupt"), std::string::npos) << r.out;
  }
}

// A quantized matrix is used as stored, but a NaN block scale (f16 0x7e00)
// is found at load and named, not run into NaN logits.
TEST_F(GgufCliTest, ANanScaleInAQuantizedTensorIsRefusedByName) {
  auto file = GgufFile::Open(GgufFixture("mha_tied_q8_0.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().message();
  const size_t offset = file.value()->header().FindTensor("blk.0.ffn_up.weight")->offset + 3 * 34;  // block 3's d
  std::string bytes = ReadBytes(GgufFixture("mha_tied_q8_0.gguf"));
  Put<uint16_t>(&bytes, offset, 0x7e00);
  const std::string path = tmp_.path() + "/nan_scale.gguf";
  WriteBytes(path, bytes);
  const CliRun r = RunCli("--model-path " + path + " --prompt hi --device cpu --dtype float32 --max-gen-len 1 "
                          "--warmup 0 --repetitions 1 --quiet");
  ExpectOneErrorLine(r, "'blk.0.ffn_up.weight' dequantizes to a non-finite value");
}

TEST_F(GgufCliTest, AFileThatIsNotGgufSaysWhatModelPathTakes) {
  ExpectOneErrorLine(RunCli("--model-path " + testing::FixtureModel("mha_tied_f32") + "/model.safetensors --prompt hi" +
                            kQuick),
                     "takes a checkpoint directory");
  // Named .gguf but not one: the reader says what is wrong.
  WriteBytes(tmp_.path() + "/fake.gguf", "{\"not\": \"gguf\"}");
  ExpectOneErrorLine(RunCli("--model-path " + tmp_.path() + "/fake.gguf --prompt hi" + kQuick), "GGUF");
}

TEST_F(GgufCliTest, SafetensorsFormatFlagWithAGgufFileIsRefused) {
  ExpectOneErrorLine(RunCli("--model-path " + GgufFixture("mha_tied_f32.gguf") + " --load-format safetensors --prompt hi" +
                            kQuick),
                     "--load-format safetensors");
}

}  // namespace
}  // namespace llm
