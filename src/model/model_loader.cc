#include "model/model_loader.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"

namespace llm {

namespace {

Result<LlamaConfig> LoadDummyConfig(const std::string& name) {
  if (name.empty()) return InvalidArgument("--load-format dummy needs --model-config NAME or path/to/config.json");
  if (name.find('/') != std::string::npos || name.find(".json") != std::string::npos) {
    LLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(name));
    return ParseLlamaConfig(text, name);
  }
  return BuiltinLlamaConfig(name);
}

// generation_config.json's eos_token_id (an int or a list: Llama 3 Instruct
// stops on both <|end_of_text|> and <|eot_id|>) is the stop set when present.
Status ApplyGenerationConfig(const std::string& dir, LlamaConfig* config) {
  auto text = ReadTextFile(dir + "/generation_config.json");
  if (!text.ok()) {  // optional file; but one that is there and unreadable (a FIFO, a directory) is an error
    return text.status().code() == StatusCode::kNotFound ? OkStatus() : text.status();
  }
  auto j = nlohmann::json::parse(text.value(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(dir + "/generation_config.json: not valid JSON (truncated or corrupt)");
  }
  auto eos = j.find("eos_token_id");
  if (eos == j.end() || eos->is_null()) return OkStatus();
  std::vector<int> ids;
  LLM_RETURN_IF_ERROR(ParseTokenIds(*eos, dir + "/generation_config.json: 'eos_token_id'", &ids));
  config->eos_token_ids = ids;
  return OkStatus();
}

}  // namespace

Result<LoadedModel> LoadModel(const ModelSource& src, ThreadPool* pool) {
  const auto start = std::chrono::steady_clock::now();
  LoadedModel m;
  if (src.format == LoadFormat::kDummy) {
    LLM_ASSIGN_OR_RETURN(m.config, LoadDummyConfig(src.model_config));
    LLM_ASSIGN_OR_RETURN(m.weights, MakeDummyWeights(m.config, src.dtype, src.seed, pool));
    m.description = "dummy:" + src.model_config;
    if (m.config.vocab_size >= MakeByteTokenizer()->vocab_size()) {
      m.tokenizer = MakeByteTokenizer();
    } else {
      m.tokenizer_status = NotFound(m.description + ": vocab_size " + std::to_string(m.config.vocab_size) +
                                    " is too small for the built-in byte-level tokenizer (needs 259)");
    }
  } else {
    const std::string& dir = src.model_dir;
    if (!IsDirectory(dir)) return NotFound(dir + ": model directory not found");
    LLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(dir + "/config.json"));
    LLM_ASSIGN_OR_RETURN(m.config, ParseLlamaConfig(text, dir + "/config.json"));
    LLM_RETURN_IF_ERROR(ApplyGenerationConfig(dir, &m.config));
    LLM_ASSIGN_OR_RETURN(m.weights, LoadSafetensorsWeights(dir, m.config, src.dtype, pool));
    auto tok = LoadTokenizer(dir);
    if (tok.ok()) {
      m.tokenizer = std::move(tok.value());
    } else if (tok.status().code() == StatusCode::kNotFound) {
      m.tokenizer_status = tok.status();
    } else {
      return tok.status();  // present but corrupt or unsupported: say so now
    }
    m.description = dir;
  }
  if (m.tokenizer && m.tokenizer->vocab_size() > m.config.vocab_size) {
    return InvalidArgument(m.description + ": tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                           " tokens but the model's vocab_size is " + std::to_string(m.config.vocab_size));
  }
  m.load_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

}  // namespace llm
