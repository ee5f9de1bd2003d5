// Helpers shared by the tests: fixture paths, reference outputs written by
// tools/make_fixtures.py, relative error, temporary directories.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "kernels/ops.h"
#include "model/llama_model.h"
#include "model/weights.h"

namespace llm::testing {

// A model of config.json text `config_json` with random float32 weights (seed 3) on `backend`.
inline Result<std::unique_ptr<LlamaModel>> RandomModel(const std::string& config_json, ThreadPool* pool,
                                                       KernelBackend* backend, const ModelOptions& options) {
  LLM_ASSIGN_OR_RETURN(LlamaConfig config, ParseLlamaConfig(config_json, "test"));
  LLM_ASSIGN_OR_RETURN(ModelWeights weights, MakeDummyWeights(config, DType::kF32, 3, pool));
  return LlamaModel::Create(config, std::move(weights), backend, options);
}

// A shell command line's exit code, and its stdout and stderr together
// (redirections inside the command apply).
struct CliRun {
  int exit_code;
  std::string out;
};
inline CliRun RunShell(const std::string& cmd) {
  FILE* p = ::popen(("(" + cmd + ") 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// The fixtures directory: $LLM_FIXTURES_DIR when set (a test binary carried to
// another machine), else where this source tree was built.
inline std::string FixturesDir() {
  const char* env = std::getenv("LLM_FIXTURES_DIR");
  return env && *env ? env : LLM_FIXTURES_DIR;
}

inline std::string FixtureModel(const std::string& name) { return FixturesDir() + "/models/" + name; }

// Reference outputs of transformers for one fixture model.
struct Reference {
  nlohmann::json meta;
  std::shared_ptr<SafetensorsFile> file;

  std::vector<int32_t> Ids(const std::string& key) const {
    const SafetensorsEntry& e = file->tensors().at(key);
    const auto* p = reinterpret_cast<const int32_t*>(file->TensorData(e));
    return std::vector<int32_t>(p, p + e.nbytes / 4);
  }
  std::vector<float> Floats(const std::string& key) const {
    const SafetensorsEntry& e = file->tensors().at(key);
    const auto* p = reinterpret_cast<const float*>(file->TensorData(e));
    return std::vector<float>(p, p + e.nbytes / 4);
  }
};

inline Reference LoadReference(const std::string& name) {
  const std::string base = FixturesDir() + "/reference/" + name;
  Reference r;
  std::ifstream in(base + ".json");
  r.meta = nlohmann::json::parse(in);
  if (r.meta.value("magic", "") != "llama-speedbench-fixture" || r.meta.value("version", 0) != 1) {
    throw std::runtime_error(base + ".json: wrong magic or version; HINT: re-run tools/make_fixtures.py");
  }
  auto f = SafetensorsFile::Open(base + ".safetensors");
  if (!f.ok()) throw std::runtime_error(f.status().message());
  r.file = f.value();
  return r;
}

// Bound on the relative error of logits for weights in `dtype`: 1e-4 in
// float32; in float16/bfloat16 transformers' own error on the same model
// (recorded in the fixture), since we round only the weights.
inline double LogitTolerance(const Reference& ref, DType dtype) {
  switch (dtype) {
    case DType::kBF16: return ref.meta["hf_bf16_rel_err"].get<double>();
    case DType::kF16: return ref.meta["hf_f16_rel_err"].get<double>();
    default: return 1e-4;
  }
}

// Causal attention of `tokens` query rows at positions start.. over a cache
// [kv_heads][capacity][head_dim]; out stays null for the caller to set.
inline AttentionArgs MakeAttentionArgs(const float* q, float* k, float* v, int kv_heads, int capacity, int head_dim,
                                       int tokens, int start, int heads) {
  AttentionArgs a;
  a.q = q;
  a.cache = KvCacheView{k, v, kv_heads, capacity, head_dim};
  a.num_tokens = tokens;
  a.start_pos = start;
  a.num_heads = heads;
  a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  return a;
}

// ||a - b|| / ||b||
// --decode-x for one test (SetCpuDecodeX), back to the default auto when it
// ends, also when an ASSERT returns early.
struct ScopedDecodeX {
  explicit ScopedDecodeX(DecodeX mode) { SetCpuDecodeX(mode); }
  ~ScopedDecodeX() { SetCpuDecodeX(DecodeX::kAuto); }
  ScopedDecodeX(const ScopedDecodeX&) = delete;
  ScopedDecodeX& operator=(const ScopedDecodeX&) = delete;
};

inline double RelErr(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// A fresh directory under /tmp, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/llm_test_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace llm::testing
