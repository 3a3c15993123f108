#include "services/dns/names.hpp"

#include <vector>

namespace tessera::dns {

namespace {

char fold(char c) {
  if (c >= 'A' && c <= 'Z')
    return static_cast<char>(c - 'A' + 'a');
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
    return c;
  return '-';
}

}  // namespace

void lower_ascii(std::string& text) {
  for (auto& c : text)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
}

std::string sanitize_label(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), label_chars_max));
  for (char c : text)
    out.push_back(fold(c));
  auto first = out.find_first_not_of('-');
  if (first == std::string::npos)
    return {};
  out.erase(0, first);
  if (out.size() > label_chars_max)
    out.resize(label_chars_max);
  out.erase(out.find_last_not_of('-') + 1);
  return out;
}

std::string sanitize_labels(std::string_view text) {
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    auto dot = text.find('.', start);
    auto end = dot == std::string_view::npos ? text.size() : dot;
    auto label = sanitize_label(text.substr(start, end - start));
    if (!label.empty()) {
      if (!out.empty())
        out.push_back('.');
      out += label;
    }
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
  if (out.size() > name_chars_max)
    return {};
  return out;
}

std::optional<std::string> normalize_domain(std::string_view text) {
  while (!text.empty() && text.back() == '.')
    text.remove_suffix(1);
  if (text.empty())
    return std::nullopt;
  std::string lowered(text);
  lower_ascii(lowered);
  // Only names that survive sanitising unchanged: a domain is the
  // operator's choice, and a silently changed one answers nothing.
  if (sanitize_labels(lowered) != lowered)
    return std::nullopt;
  return lowered + ".";
}

std::optional<std::string> reversed_app_path(std::string_view text) {
  if (text.size() < 2 || text.front() != '/')
    return std::nullopt;
  std::vector<std::string> labels;
  size_t start = 1;
  while (start <= text.size()) {
    auto slash = text.find('/', start);
    auto end = slash == std::string_view::npos ? text.size() : slash;
    auto label = sanitize_label(text.substr(start, end - start));
    if (!label.empty())
      labels.push_back(std::move(label));
    if (slash == std::string_view::npos)
      break;
    start = slash + 1;
  }
  if (labels.empty())
    return std::nullopt;
  std::string out;
  for (auto it = labels.rbegin(); it != labels.rend(); ++it) {
    if (!out.empty())
      out.push_back('.');
    out += *it;
  }
  if (out.size() > name_chars_max)
    return std::nullopt;
  return out;
}

}  // namespace tessera::dns
