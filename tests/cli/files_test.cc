// The product's files on the real binary: every input it opens (model files,
// tokenizer files, --prompt-file, --model-config) is checked to be a regular
// file before it is read, so a FIFO or directory is one `error:` line and
// never a hang; every output is made visible together or not at all.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "bench/report.h"
#include "core/mapped_file.h"
#include "test_util.h"

namespace llm {
namespace {

using testing::FixtureModel;
using testing::TempDir;

using testing::CliRun;

// `timeout` turns a hang into exit 124 instead of a stuck test (generous:
// a --profile run calibrates first, slow in the sanitizer build).
CliRun RunCli(const std::string& args, const std::string& env = "", int timeout_s = 60) {
  return testing::RunShell(env + " timeout " + std::to_string(timeout_s) + " " + LLM_SPEED_BENCHMARK + " " + args);
}

// A copy of a fixture model made of symlinks, with `name` replaced by a FIFO.
std::string ModelWithFifo(const TempDir& tmp, const std::string& fixture, const std::string& name) {
  const std::string dir = tmp.path() + "/model";
  EXPECT_EQ(std::system(("mkdir -p " + dir + " && ln -s " + FixtureModel(fixture) + "/* " + dir).c_str()), 0);
  std::remove((dir + "/" + name).c_str());
  EXPECT_EQ(::mkfifo((dir + "/" + name).c_str(), 0644), 0) << name;
  return dir;
}

void ExpectOneErrorLine(const CliRun& r, const std::string& must_mention) {
  EXPECT_EQ(r.exit_code, 2) << (r.exit_code == 124 ? "hung (killed by timeout)\n" : "") << r.out;
  EXPECT_EQ(r.out.rfind("error:", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find(must_mention), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("internal failure"), std::string::npos) << r.out;
}

const char* kQuick = " --device cpu --dtype float32 --max-gen-len 2 --prompt hi --warmup 0 --repetitions 1 --quiet";

TEST(InputFiles, AFifoWhereAModelFileShouldBeIsAnErrorNotAHang) {
  for (const char* name : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.model"}) {
    TempDir tmp;
    const std::string dir = ModelWithFifo(tmp, "mha_tied_f32", name);
    const CliRun r = RunCli("--model-path " + dir + kQuick + " --output-dir " + tmp.path() + "/out");
    ExpectOneErrorLine(r, std::string(name) + ": is a FIFO");
  }
  for (const char* name : {"model.safetensors.index.json", "model-00002-of-00003.safetensors"}) {
    TempDir tmp;
    const std::string dir = ModelWithFifo(tmp, "llama3_sharded_bf16", name);
    const CliRun r = RunCli("--model-path " + dir + kQuick + " --output-dir " + tmp.path() + "/out");
    ExpectOneErrorLine(r, std::string(name) + ": is a FIFO");
  }
}

TEST(InputFiles, AFifoAsPromptFileOrModelConfigIsAnErrorNotAHang) {
  TempDir tmp;
  const std::string fifo = tmp.path() + "/fifo.txt";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  ExpectOneErrorLine(RunCli("--model-path " + FixtureModel("mha_tied_f32") + " --device cpu --quiet --prompt-file " +
                         fifo + " --output-dir " + tmp.path() + "/out"),
                     "--prompt-file " + fifo + ": is a FIFO");
  const std::string cfg = tmp.path() + "/config.json";
  ASSERT_EQ(::mkfifo(cfg.c_str(), 0644), 0);
  ExpectOneErrorLine(RunCli("--load-format dummy --model-config " + cfg + " --device cpu --quiet --output-dir " +
                         tmp.path() + "/out"),
                     cfg + ": is a FIFO");
}

TEST(InputFiles, ADirectoryAsTokenizerModelIsOneClearLine) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/model";
  ASSERT_EQ(std::system(("mkdir -p " + dir + "/tokenizer.model && ln -s " + FixtureModel("mha_tied_f32") +
                         "/config.json " + FixtureModel("mha_tied_f32") + "/model.safetensors " + dir)
                            .c_str()),
            0);
  ExpectOneErrorLine(RunCli("--model-path " + dir + kQuick + " --output-dir " + tmp.path() + "/out"),
                     "tokenizer.model: is a directory");
}

TEST(InputFiles, ReadTextFileAndMappedFileRefuseWhatIsNotARegularFile) {
  TempDir tmp;
  const std::string fifo = tmp.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  ::alarm(30);  // a blocking open would hang here: SIGALRM fails the test instead
  auto text = ReadTextFile(fifo);
  auto mapped = MappedFile::Open(fifo);
  auto dir = ReadTextFile(tmp.path());
  ::alarm(0);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), StatusCode::kIoError);
  EXPECT_NE(text.status().message().find("FIFO"), std::string::npos) << text.status().message();
  EXPECT_FALSE(mapped.ok());
  EXPECT_NE(dir.status().message().find("is a directory"), std::string::npos) << dir.status().message();
  EXPECT_EQ(ReadTextFile(tmp.path() + "/absent").status().code(), StatusCode::kNotFound);
  testing::WriteFile(tmp.path() + "/f", "abc");
  EXPECT_EQ(ReadTextFile(tmp.path() + "/f").value(), "abc");
}

