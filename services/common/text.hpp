#pragma once
// Small text helpers the parsers of services/common share (resources,
// attributes): trimming, splitting and strict unsigned numbers.

#include <charconv>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tessera::text {

inline std::string_view trim(std::string_view s) {
  constexpr std::string_view space = " \t\r\n";
  auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos)
    return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

// "a;b;;c" -> {"a", "b", "", "c"}; always at least one piece.
inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t pos = s.find(sep); pos != std::string_view::npos; pos = s.find(sep, start)) {
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

// Decimal digits only (after trimming), no sign, no overflow.
inline bool parse_u64(std::string_view text, uint64_t& out) {
  text = trim(text);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

}  // namespace tessera::text
