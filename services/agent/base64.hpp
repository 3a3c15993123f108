#pragma once
// Base64 (RFC 4648, with padding), as Mesos's v1 API carries file data in
// JSON (READ_FILE's "data"). Plain functions, no state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera {

inline std::string base64_encode(std::string_view in) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 |
                 uint32_t(uint8_t(in[i + 2]));
    for (int shift : {18, 12, 6, 0})
      out.push_back(alphabet[(v >> shift) & 63]);
  }
  size_t rest = in.size() - i;
  if (rest == 0)
    return out;
  uint32_t v = uint32_t(uint8_t(in[i])) << 16;
  if (rest == 2)
    v |= uint32_t(uint8_t(in[i + 1])) << 8;
  out.push_back(alphabet[(v >> 18) & 63]);
  out.push_back(alphabet[(v >> 12) & 63]);
  out.push_back(rest == 2 ? alphabet[(v >> 6) & 63] : '=');
  out.push_back('=');
  return out;
}

// Nothing when in is not padded base64.
inline std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  if (in.size() % 4 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=' && last && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      int d = value(c);
      if (d < 0 || pad > 0)
        return std::nullopt;
      v = v << 6 | uint32_t(d);
    }
    out.push_back(char((v >> 16) & 0xff));
    if (pad < 2)
      out.push_back(char((v >> 8) & 0xff));
    if (pad < 1)
      out.push_back(char(v & 0xff));
  }
  return out;
}

}  // namespace tessera
