// Downloads from a local fake hub (tests/hub/fake_hub.py on 127.0.0.1) with
// faults injected on demand; no test reaches the internet.
#include "hub/hub.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "test_util.h"

namespace llm {
namespace {

using testing::FixtureModel;
using testing::TempDir;

constexpr const char* kRepo = "test-org/tiny-llama";

// Runs the fake hub as a child process for the lifetime of the object.
class FakeHub {
 public:
  explicit FakeHub(const std::string& fault) : log_(dir_.path() + "/requests.log") {
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      const std::string script = std::string(LLM_TESTS_DIR) + "/hub/fake_hub.py";
      const std::string repo = std::string(kRepo) + "=" + FixtureModel("mha_tied_f32");
      ::execlp("python3", "python3", script.c_str(), "--repo", repo.c_str(), "--fault", fault.c_str(), "--log",
               log_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    char line[64] = {0};
    if (std::fgets(line, sizeof(line), f) != nullptr) std::sscanf(line, "PORT %d", &port_);
    std::fclose(f);
  }
  ~FakeHub() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::vector<std::string> requests() const {
    std::vector<std::string> lines;
    std::string text = testing::ReadFile(log_);
    for (size_t a = 0, b; (b = text.find('\n', a)) != std::string::npos; a = b + 1) lines.push_back(text.substr(a, b - a));
    return lines;
  }

 private:
  TempDir dir_;
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class Hub : public ::testing::Test {
 protected:
  HubOptions Options(const FakeHub& hub) {
    HubOptions o;
    o.endpoint = hub.endpoint();
    o.cache_dir = cache_.path();
    o.backoff_s = 0.01;
    o.timeout_s = 1;
    return o;
  }
  std::string RepoDir() const { return cache_.path() + "/models--test-org--tiny-llama"; }
  bool NoIncompleteFiles() const {
    return std::system(("test -z \"$(find " + cache_.path() + " -name '*.incomplete')\"").c_str()) == 0;
  }
  // Every file the snapshot has is byte for byte the fixture's (what Python's
  // huggingface_hub would read from the shared cache).
  void ExpectSnapshotBytesAreTheFixtures(const std::string& snapshot) {
    const std::string fixture = FixtureModel("mha_tied_f32");
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.model"}) {
      EXPECT_EQ(testing::ReadFile(snapshot + "/" + f), testing::ReadFile(fixture + "/" + f)) << f;
    }
  }
  TempDir cache_;
};

TEST_F(Hub, DownloadsVerifiesAndLaysOutTheCacheLikeHuggingfaceHub) {
  FakeHub hub("");
  ASSERT_GT(hub.port(), 0);
  auto snap = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  const std::string commit = testing::ReadFile(RepoDir() + "/refs/main");
  EXPECT_EQ(commit, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(snap.value(), RepoDir() + "/snapshots/" + commit);
  // Snapshot entries are relative symlinks into blobs/, named by SHA-256 for LFS files.
  char target[256] = {0};
  ASSERT_GT(::readlink((snap.value() + "/model.safetensors").c_str(), target, sizeof(target) - 1), 0);
  auto sha = Sha256OfFile(FixtureModel("mha_tied_f32") + "/model.safetensors");
  EXPECT_EQ(std::string(target), "../../blobs/" + sha.value());
  EXPECT_EQ(testing::ReadFile(snap.value() + "/config.json"), testing::ReadFile(FixtureModel("mha_tied_f32") + "/config.json"));
  struct stat st;
  EXPECT_NE(::stat((snap.value() + "/pytorch_model.bin").c_str(), &st), 0) << ".bin must not be downloaded";
  EXPECT_TRUE(NoIncompleteFiles());
  // Second resolution: straight from the cache, no request at all.
  const size_t before = hub.requests().size();
  ASSERT_TRUE(ResolveHubModel(kRepo, "main", Options(hub)).ok());
  EXPECT_EQ(hub.requests().size(), before);
}

TEST_F(Hub, GatedModelSaysToAcceptTheLicence) {
  FakeHub hub("401");
  auto r = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("licence"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("HF_TOKEN"), std::string::npos) << r.status().message();
}

TEST_F(Hub, UnknownRepositoryIs404) {
  FakeHub hub("");
  auto r = ResolveHubModel("test-org/absent", "main", Options(hub));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().message();
  EXPECT_NE(r.status().message().find("404"), std::string::npos);
}

TEST_F(Hub, ServerErrorsAreRetriedAndTheirBodiesNeverReachTheCache) {
  FakeHub hub("500x2");
  auto r = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectSnapshotBytesAreTheFixtures(r.value());
  EXPECT_TRUE(NoIncompleteFiles());
}

TEST_F(Hub, AForbiddenAnswerLeavesNothingToResumeFrom) {
  // The first run ends on a 403; the next one (licence accepted) must not
  // resume from the error page.
  FakeHub hub("403x1");
  auto first = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find("403"), std::string::npos) << first.status().message();
  EXPECT_TRUE(NoIncompleteFiles());
  auto second = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_TRUE(second.ok()) << second.status().message();
  ExpectSnapshotBytesAreTheFixtures(second.value());
  for (const auto& line : hub.requests()) EXPECT_EQ(line.find("bytes="), std::string::npos) << line;
}

TEST_F(Hub, ADownloadStopsAtTheAnnouncedSize) {
  FakeHub hub("endless");
  HubOptions o = Options(hub);
  o.max_attempts = 2;
  auto r = ResolveHubModel(kRepo, "main", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().message();
  EXPECT_NE(r.status().message().find("more bytes than announced"), std::string::npos) << r.status().message();
  EXPECT_TRUE(NoIncompleteFiles());
  // The server could push at most a socket buffer or two past the file before
  // the client hung up; an uncapped client reads all 256 MiB.
  for (const auto& line : hub.requests()) {
    if (line.rfind("SENT ", 0) == 0) {
      EXPECT_LT(std::stoll(line.substr(5)), 64ll << 20) << line;
    }
  }
}

TEST_F(Hub, AFileNotInLfsIsCheckedAgainstItsGitBlobId) {
  FakeHub hub("wrongblob");
  auto r = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().message();
  EXPECT_NE(r.status().message().find("git blob id"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos) << r.status().message();
  EXPECT_TRUE(NoIncompleteFiles());
  EXPECT_NE(std::system(("test -n \"$(find " + RepoDir() + "/blobs -type f)\"").c_str()), 0)
      << "nothing may enter blobs/: config.json comes first";
  EXPECT_EQ(GitBlobIdOfFile(FixtureModel("mha_tied_f32") + "/config.json").value().size(), 40u);
}

TEST_F(Hub, ARefThatIsNotACommitIdIsNeverUsedAsAPath) {
  // refs/main pointing out of snapshots/ at a complete model elsewhere.
  const std::string evil = cache_.path() + "/evil";
  ASSERT_EQ(std::system(("mkdir -p " + RepoDir() + "/refs " + evil + " && cp " + FixtureModel("mha_tied_f32") +
                         "/* " + evil).c_str()),
            0);
  testing::WriteFile(RepoDir() + "/refs/main", "../../evil");
  FakeHub hub("");
  HubOptions o = Options(hub);
  o.offline = true;
  auto r = ResolveHubModel(kRepo, "main", o);
  ASSERT_FALSE(r.ok()) << "loaded " << r.value();
  EXPECT_NE(r.status().message().find("refs/main"), std::string::npos) << r.status().message();
  // With network the bad ref is replaced by the hub's commit.
  auto online = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_TRUE(online.ok()) << online.status().message();
  EXPECT_EQ(online.value(), RepoDir() + "/snapshots/0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(testing::ReadFile(RepoDir() + "/refs/main"), "0123456789abcdef0123456789abcdef01234567");
}

TEST_F(Hub, RevisionAndModelNameCannotLeaveTheCache) {
  FakeHub hub("");
  for (const char* rev : {"../../evil", "..", "a//b", "/abs", "main\nx", "a\x7f", ""}) {
    auto r = ResolveHubModel(kRepo, rev, Options(hub));
    ASSERT_FALSE(r.ok()) << rev;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << rev << ": " << r.status().message();
    EXPECT_NE(r.status().message().find("--revision"), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  }
  auto name = ResolveHubModel("org/na\nme", "main", Options(hub));
  EXPECT_EQ(name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(name.status().message().find('\n'), std::string::npos) << name.status().message();
  EXPECT_TRUE(hub.requests().empty()) << "a bad revision must be refused before any request";
  // A revision with slashes (a PR ref, a branch like feature/x) is still a revision.
  EXPECT_NE(ResolveHubModel(kRepo, "refs/pr/1", Options(hub)).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(Hub, RevisionWithANewlineIsOneErrorLineFromTheCli) {
  TempDir out;
  const std::string cmd = "HF_HUB_CACHE=" + cache_.path() + " HF_ENDPOINT=http://127.0.0.1:1 LLAMA_MODEL_PATH= " +
                          LLM_SPEED_BENCHMARK + " --model-name " + kRepo + " --revision \"$(printf 'main\\nevil')\"" +
                          " --device cpu --quiet --output-dir " + out.path() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) text.append(buf, n);
  const int status = ::pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 2) << text;
  EXPECT_EQ(text.rfind("error:", 0), 0u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_NE(text.find("--revision"), std::string::npos) << text;
}

TEST(HubAnswers, ParseRevisionAnswerChecksTheCommitAndNeverThrows) {
  auto ok = ParseRevisionAnswer(
      R"({"sha":"0123456789abcdef0123456789abcdef01234567","siblings":[{"rfilename":"config.json","size":5,)"
      R"("blobId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},{"rfilename":"model.safetensors","size":134,)"
      R"("blobId":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","lfs":{"sha256":"cc","size":1000}}]})",
      "t");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->files.size(), 2u);
  EXPECT_EQ(ok->files[0].etag, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(ok->files[1].size, 1000);
  EXPECT_EQ(ok->files[1].etag, "cc");
  for (const char* bad : {"", "[]", "{\"sha\":\"../../x\",\"siblings\":[]}", "{\"sha\":1,\"siblings\":[]}",
                          "{\"sha\":\"0123456789abcdef0123456789abcdef01234567\",\"siblings\":{}}"}) {
    EXPECT_FALSE(ParseRevisionAnswer(bad, "t").ok()) << bad;
  }
  // Wrong types inside a sibling are ignored, never thrown.
  auto odd = ParseRevisionAnswer(
      R"({"sha":"0123456789abcdef0123456789abcdef01234567","siblings":[{"rfilename":"a","size":"x","lfs":{"sha256":3}}]})",
      "t");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->files[0].size, -1);
}

TEST_F(Hub, DroppedConnectionResumesWithARangeRequest) {
  FakeHub hub("drop");
  auto r = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_TRUE(r.ok()) << r.status().message();
  bool resumed = false;
  for (const auto& line : hub.requests()) resumed = resumed || line.find("bytes=") != std::string::npos;
  EXPECT_TRUE(resumed) << "no Range request after the drop";
  EXPECT_EQ(Sha256OfFile(r.value() + "/model.safetensors").value(),
            Sha256OfFile(FixtureModel("mha_tied_f32") + "/model.safetensors").value());
}

TEST_F(Hub, WrongChecksumNeverEntersTheCache) {
  FakeHub hub("badsha");
  auto r = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("SHA-256"), std::string::npos) << r.status().message();
  EXPECT_TRUE(NoIncompleteFiles());
  auto sha = Sha256OfFile(FixtureModel("mha_tied_f32") + "/model.safetensors").value();
  struct stat st;
  EXPECT_NE(::stat((RepoDir() + "/blobs/" + sha).c_str(), &st), 0);
  // A corruption that happens once is repaired by downloading again.
  TempDir other;
  FakeHub once("badsha1");
  HubOptions o = Options(once);
  o.cache_dir = other.path();
  EXPECT_TRUE(ResolveHubModel(kRepo, "main", o).ok());
}

TEST_F(Hub, StalledResponseTimesOutAndIsRetried) {
  FakeHub hub("slow");
  auto r = ResolveHubModel(kRepo, "main", Options(hub));
  ASSERT_TRUE(r.ok()) << r.status().message();
}

TEST_F(Hub, OfflineUsesTheCacheOnlyAndSaysSo) {
  FakeHub hub("");
  HubOptions o = Options(hub);
  o.offline = true;
  auto r = ResolveHubModel(kRepo, "main", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("HF_HUB_OFFLINE"), std::string::npos);
  EXPECT_TRUE(hub.requests().empty());
  ASSERT_TRUE(ResolveHubModel(kRepo, "main", Options(hub)).ok());
  EXPECT_TRUE(ResolveHubModel(kRepo, "main", o).ok());
}

TEST_F(Hub, NoNetworkIsAClearError) {
  HubOptions o;
  o.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  o.cache_dir = cache_.path();
  o.max_attempts = 2;
  o.backoff_s = 0.01;
  auto r = ResolveHubModel(kRepo, "main", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("127.0.0.1:1"), std::string::npos) << r.status().message();
}

TEST_F(Hub, TwoConcurrentDownloadsShareOneCache) {
  FakeHub hub("");
  Result<std::string> a = NotFound(""), b = NotFound("");
  std::thread t1([&] { a = ResolveHubModel(kRepo, "main", Options(hub)); });
  std::thread t2([&] { b = ResolveHubModel(kRepo, "main", Options(hub)); });
  t1.join();
  t2.join();
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(Sha256OfFile(a.value() + "/model.safetensors").value(),
            Sha256OfFile(FixtureModel("mha_tied_f32") + "/model.safetensors").value());
  EXPECT_TRUE(NoIncompleteFiles());
}

TEST_F(Hub, TokenGoesOnlyToTheHubHost) {
  FakeHub hub("");
  HubOptions o = Options(hub);
  o.token = "hf_secret";
  ASSERT_TRUE(ResolveHubModel(kRepo, "main", o).ok());
  int hub_auth = 0, cdn = 0;
  for (const auto& line : hub.requests()) {
    if (line.find("/cdn/") != std::string::npos) {
      ++cdn;
      EXPECT_NE(line.find("noauth"), std::string::npos) << "token leaked to the CDN host: " << line;
    } else if (line.find(" auth") != std::string::npos) {
      ++hub_auth;
    }
  }
  EXPECT_GT(cdn, 0);
  EXPECT_GT(hub_auth, 0);
}

TEST_F(Hub, SpeedBenchmarkDownloadsThenRunsFromTheCacheWithNoRequest) {
  FakeHub hub("");
  TempDir out;
  const std::string env = "HF_ENDPOINT=" + hub.endpoint() + " HF_HUB_CACHE=" + cache_.path() + " LLAMA_MODEL_PATH= ";
  const std::string cmd = env + LLM_SPEED_BENCHMARK + " --model-name " + kRepo +
                          " --device cpu --dtype float32 --max-gen-len 4 --warmup 0 --repetitions 1 --quiet --output-dir " +
                          out.path() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_NE(testing::ReadFile(out.path() + "/benchmark_results.json").find("\"tokens_per_sec\""), std::string::npos);
  const size_t first = hub.requests().size();
  EXPECT_GE(first, 4u);
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(hub.requests().size(), first) << "the second run made requests";
}

TEST_F(Hub, DiskFullIsAClearErrorAndLeavesNothingHalfWritten) {
  // A 64 KiB tmpfs as the cache: the 347 KB weights cannot fit.
  TempDir mnt;
  if (std::system(("mount -t tmpfs -o size=64k tmpfs " + mnt.path() + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root) to simulate a full disk";
  }
  FakeHub hub("");
  HubOptions o = Options(hub);
  o.cache_dir = mnt.path();
  auto r = ResolveHubModel(kRepo, "main", o);
  std::system(("umount " + mnt.path()).c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("No space left"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos) << r.status().message();
}

TEST(HubFiles, OnlyWhatARunNeeds) {
  const auto f = FilesToDownload({"config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                                  "pytorch_model.bin", "model.gguf", "original/consolidated.00.pth", "tokenizer.json",
                                  "README.md", "generation_config.json", "tokenizer_config.json"});
  EXPECT_EQ(f, (std::vector<std::string>{"config.json", "model-00001-of-00002.safetensors",
                                         "model.safetensors.index.json", "tokenizer.json", "generation_config.json",
                                         "tokenizer_config.json"}));
}

}  // namespace
}  // namespace llm
