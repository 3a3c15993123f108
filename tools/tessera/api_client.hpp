#pragma once
// What the framework commands (`tessera app ...`, `tessera job ...`) share:
// a client of a framework's JSON HTTP API (found by address, zk:// or a
// standby's redirect), lenient readers of its answers, times as the APIs
// write them, and definition files.

#include "runtime/error.hpp"
#include "services/http/client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tessera::cli {

using json = nlohmann::json;

// -- reading answers: j[key] when j is an object holding key, else null. A
// missing field prints as "-" rather than failing.
const nlohmann::json& field(const nlohmann::json& j, const char* key);
std::string text(const nlohmann::json& j, const char* key, const std::string& fallback = "-");
double num(const nlohmann::json& j, const char* key);
std::string count(const nlohmann::json& j, const char* key);
// An array field as a list to loop over (empty when absent).
const nlohmann::json& list(const nlohmann::json& j, const char* key);
std::string joined(const std::vector<std::string>& parts, const std::string& sep = ", ");
// "1a2b3c4d…": enough of an id for a progress line.
std::string short_id(const std::string& id);

// -- times: "2026-12-07T14:00:00.000Z" as seconds since the epoch.
std::optional<double> epoch_of(const nlohmann::json& t);
double now_epoch();
std::string secs(double s);
// "12 s ago" for a timestamp, or the text as it came.
std::string ago(const nlohmann::json& t);

// The lines to print for a refused call: the server's message, then the
// invalid fields of a 422 and the deployments that lock an app of a 409.
std::string refusal_of(const http::ClientResponse& r);
// HOST:PORT of a Location header's URL.
std::string authority_of(std::string url);

class ApiClient {
 public:
  // spec: HOST:PORT, http://HOST:PORT or zk://HOSTS/PATH (the leading
  // master's HTTP edge); what names the API in errors ("the apps API").
  ApiClient(std::string spec, std::chrono::milliseconds timeout, std::string what)
      : spec_(std::move(spec)), what_(std::move(what)), timeout_(timeout) {}

  // The JSON answer of a 2xx ({} when empty), else an error whose text is
  // what to print: Errc::connect_failed, timeout or peer_lost when the API
  // could not be asked, overloaded for a 503, invalid_argument otherwise.
  expected<json> call(const std::string& method, const std::string& target,
                      const std::string& body = "");
  int status() const { return status_; }

 private:
  expected<std::string> address();
  expected<json> answer_of(const http::ClientResponse& r);

  std::string spec_, what_, at_;
  std::chrono::milliseconds timeout_;
  int status_ = 0;
};

// The error of a call worth retrying (cannot reach, timeout, overloaded).
bool transient(const caf::error& e);

// The definition in file ('-': stdin), checked to be a JSON object; what
// names it in errors ("an app definition").
expected<std::string> read_definition(const std::string& file, const std::string& what);

}  // namespace tessera::cli
