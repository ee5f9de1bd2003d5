// libFuzzer target: arbitrary bytes as the hub's answer to
// /api/models/ORG/NAME/revision/REV?blobs=true. It must parse or be a
// Status, never throw or crash; a commit it accepts is a 40-hex id (it
// becomes a directory name in the cache).
#include <cstddef>
#include <cstdint>
#include <string>

#include "hub/hub.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  auto r = llm::ParseRevisionAnswer(body, "fuzz");
  if (r.ok()) {
    if (!llm::IsCommitHash(r.value().commit)) __builtin_trap();
    std::vector<std::string> names;
    for (const auto& f : r.value().files) names.push_back(f.name);
    for (const auto& f : llm::FilesToDownload(names)) {
      if (f.find('/') != std::string::npos) __builtin_trap();  // a wanted file stays inside the snapshot
    }
  }
  return 0;
}
