// Rows in llama.cpp's llama-bench format (--format llama-bench-jsonl | sql), so
// that scripts/compare-llama-bench.py and people's own llama-bench scripts read
// our results unchanged. Field names and types follow llama-bench's `test`
// struct; samples are per repetition.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/report.h"
#include "bench/runner.h"

namespace llm {

// What a test name says in llama-bench terms: ppN -> (N, 0, 0), tgN @ dD ->
// (0, N, D); any other test (a text prompt) -> (prompt tokens, generated, 0).
struct LlamaBenchShape {
  int n_prompt = 0, n_gen = 0, n_depth = 0;
};
LlamaBenchShape LlamaBenchShapeOf(const std::string& name, int prompt_tokens, int generated_tokens);

// One llama-bench row per test.
std::vector<nlohmann::ordered_json> LlamaBenchRows(const std::vector<BenchResult>& results, const RunInfo& info);
// "llama-bench-jsonl": one JSON object a line; "sql": CREATE TABLE + INSERTs
// as llama-bench -o sql writes them (pipe into sqlite3 FILE).
std::string FormatLlamaBench(const std::vector<BenchResult>& results, const RunInfo& info, const std::string& format);

}  // namespace llm
