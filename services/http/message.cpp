#include "services/http/message.hpp"

#include "runtime/log.hpp"

#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <limits>

namespace tessera::http::detail {

namespace beast_http = boost::beast::http;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 9110 token characters: what a header name may be made of.
bool is_token(std::string_view name) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  if (name.empty())
    return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && extra.find(c) == std::string_view::npos)
      return false;
  return true;
}

bool is_safe_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// The server frames every body itself; a handler's copy would contradict it.
bool is_framing_header(std::string_view name) {
  auto n = lower(name);
  return n == "content-length" || n == "transfer-encoding" || n == "connection";
}

// Programming errors in handlers: worth one line per process, not one per request.
void warn_once(std::atomic<bool>& flag, std::string_view what) {
  if (!flag.exchange(true))
    log().warn("http: {} (logged once)", what);
}

int checked_status(int status) {
  static std::atomic<bool> warned{false};
  if (status >= 200 && status <= 599)
    return status;
  warn_once(warned, fmt::format("a handler answered with status {}; sent 500 instead", status));
  return 500;
}

std::string_view reason(int status) {
  auto known = beast_http::int_to_status(static_cast<unsigned>(status));
  if (known == beast_http::status::unknown)
    return "Status";
  auto text = beast_http::obsolete_reason(known);
  return {text.data(), text.size()};
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

void append_extra_headers(std::string& out, const Headers& headers) {
  static std::atomic<bool> warned{false};
  for (const auto& [name, value] : headers) {
    if (is_framing_header(name))
      continue;
    if (!is_token(name) || !is_safe_value(value)) {
      warn_once(warned,
                fmt::format("dropped a response header that could split the message: '{}'", name));
      continue;
    }
    append_header(out, name, value);
  }
}

void append_framing(std::string& out, const Head& head) {
  switch (head.framing) {
    case Framing::length:
      append_header(out, "Content-Length", std::to_string(head.content_length));
      break;
    case Framing::chunked:
      append_header(out, "Transfer-Encoding", "chunked");
      break;
    case Framing::until_close:
      break;
  }
  if (!head.keep_alive || head.framing == Framing::until_close)
    append_header(out, "Connection", "close");
  else if (head.http10)
    append_header(out, "Connection", "keep-alive");
}

}  // namespace

void limit_parser(RequestParser& parser, const ServerConfig& config) {
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(config.header_bytes_max, std::numeric_limits<uint32_t>::max())));
  parser.body_limit(config.request_body_bytes_max);
  parser.eager(true);
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
      continue;
    }
    if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::multimap<std::string, std::string> parse_query(std::string_view query) {
  std::multimap<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    auto key = pair.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    out.emplace(percent_decode(key, true), percent_decode(value, true));
  }
  return out;
}

Request make_request(BeastRequest&& message, std::string peer) {
  Request r;
  auto method = message.method_string();
  r.method.assign(method.data(), method.size());
  auto target = message.target();
  r.target.assign(target.data(), target.size());
  std::string_view t = r.target;
  auto q = t.find('?');
  r.path = percent_decode(t.substr(0, q), false);
  if (q != std::string_view::npos)
    r.query = parse_query(t.substr(q + 1));
  for (const auto& field : message) {
    auto name = lower({field.name_string().data(), field.name_string().size()});
    std::string_view value{field.value().data(), field.value().size()};
    auto [it, inserted] = r.headers.emplace(name, value);
    if (!inserted)
      it->second.append(", ").append(value);
  }
  r.body = std::move(message.body());
  r.peer = std::move(peer);
  return r;
}

void append_head(std::string& out, const Head& head) {
  int status = checked_status(head.status);
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
  out.append(reason(status)).append("\r\n");
  if (!head.content_type.empty() && is_safe_value(head.content_type))
    append_header(out, "Content-Type", head.content_type);
  if (head.headers != nullptr)
    append_extra_headers(out, *head.headers);
  append_framing(out, head);
  out.append("\r\n");
}

void append_chunk(std::string& out, std::string_view data) {
  char size[2 * sizeof(size_t)];
  auto [end, ec] = std::to_chars(size, size + sizeof(size), data.size(), 16);
  static_cast<void>(ec);  // cannot fail: the buffer holds any size_t in hex
  out.append(size, end).append("\r\n").append(data).append("\r\n");
}

}  // namespace tessera::http::detail

namespace tessera::http {

std::string Request::query_value(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

}  // namespace tessera::http
