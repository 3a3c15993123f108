#include "tools/tessera/api_client.hpp"

#include "tools/tessera/ops_client.hpp"
#include "tools/tessera/tls_flags.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>

namespace tessera::cli {

using json = nlohmann::json;

// j[key] when j is an object holding key, else null: answers are read
// leniently, a missing field prints as "-" rather than failing.
const json& field(const json& j, const char* key) {
  static const json null;
  if (!j.is_object())
    return null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

std::string text(const json& j, const char* key, const std::string& fallback) {
  auto& v = field(j, key);
  if (v.is_string())
    return v.get<std::string>().empty() ? fallback : v.get<std::string>();
  if (v.is_number() || v.is_boolean())
    return v.dump();
  return fallback;
}

double num(const json& j, const char* key) {
  auto& v = field(j, key);
  return v.is_number() ? v.get<double>() : 0;
}

std::string count(const json& j, const char* key) {
  return std::to_string(std::llround(num(j, key)));
}

// An array field as a list to loop over (empty when absent).
const json& list(const json& j, const char* key) {
  static const json empty = json::array();
  auto& v = field(j, key);
  return v.is_array() ? v : empty;
}

std::string joined(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (auto& p : parts)
    out += (out.empty() ? "" : sep) + p;
  return out;
}

// "1a2b3c4d…": enough of a deployment id for a progress line.
std::string short_id(const std::string& id) {
  return id.size() > 9 ? id.substr(0, 8) + "\u2026" : id;
}

// -- times ---------------------------------------------------------------------------

// Seconds since the epoch of "2026-12-07T14:00:00.000Z"; nullopt for
// anything else (null, a missing field).
std::optional<double> epoch_of(const json& t) {
  if (!t.is_string())
    return std::nullopt;
  std::tm tm{};
  double sec = 0;
  if (std::sscanf(t.get<std::string>().c_str(), "%d-%d-%dT%d:%d:%lf", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &sec) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + sec;
}

double now_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string secs(double s) {
  return std::to_string(std::llround(std::max(s, 0.0))) + " s";
}

// "12 s ago" for a timestamp, or the text as it came.
std::string ago(const json& t) {
  auto at = epoch_of(t);
  return at ? secs(now_epoch() - *at) + " ago" : (t.is_string() ? t.get<std::string>() : "-");
}

// The lines to print for a refused call: the server's message, then the
// invalid fields of a 422 and the deployments that lock the app of a 409.
std::string refusal_of(const http::ClientResponse& r) {
  auto body = json::parse(r.body, nullptr, false);
  auto& message = field(body, "message");
  if (!message.is_string())
    return "HTTP " + std::to_string(r.status) +
           (r.body.empty() ? "" : ": " + r.body.substr(0, 200));
  std::string out = message.get<std::string>();
  for (auto& d : list(body, "details")) {
    auto path = text(d, "path", "/");
    if (list(d, "errors").empty())
      out += "\n  " + path;
    for (auto& e : list(d, "errors"))
      out += "\n  " + path + ": " + (e.is_string() ? e.get<std::string>() : e.dump());
  }
  for (auto& d : list(body, "deployments"))
    out += "\n  locked by deployment " + text(d, "id") + " (--force overrides it)";
  return out;
}

// HOST:PORT of a Location header's URL.
std::string authority_of(std::string url) {
  if (auto scheme = url.find("://"); scheme != std::string::npos)
    url = url.substr(scheme + 3);
  if (auto slash = url.find('/'); slash != std::string::npos)
    url.resize(slash);
  return url;
}

expected<std::string> ApiClient::address() {
  if (at_.empty()) {
    auto at = OperatorClient(spec_, timeout_).address();  // HOST:PORT, http://, zk://
    if (!at)
      return at.error();
    at_ = *at;
  }
  return at_;
}

expected<json> ApiClient::answer_of(const http::ClientResponse& r) {
  status_ = r.status;
  if (r.status < 200 || r.status >= 300)
    return make_error(r.status == 503 ? Errc::overloaded : Errc::invalid_argument, refusal_of(r));
  if (r.body.empty())
    return json::object();
  try {
    return json::parse(r.body);
  } catch (const json::exception& e) {
    return make_error(Errc::malformed, what_ + "'s answer is not JSON: " + std::string(e.what()));
  }
}

expected<json> ApiClient::call(const std::string& method, const std::string& target,
                               const std::string& body) {
  auto at = address();
  if (!at)
    return at.error();
  auto tls = client_tls();
  if (!tls)
    return tls.error();
  for (int hop = 0; hop < 2; ++hop) {
    auto r = http::request(at_, method, target, body, "application/json", timeout_, auth_headers(),
                           *tls);
    if (!r) {
      auto reason = what(r.error());
      if (auto prefix = "cannot reach " + at_ + ": "; reason.rfind(prefix, 0) == 0)
        reason = reason.substr(prefix.size());
      else if (reason.rfind(at_ + ": ", 0) == 0)
        reason = reason.substr(at_.size() + 2);
      auto code = is(r.error(), Errc::connect_failed) ? Errc::connect_failed : Errc::timeout;
      return make_error(code, "cannot reach " + what_ + " at " + at_ + ": " + reason);
    }
    if (r->status == 307 && hop == 0 && r->headers.count("location")) {
      at_ = authority_of(r->headers["location"]);  // a standby master: once more, at the leader
      continue;
    }
    return answer_of(*r);
  }
  return make_error(Errc::connect_failed, what_ + " redirects in a loop");
}

bool transient(const caf::error& e) {
  return is(e, Errc::connect_failed) || is(e, Errc::timeout) || is(e, Errc::peer_lost) ||
         is(e, Errc::overloaded);
}

expected<std::string> read_definition(const std::string& file, const std::string& what) {
  std::string body;
  if (file == "-") {
    body.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return make_error(Errc::invalid_argument,
                        "cannot read " + file + ": " + std::strerror(errno));
    body.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto name = file == "-" ? std::string("stdin") : file;
  try {
    if (!json::parse(body).is_object())
      return make_error(Errc::invalid_argument, name + " is not " + what + " (a JSON object)");
  } catch (const json::exception& e) {
    return make_error(Errc::invalid_argument, name + " is not JSON: " + e.what());
  }
  return body;
}

}  // namespace tessera::cli