// --- outputs ------------------------------------------------------------------

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}
std::string Listing(const std::string& dir) {
  FILE* p = ::popen(("ls -A " + dir).c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(OutputFiles, AFailedOutputLeavesNoNewFileBesideTheOldResults) {
  // profiler_stats.json is a directory: that output cannot be written, so
  // none of the new ones may appear, and the old results file stays.
  TempDir out, cache;
  testing::WriteFile(out.path() + "/benchmark_results.json", "old");
  ASSERT_EQ(::mkdir((out.path() + "/profiler_stats.json").c_str(), 0755), 0);
  const CliRun r = RunCli("--model-path " + FixtureModel("mha_tied_f32") + kQuick + " --profile --output-dir " + out.path(),
                       "XDG_CACHE_HOME=" + cache.path(), 900);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("profiler_stats.json"), std::string::npos) << r.out;
  EXPECT_EQ(testing::ReadFile(out.path() + "/benchmark_results.json"), "old");
  EXPECT_FALSE(Exists(out.path() + "/profiler_trace.json")) << Listing(out.path());
  EXPECT_FALSE(Exists(out.path() + "/profiler_stats.txt")) << Listing(out.path());
  EXPECT_TRUE(IsDir(out.path() + "/profiler_stats.json"));
  EXPECT_EQ(Listing(out.path()), "benchmark_results.json\nprofiler_stats.json\n") << "temporaries left behind";
  // The same with the results file as the one that cannot be replaced.
  TempDir out2;
  ASSERT_EQ(::mkdir((out2.path() + "/benchmark_results.json").c_str(), 0755), 0);
  const CliRun r2 = RunCli("--model-path " + FixtureModel("mha_tied_f32") + kQuick + " --profile --output-dir " +
                            out2.path(),
                        "XDG_CACHE_HOME=" + cache.path(), 900);
  EXPECT_EQ(r2.exit_code, 2) << r2.out;
  EXPECT_EQ(Listing(out2.path()), "benchmark_results.json\n") << "new profiler files beside no results";
}

TEST(OutputFiles, AllOutputsOfAProfiledRunAppearTogether) {
  TempDir out, cache;
  const CliRun r = RunCli("--model-path " + FixtureModel("mha_tied_f32") + kQuick + " --profile --output-dir " + out.path(),
                       "XDG_CACHE_HOME=" + cache.path(), 900);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(Listing(out.path()),
            "benchmark_results.json\nprofiler_stats.json\nprofiler_stats.txt\nprofiler_trace.json\n");
}

TEST(OutputFiles, AFifoUnderTheTemporaryNameIsAnErrorNotAHang) {
  TempDir out;
  const std::string path = out.path() + "/benchmark_results.json";
  ASSERT_EQ(::mkfifo((path + ".tmp." + std::to_string(::getpid())).c_str(), 0644), 0);
  ::alarm(30);  // a blocking open for writing would wait for a reader forever
  const Status s = WriteFileAtomic(path, "{}");
  OutputFiles outputs(out.path());
  const Status staged = outputs.Add("benchmark_results.json", "{}");
  ::alarm(0);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(staged.ok());
  EXPECT_FALSE(Exists(path));
}

TEST(OutputFiles, StaleTemporariesOfDeadProcessesAreRemoved) {
  TempDir out;
  // A pid that is certainly gone: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string stale = out.path() + "/benchmark_results.json.tmp." + std::to_string(dead);
  const std::string stale_profile = out.path() + "/profiler_trace.json.tmp." + std::to_string(dead);
  const std::string alive = out.path() + "/benchmark_results.json.tmp." + std::to_string(::getpid());
  const std::string other = out.path() + "/notes.txt.tmp." + std::to_string(dead);
  for (const auto& f : {stale, stale_profile, alive, other}) testing::WriteFile(f, "partial");
  const CliRun r = RunCli("--model-path " + FixtureModel("mha_tied_f32") + kQuick + " --output-dir " + out.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(Exists(stale)) << Listing(out.path());
  EXPECT_FALSE(Exists(stale_profile)) << Listing(out.path());
  EXPECT_TRUE(Exists(alive)) << "a running process's temporary must stay";
  EXPECT_TRUE(Exists(other)) << "only our own output names are cleaned";
  EXPECT_TRUE(Exists(out.path() + "/benchmark_results.json"));
}

}  // namespace
}  // namespace llm
