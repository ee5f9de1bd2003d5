// The safetensors parser and the checkpoint loader on valid, truncated and
// lying files: every failure is a Status naming the file, never a crash.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

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

TEST_F(DamagedModel, TensorsThatConfigDoesNotUseAreRefused) {
  // A config with fewer layers than the checkpoint used to run a truncated model.
  std::string cfg = testing::ReadFile(Path("config.json"));
  cfg.replace(cfg.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 1");
  WriteFile(Path("config.json"), cfg);
  const Status s = Load();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  EXPECT_NE(s.message().find("model.layers.1."), std::string::npos) << s.message();
}

// A safetensors file split into its header (JSON) and data section, to be
// rewritten by a test.
struct StFile {
  nlohmann::json header;
  std::string data;
  static StFile Read(const std::string& path) {
    const std::string bytes = testing::ReadFile(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    return {nlohmann::json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
  }
  std::string Tensor(const std::string& name) const {
    const auto& off = header.at(name).at("data_offsets");
    return data.substr(off[0].get<size_t>(), off[1].get<size_t>() - off[0].get<size_t>());
  }
  void Add(const std::string& name, const nlohmann::json& like, const std::string& bytes) {
    header[name] = {{"dtype", like["dtype"]}, {"shape", like["shape"]}, {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  // `pad` spaces after the JSON move every tensor by that many bytes.
  void Write(const std::string& path, size_t pad = 0) const { WriteFile(path, Safetensors(header.dump() + std::string(pad, ' '), data)); }
};

TEST(ShardedIndex, SameTensorInTwoShardsIsRefused) {
  TempDir dir;
  std::system(("cp -r " + testing::FixtureModel("llama3_sharded_bf16") + "/. " + dir.path()).c_str());
  const std::string a = dir.path() + "/model-00001-of-00003.safetensors", b = dir.path() + "/model-00002-of-00003.safetensors";
  const StFile first = StFile::Read(a);
  std::string name;
  for (auto it = first.header.begin(); it != first.header.end(); ++it) {
    if (it.key() != "__metadata__") name = it.key();
  }
  StFile second = StFile::Read(b);
  ASSERT_FALSE(second.header.contains(name));
  second.Add(name, first.header[name], first.Tensor(name));  // same name, same bytes: still ambiguous
  second.Write(b);
  ThreadPool pool(1);
  ModelSource src;
  src.model_dir = dir.path();
  const Status s = LoadModel(src, &pool).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
  EXPECT_NE(s.message().find(name), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("both"), std::string::npos) << s.message();
}

// The format does not align tensors: a header whose length makes the data
// section start at an odd offset must load (UBSan: no misaligned typed load in
// the conversion, no misaligned tensor used in place by the GEMMs) and give
// the same weights as the aligned file.
TEST(Safetensors, MisalignedDataSectionLoadsTheSameWeightsAligned) {
  TempDir dir;
  std::system(("cp -r " + testing::FixtureModel("mha_tied_f32") + "/. " + dir.path()).c_str());
  const std::string file = dir.path() + "/model.safetensors";
  const StFile st = StFile::Read(file);
  const size_t pad = (8 + st.header.dump().size()) % 4 == 1 ? 4 : 5 - (8 + st.header.dump().size()) % 4;
  st.Write(file, pad);  // 8 + header length is now 1 mod 4
  auto mapped = SafetensorsFile::Open(file);
  ASSERT_TRUE(mapped.ok()) << mapped.status().message();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(mapped.value()->TensorData(mapped.value()->tensors().begin()->second)) % 2, 1u)
      << "the test file is not misaligned";
  ThreadPool pool(2);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    ModelSource odd, even;
    odd.model_dir = dir.path();
    even.model_dir = testing::FixtureModel("mha_tied_f32");
    odd.dtype = even.dtype = dtype;
    auto a = LoadModel(odd, &pool);
    auto b = LoadModel(even, &pool);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status().message() << b.status().message();
    ModelWeights wa = std::move(a->weights), wb = std::move(b->weights);
    std::vector<TensorSpec> ta = ListTensors(a->config, &wa), tb = ListTensors(b->config, &wb);
    ASSERT_EQ(ta.size(), tb.size());
    for (size_t i = 0; i < ta.size(); ++i) {
      const Tensor& x = *ta[i].slot;
      const Tensor& y = *tb[i].slot;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data) % DTypeSize(x.dtype), 0u) << ta[i].name << " is misaligned";
      ASSERT_EQ(x.nbytes(), y.nbytes());
      EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes()), 0) << ta[i].name << " differs";
    }
  }
}

// The memory check's figure: MemAvailable, lowered to the cgroup's limit minus
// its working set (usage without inactive page cache), v2 or v1, own group first.
TEST(MemoryBudget, AvailableIsTheSmallerOfMemAvailableAndTheCgroupHeadroom) {
  TempDir root;
  const std::string r = root.path();
  const uint64_t gib = uint64_t{1} << 30;
  std::system(("mkdir -p " + r + "/proc/self " + r + "/sys/fs/cgroup/job " + r + "/sys/fs/cgroup/memory/grp").c_str());
  WriteFile(r + "/proc/meminfo", "MemTotal: 33554432 kB\nMemFree: 1000 kB\nMemAvailable: 8388608 kB\n");
  WriteFile(r + "/proc/self/cgroup", "0::/\n");
  EXPECT_EQ(AvailableMemoryBytesUnder(r), 8 * gib) << "no cgroup limit: MemAvailable";
  WriteFile(r + "/proc/self/cgroup", "0::/job\n");
  WriteFile(r + "/sys/fs/cgroup/job/memory.max", std::to_string(4 * gib) + "\n");
  WriteFile(r + "/sys/fs/cgroup/job/memory.current", std::to_string(3 * gib) + "\n");
  WriteFile(r + "/sys/fs/cgroup/job/memory.stat", "anon 1\ninactive_file " + std::to_string(gib) + "\n");
  EXPECT_EQ(AvailableMemoryBytesUnder(r), 2 * gib) << "v2: 4 GiB limit - (3 GiB used - 1 GiB inactive cache)";
  WriteFile(r + "/sys/fs/cgroup/job/memory.max", "max\n");
  EXPECT_EQ(AvailableMemoryBytesUnder(r), 8 * gib) << "v2 'max' is no limit";
  WriteFile(r + "/proc/self/cgroup", "4:memory:/grp\n");
  WriteFile(r + "/sys/fs/cgroup/memory/grp/memory.limit_in_bytes", std::to_string(gib) + "\n");
  WriteFile(r + "/sys/fs/cgroup/memory/grp/memory.usage_in_bytes", std::to_string(gib / 2) + "\n");
  EXPECT_EQ(AvailableMemoryBytesUnder(r), gib / 2) << "v1 group";
  EXPECT_TRUE(CheckMemoryBudget(gib / 2, gib / 2, "x").ok());
  const Status s = CheckMemoryBudget(gib, gib / 2, "weights 1 GiB");
  EXPECT_FALSE(s.ok());
  for (const char* part : {"1.00 GiB", "512.0 MiB", "weights 1 GiB", "--max-seq-len", "--dtype"}) {
    EXPECT_NE(s.message().find(part), std::string::npos) << part << ": " << s.message();
  }
  EXPECT_TRUE(CheckMemoryBudget(gib, 0, "unknown").ok()) << "nothing is refused when the figure is unknown";
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
