// The three built-in tests of the original script: fixed English prompts of
// about 7, 24 and 68 tokens with the Llama 2 tokenizer.
#pragma once

#include <vector>

namespace llm {

struct BuiltinPrompt {
  const char* name;
  const char* text;
};

const std::vector<BuiltinPrompt>& BuiltinPrompts();

}  // namespace llm
