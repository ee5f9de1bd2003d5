// `speed_benchmark compare`, `--format llama-bench-jsonl|sql` and
// `--report html` on the real binary: two real runs of a fixture model
// (float32 and bfloat16), their comparison and its exit codes, llama.cpp's
// compare-llama-bench.py reading our rows (skipped with the reason where the
// script or its Python packages are absent), and both reports loaded in
// headless Chromium (skipped with the reason where it is absent): the charts
// are in the rendered DOM and the console logged no error.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace llm {
namespace {

using testing::FixtureModel;
using testing::TempDir;

using testing::CliRun;

CliRun Shell(const std::string& cmd) { return testing::RunShell(cmd); }
CliRun RunCli(const std::string& args) { return Shell(std::string("timeout 120 ") + LLM_SPEED_BENCHMARK + " " + args); }

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// Two runs of one fixture model in two dtypes, profiled, with reports: made once for all tests.
class CompareCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    for (const char* dtype : {"float32", "bfloat16"}) {
      const CliRun r = RunCli("--model-path " + FixtureModel("mha_tied_f32") + " --device cpu --dtype " + dtype +
                              " --threads 1 --prompt-lengths 8,16 --gen-lengths 6 --max-seq-len 64 --warmup 0 "
                              "--repetitions 3 --profile --report html --quiet --format llama-bench-jsonl --output-dir " +
                              Dir(dtype) + " > " + tmp_->path() + "/" + dtype + ".jsonl");
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
  }
  static void TearDownTestSuite() { delete tmp_; }
  static std::string Dir(const std::string& dtype) { return tmp_->path() + "/" + dtype; }
  static std::string Results(const std::string& dtype) { return Dir(dtype) + "/benchmark_results.json"; }
  static TempDir* tmp_;
};
TempDir* CompareCli::tmp_ = nullptr;

TEST_F(CompareCli, ResultsCarryPerRepetitionSamplesAndPerTokenLatencies) {
  const auto j = nlohmann::json::parse(Read(Results("float32")));
  ASSERT_EQ(j["runs"].size(), 3u);  // pp8, pp16, tg6
  const auto& tg = j["runs"][2];
  ASSERT_EQ(tg["repetitions"].size(), 3u);
  EXPECT_EQ(tg["repetitions"][0]["token_latencies_ms"].size(), 5u);  // 6 tokens: 5 decode steps
  EXPECT_TRUE(tg["repetitions"][0].contains("decode_tokens_per_sec"));
  EXPECT_TRUE(tg.contains("itl_ms"));  // the old keys stay
}

