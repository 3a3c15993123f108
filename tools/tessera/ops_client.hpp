#pragma once
// What the operator commands (`tessera agents`, `tasks`, `quota set`, ...)
// share: finding the master's HTTP API, calling it, and printing tables.
//
// --master is the master's HTTP address: HOST:PORT, http(s)://HOST:PORT, or
// zk://HOSTS/PATH (the leading master's, read from its election node). The
// default is $TESSERA_MASTER, else 127.0.0.1:6050 (a master listening on
// 5050 serves HTTP on 6050). A standby master answers 307 with the leader's
// address; the client follows it once.
//
// Exit codes: 0 done; 1 the call failed or the master cannot be reached (one
// line on stderr saying which); 2 a bad command line.

#include "runtime/error.hpp"
#include "services/http/client.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::cli {

std::string default_master_http();

// Adds --master (and keeps its value in master), and --token.
void add_master_http_flag(CLI::App* sub, std::string& master);

// --token TOKEN: the bearer token every HTTP call of this command sends
// (default: $TESSERA_TOKEN), for APIs started with --credentials. Also adds
// the client's --tls-cert, --tls-key and --tls-ca (tls_flags.hpp), which
// every HTTP call of the command (OperatorClient, call_agent, ApiClient)
// then speaks HTTPS with.
void add_token_flag(CLI::App* sub);
// The headers that carry it; empty without a token.
http::Headers auth_headers();

class OperatorClient {
 public:
  OperatorClient(std::string master, std::chrono::milliseconds timeout)
      : master_(std::move(master)), timeout_(timeout) {}

  // POST /api/v1 with call; the JSON answer of a 200, else an error whose
  // text is the one line to print.
  expected<nlohmann::json> call(const nlohmann::json& call);
  // POST /api/v1 and hand each RecordIO record to on_record until it
  // returns false or the stream ends; the stream's status or an error.
  expected<int> stream(const nlohmann::json& call,
                       const std::function<bool(const nlohmann::json&)>& on_record);
  // The HTTP address actually used (after zk:// and redirects).
  expected<std::string> address();

 private:
  std::string master_;
  std::string resolved_;
  std::chrono::milliseconds timeout_;
};

// A POST /api/v1 to an agent's HTTP API (HOST:PORT).
expected<nlohmann::json> call_agent(const std::string& agent_http, const nlohmann::json& call,
                                    std::chrono::milliseconds timeout);

// The task (live or completed) and the HTTP address of its agent.
expected<std::pair<nlohmann::json, std::string>> locate(OperatorClient& client,
                                                        const std::string& task,
                                                        const std::string& framework);
// Prints a task's stdout (or stderr) from its agent's sandbox; follow: and
// what it writes until it ends. framework may be empty.
expected<void> print_task_output(const std::string& master, const std::string& task_id,
                                 const std::string& framework, bool stderr_file, bool follow,
                                 std::chrono::milliseconds timeout);

// Prints "tessera: <what>" on stderr and returns 1.
int failed(const std::string& what);

// A read's answer: its JSON (as_json) or table(answer); an error as failed().
int print_answer(const expected<nlohmann::json>& answer, bool as_json,
                 const std::function<void(const nlohmann::json&)>& table);

// Left-aligned columns, two spaces apart, a header row first; notes[r]
// (if given) are printed under row r, indented.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows,
                 const std::vector<std::vector<std::string>>& notes = {});

// The scalar value of name in a Mesos-style resources list.
double scalar_of(const nlohmann::json& resources, const std::string& name);
// "1.5", "512", "0": short numbers for tables.
std::string number(double value);
// The "value" of an id object ({"value": "x"}), or the string itself.
std::string id_of(const nlohmann::json& id);

std::string base64_decode(std::string_view text);

}  // namespace tessera::cli
