// Text taken from a file as it may appear in a one-line error message.
#pragma once

#include <string>
#include <string_view>

namespace llm {

// Printable ASCII kept, every other byte as \xNN (a newline from a forged
// file must not split the `error:` line), cut at `max_chars` with "...".
inline std::string PrintableName(std::string_view s, size_t max_chars = 80) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s.substr(0, max_chars)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  if (s.size() > max_chars) out += "...";
  return out;
}

}  // namespace llm