TEST_F(CompareCli, CompareGivesVerdictsWithIntervalsInEveryFormat) {
  const CliRun t = RunCli("compare " + Results("float32") + " " + Results("bfloat16"));
  ASSERT_EQ(t.exit_code, 0) << t.out;
  EXPECT_NE(t.out.find("differs: dtype: float32 -> bfloat16"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("bootstrap"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("pp16"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("decode tok/s"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("profile (one recorded run each"), std::string::npos) << t.out;
  const CliRun j = RunCli("compare --format json " + Results("float32") + " " + Results("bfloat16") + " 2>/dev/null");
  ASSERT_EQ(j.exit_code, 0) << j.out;
  const auto parsed = nlohmann::json::parse(j.out);
  ASSERT_EQ(parsed["rows"].size(), 3u);  // pp8, pp16 prefill; tg6 decode (its prefill of a 1-token prompt left out)
  for (const auto& row : parsed["rows"]) {
    const std::string v = row["verdict"];
    EXPECT_TRUE(v == "faster" || v == "slower" || v == "no significant change") << v;
    EXPECT_LE(row["ci_low"].get<double>(), row["ci_high"].get<double>());
  }
  EXPECT_GT(parsed["profile"]["operators"].size(), 5u);
  EXPECT_NE(RunCli("compare --format md " + Results("float32") + " " + Results("bfloat16")).out.find("| test | metric |"),
            std::string::npos);
  EXPECT_EQ(RunCli("compare --format csv " + Results("float32") + " " + Results("bfloat16") + " 2>/dev/null")
                .out.rfind("test,metric,", 0),
            0u);
}

TEST_F(CompareCli, FailAboveTripsOnlyOnASignificantSlowdown) {
  // The same file twice: every ratio is 1, nothing is slower.
  EXPECT_EQ(RunCli("compare --fail-above 0 " + Results("float32") + " " + Results("float32")).exit_code, 0);
  // A copy whose decode samples are all 100x slower (far beyond the noise of 3 repetitions).
  auto j = nlohmann::json::parse(Read(Results("float32")));
  for (auto& run : j["runs"]) {
    for (auto& rep : run["repetitions"]) rep["decode_tokens_per_sec"] = rep["decode_tokens_per_sec"].get<double>() / 100;
  }
  const std::string slow = tmp_->path() + "/slow/benchmark_results.json";
  ASSERT_EQ(std::system(("mkdir -p " + tmp_->path() + "/slow").c_str()), 0);
  std::ofstream(slow) << j.dump();
  const CliRun r = RunCli("compare --fail-above 10 " + Results("float32") + " " + slow);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("significantly slower by more than 10%"), std::string::npos) << r.out;
  EXPECT_EQ(RunCli("compare --fail-above 99.5 " + Results("float32") + " " + slow).exit_code, 0);  // 99% slower
}

TEST_F(CompareCli, MissingCorruptOrMismatchedIsOneErrorLine) {
  auto one_error = [](const CliRun& r, const std::string& mention) {
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_EQ(r.out.rfind("error:", 0), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(mention), std::string::npos) << r.out;
  };
  one_error(RunCli("compare " + Results("float32") + " " + tmp_->path() + "/nope.json"), "no such file");
  const std::string bad = tmp_->path() + "/corrupt.json";
  std::ofstream(bad) << "{\"runs\": [";
  one_error(RunCli("compare " + Results("float32") + " " + bad), "not valid JSON");
  auto j = nlohmann::json::parse(Read(Results("float32")));
  j["model"]["config"]["hidden_size"] = 4096;
  const std::string other = tmp_->path() + "/other.json";
  std::ofstream(other) << j.dump();
  one_error(RunCli("compare " + Results("float32") + " " + other), "different models");
  one_error(RunCli("compare --format xml " + Results("float32") + " " + Results("bfloat16")), "--format");
}

TEST_F(CompareCli, LlamaBenchRowsAndSql) {
  const std::string jsonl = Read(tmp_->path() + "/float32.jsonl");
  ASSERT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 3) << jsonl;
  const auto row = nlohmann::json::parse(jsonl.substr(0, jsonl.find('\n')));
  EXPECT_EQ(row["n_prompt"], 8);
  EXPECT_EQ(row["samples_ts"].size(), 3u);
  const CliRun sql = RunCli("--model-path " + FixtureModel("mha_tied_f32") +
                            " --device cpu --prompt-lengths 8 --warmup 0 --repetitions 1 --quiet --format sql "
                            "--output-dir " + tmp_->path() + "/sql");
  ASSERT_EQ(sql.exit_code, 0) << sql.out;
  EXPECT_EQ(sql.out.rfind("CREATE TABLE IF NOT EXISTS llama_bench (", 0), 0u) << sql.out;
  EXPECT_EQ(Count(sql.out, "INSERT INTO llama_bench"), 1u);
}

// llama.cpp's own reader: tests/fixtures/llama.cpp/compare-llama-bench.py (or
// $LLAMA_COMPARE_BENCH), which needs GitPython and tabulate (python3-git,
// python3-tabulate; "not run" with the reason without them). Two builds are simulated by giving the second run's
// rows another build_commit (same dtype, so the rows pair).
TEST_F(CompareCli, CompareLlamaBenchPyReadsOurRows) {
  const char* script = std::getenv("LLAMA_COMPARE_BENCH");
  std::string path = script ? script : "";
  if (path.empty()) path = testing::FixturesDir() + "/llama.cpp/compare-llama-bench.py";  // vendored, unchanged
  if (Shell("test -f " + path).exit_code != 0) {
    GTEST_SKIP() << path << " not found (set LLAMA_COMPARE_BENCH to compare-llama-bench.py; it ships in "
                            "llama-cpp-python's sdist under vendor/llama.cpp/scripts/)";
  }
  std::string python;  // the first python3 with both (Debian's packages serve /usr/bin/python3)
  for (const char* py : {"python3", "/usr/bin/python3"}) {
    if (python.empty() && Shell(std::string(py) + " -c 'import git, tabulate'").exit_code == 0) python = py;
  }
  if (python.empty()) {
    GTEST_SKIP() << "python3 lacks GitPython or tabulate, which compare-llama-bench.py imports (apt-get install "
                    "python3-git python3-tabulate)";
  }
  const std::string a = tmp_->path() + "/float32.jsonl", both = tmp_->path() + "/two_builds.jsonl";
  auto first = nlohmann::json::parse(Read(a).substr(0, Read(a).find('\n')));
  const std::string commit = first["build_commit"];
  ASSERT_EQ(Shell("cat " + a + " > " + both + " && sed 's/\"build_commit\":\"" + commit +
                  "\"/\"build_commit\":\"feedbee\"/' " + a + " >> " + both).exit_code, 0);
  const CliRun r = Shell("cd " + tmp_->path() + " && timeout 60 " + python + " " + path + " -t llama-bench -i " + both +
                         " -b " + commit + " -c feedbee");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Speedup"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pp16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tg6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.00"), std::string::npos) << r.out;
}

