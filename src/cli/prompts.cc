#include "cli/prompts.h"

namespace llm {

// Token counts (BOS included) with the Llama 2 tokenizer: 7, 24 and 68.
const std::vector<BuiltinPrompt>& BuiltinPrompts() {
  static const std::vector<BuiltinPrompt> kPrompts = {
      {"Short prompt", "The future of artificial intelligence is"},
      {"Medium prompt",
       "Explain the difference between a process and a thread in an operating system, and say when to use each one."},
      {"Long prompt",
       "Read the following passage and summarize it in two sentences. The history of computing began long before "
       "modern electronic computers, with mechanical devices such as the abacus and the difference engine designed "
       "by Charles Babbage. In the twentieth century, transistors and integrated circuits made these machines much "
       "smaller and much faster too."},
  };
  return kPrompts;
}

}  // namespace llm
