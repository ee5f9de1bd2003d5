// The safetensors parser and the checkpoint loader on valid, truncated and
// lying files: every failure is a Status naming the file, never a crash.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "model/model_loader.h"
#include "model/weights.h"
#include "test_util.h"

namespace llm {
namespace {

using testing::TempDir;
using testing::WriteFile;

std::string Safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

Status ParseBytes(const std::string& bytes) {
  auto r = ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x.safetensors");
  return r.status();
}

TEST(Safetensors, ParsesValidHeader) {
  const std::string bytes = Safetensors(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})",
      std::string(22, '\0'));
  auto r = ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at("b").dtype, DType::kBF16);
  EXPECT_EQ(r->at("b").nbytes, 6u);
  EXPECT_EQ(r->at("a").shape, (std::vector<int64_t>{2, 2}));
}

struct BadCase {
  const char* what;
  std::string bytes;
  const char* expect_in_message;
};

TEST(Safetensors, RejectsCorruptHeadersWithAClearMessage) {
  const std::string ok_entry = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string huge_len(8, '\xff');
  const std::vector<BadCase> cases = {
      {"empty file", "", "too short"},
      {"short file", "abc", "too short"},
      {"header length beyond file", huge_len + "{}", "exceeds the file size"},
      {"truncated data", Safetensors(ok_entry, std::string(4, '\0')), "outside"},
      {"not JSON", Safetensors("{not json", ""), "not a JSON object"},
      {"JSON array", Safetensors("[1,2]", ""), "not a JSON object"},
      {"missing dtype", Safetensors(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')), "needs"},
      {"unknown dtype", Safetensors(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xx"), "unsupported dtype"},
      {"negative dim", Safetensors(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')), "negative"},
      {"size mismatch", Safetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')), "need"},
      {"begin after end", Safetensors(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", std::string(8, '\0')), "outside"},
      {"overlap", Safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')), "overlap"},
      {"shape overflow", Safetensors(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", std::string(8, '\0')), "overflow"},
  };
  for (const BadCase& c : cases) {
    const Status s = ParseBytes(c.bytes);
    EXPECT_FALSE(s.ok()) << c.what;
    EXPECT_NE(s.message().find("x.safetensors"), std::string::npos) << c.what << ": " << s.message();
    EXPECT_NE(s.message().find(c.expect_in_message), std::string::npos) << c.what << ": " << s.message();
  }
}

// A copy of a fixture model directory that a test may damage.
class DamagedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    std::system(("cp -r " + testing::FixtureModel("mha_tied_f32") + "/. " + dir_.path()).c_str());
  }
  Status Load() {
    ModelSource src;
    src.model_dir = dir_.path();
    src.dtype = DType::kF32;
    return LoadModel(src, &pool_).status();
  }
  std::string Path(const std::string& f) const { return dir_.path() + "/" + f; }
  TempDir dir_;
  ThreadPool pool_{2};
};

TEST_F(DamagedModel, IntactCopyLoads) { EXPECT_TRUE(Load().ok()) << Load().message(); }

TEST_F(DamagedModel, TruncatedWeights) {
  const std::string bytes = testing::ReadFile(Path("model.safetensors"));
  WriteFile(Path("model.safetensors"), bytes.substr(0, bytes.size() / 2));
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos) << s.message();
}

TEST_F(DamagedModel, MissingWeights) {
  std::remove(Path("model.safetensors").c_str());
  EXPECT_EQ(Load().code(), StatusCode::kNotFound);
}

TEST_F(DamagedModel, PytorchBinOnlyIsRefusedWithConversionHint) {
  std::remove(Path("model.safetensors").c_str());
  WriteFile(Path("pytorch_model.bin"), "PK");
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("save_pretrained"), std::string::npos) << s.message();
}

TEST_F(DamagedModel, MissingOrTruncatedConfig) {
  const std::string cfg = testing::ReadFile(Path("config.json"));
  WriteFile(Path("config.json"), cfg.substr(0, cfg.size() / 2));
  EXPECT_NE(Load().message().find("config.json"), std::string::npos);
  std::remove(Path("config.json").c_str());
  EXPECT_NE(Load().message().find("config.json"), std::string::npos);
}

TEST_F(DamagedModel, ConfigThatDisagreesWithWeights) {
  std::string cfg = testing::ReadFile(Path("config.json"));
  cfg.replace(cfg.find("\"intermediate_size\": 96"), 23, "\"intermediate_size\": 97");
  WriteFile(Path("config.json"), cfg);
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("mlp.gate_proj.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("[97, 64]"), std::string::npos) << s.message();
}

TEST_F(DamagedModel, MissingTensor) {
  std::string cfg = testing::ReadFile(Path("config.json"));
  cfg.replace(cfg.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 3");
  WriteFile(Path("config.json"), cfg);
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("model.layers.2."), std::string::npos) << s.message();
}

TEST_F(DamagedModel, UnsupportedArchitecture) {
  std::string cfg = testing::ReadFile(Path("config.json"));
  cfg.replace(cfg.find("\"model_type\": \"llama\""), 21, "\"model_type\": \"gpt2\"");
  WriteFile(Path("config.json"), cfg);
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("gpt2"), std::string::npos) << s.message();
}

TEST(ShardedIndex, ShardNamesMustStayInTheDirectory) {
  TempDir dir;
  std::system(("cp " + testing::FixtureModel("llama3_sharded_bf16") + "/config.json " + dir.path()).c_str());
  WriteFile(dir.path() + "/model.safetensors.index.json", R"({"weight_map":{"a":"../../etc/passwd"}})");
  ThreadPool pool(1);
  ModelSource src;
  src.model_dir = dir.path();
  const Status s = LoadModel(src, &pool).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
}

TEST(ShardedIndex, MissingShardIsNamed) {
  TempDir dir;
  std::system(("cp -r " + testing::FixtureModel("llama3_sharded_bf16") + "/. " + dir.path()).c_str());
  std::remove((dir.path() + "/model-00002-of-00003.safetensors").c_str());
  ThreadPool pool(1);
  ModelSource src;
  src.model_dir = dir.path();
  const Status s = LoadModel(src, &pool).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("model-00002-of-00003.safetensors"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace llm