std::string Chromium() {
  for (const char* c : {"chromium", "chromium-browser", "google-chrome"}) {
    if (Shell(std::string("command -v ") + c + " >/dev/null").exit_code == 0) return c;
  }
  return "";
}

// Loads `file` headless; returns the dumped DOM, console lines in *console.
std::string LoadInChromium(const std::string& browser, const std::string& file, const std::string& tmp,
                           std::string* console) {
  const std::string log = tmp + "/chromium.log";
  const CliRun r = Shell("timeout 90 " + browser +
                         " --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir=" + tmp +
                         "/profile --enable-logging=stderr --v=0 --virtual-time-budget=2000 --dump-dom file://" + file +
                         " 2>" + log);
  std::string lines, all = Read(log);
  std::istringstream in(all);
  for (std::string l; std::getline(in, l);) {
    if (l.find("CONSOLE") != std::string::npos || l.find("Uncaught") != std::string::npos) lines += l + "\n";
  }
  *console = lines;
  EXPECT_EQ(r.exit_code, 0) << all;
  return r.out;
}

TEST_F(CompareCli, ReportsRenderInHeadlessChromiumWithoutConsoleErrors) {
  const std::string browser = Chromium();
  if (browser.empty()) GTEST_SKIP() << "Chromium is not installed (apt-get install chromium)";
  // The detector sees a console error where there is one.
  const std::string broken = tmp_->path() + "/broken.html";
  std::ofstream(broken) << "<!DOCTYPE html><html><body><script>no_such_function();</script></body></html>";
  std::string console;
  LoadInChromium(browser, broken, tmp_->path(), &console);
  EXPECT_NE(console.find("no_such_function"), std::string::npos) << "console detection does not work: " << console;

  const std::string dom = LoadInChromium(browser, Dir("float32") + "/report.html", tmp_->path(), &console);
  EXPECT_EQ(console, "");
  for (const char* id : {"summary-table", "chart-prefill", "chart-decode", "chart-itl", "chart-itl-hist",
                         "chart-sweep-prompt", "chart-categories-prefill", "chart-layers-prefill", "chart-roofline",
                         "chart-memory", "bottleneck-list"}) {
    EXPECT_NE(dom.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  }
  EXPECT_GE(Count(dom, "class=\"bar\""), 6u);  // prefill/decode bars, histogram, stacks
  EXPECT_GE(Count(dom, "class=\"err\""), 3u);  // error bars
  EXPECT_GE(Count(dom, "class=\"pt\""), 5u);   // roofline points, sweep points

  const CliRun c = RunCli("compare --report html --output " + tmp_->path() + "/cmp.html " + Results("float32") + " " +
                          Results("bfloat16"));
  ASSERT_EQ(c.exit_code, 0) << c.out;
  const std::string cdom = LoadInChromium(browser, tmp_->path() + "/cmp.html", tmp_->path(), &console);
  EXPECT_EQ(console, "");
  EXPECT_NE(cdom.find("id=\"chart-ratios\""), std::string::npos);
  EXPECT_NE(cdom.find("id=\"compare-table\""), std::string::npos);
  EXPECT_GE(Count(cdom, "class=\"err\""), 3u);  // the ratios' intervals
}

TEST_F(CompareCli, ReportSubcommandRewritesTheReport) {
  std::remove((Dir("bfloat16") + "/report.html").c_str());
  const CliRun r = RunCli("report " + Dir("bfloat16"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(Read(Dir("bfloat16") + "/report.html").find("chart-roofline"), std::string::npos);
  EXPECT_EQ(RunCli("report " + tmp_->path() + "/nowhere").exit_code, 2);
}

}  // namespace
}  // namespace llm
