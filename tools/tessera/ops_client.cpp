#include "tools/tessera/ops_client.hpp"

#include "services/election/zk_election.hpp"
#include "services/http/client.hpp"
#include "services/http/recordio.hpp"
#include "tools/tessera/tls_flags.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace tessera::cli {

namespace {

// zk://HOSTS/PATH: the leading master's HTTP address, from its election node.
expected<std::string> leader_http(const std::string& spec, std::chrono::milliseconds timeout) {
  auto election = ZkElection::open(spec, {10'000, "", ""});
  if (!election)
    return election.error();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto view = (*election)->view();
    if (view.leader && !view.leader_http.empty())
      return view.leader_http;
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(Errc::connect_failed, view.leader
                                                  ? "the leading master (" + *view.leader +
                                                        ") has not published an HTTP address"
                                                  : "no leading master found through " + spec);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// HOST:PORT of an http:// or https:// URL's authority, or text itself.
std::string strip_scheme(std::string text) {
  if (text.rfind("http://", 0) == 0)
    text = text.substr(7);
  else if (text.rfind("https://", 0) == 0)
    text = text.substr(8);
  if (auto slash = text.find('/'); slash != std::string::npos)
    text.resize(slash);
  return text;
}

std::string error_of(const http::ClientResponse& r) {
  try {
    auto body = nlohmann::json::parse(r.body);
    if (body.is_object() && body.contains("error") && body["error"].is_string())
      return body["error"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  return "HTTP " + std::to_string(r.status) + (r.body.empty() ? "" : ": " + r.body.substr(0, 200));
}

}  // namespace

std::string default_master_http() {
  if (const char* env = std::getenv("TESSERA_MASTER"); env && *env)
    return env;
  return "127.0.0.1:6050";
}

void add_master_http_flag(CLI::App* sub, std::string& master) {
  master = default_master_http();
  sub->add_option("--master", master,
                  "The master's HTTP API: HOST:PORT, http://HOST:PORT or zk://HOSTS/PATH "
                  "(default: $TESSERA_MASTER, else 127.0.0.1:6050)");
  add_token_flag(sub);
}

namespace {

// One command runs per process: the token its flag gave.
std::string& token_flag() {
  static std::string token;
  return token;
}

}  // namespace

void add_token_flag(CLI::App* sub) {
  sub->add_option("--token", token_flag(),
                  "Bearer token for APIs that need credentials (default: $TESSERA_TOKEN)");
  add_client_tls_flags(sub);
}

http::Headers auth_headers() {
  std::string token = token_flag();
  if (token.empty())
    if (const char* env = std::getenv("TESSERA_TOKEN"); env && *env)
      token = env;
  if (token.empty())
    return {};
  return {{"Authorization", "Bearer " + token}};
}

expected<std::string> OperatorClient::address() {
  if (!resolved_.empty())
    return resolved_;
  if (master_.rfind("zk://", 0) == 0) {
    auto leader = leader_http(master_, timeout_);
    if (!leader)
      return make_error(Errc::connect_failed,
                        "cannot find the master through " + master_ + ": " + what(leader.error()));
    resolved_ = *leader;
  } else {
    resolved_ = strip_scheme(master_);
  }
  return resolved_;
}

expected<nlohmann::json> OperatorClient::call(const nlohmann::json& call) {
  auto at = address();
  if (!at)
    return at.error();
  auto tls = client_tls();
  if (!tls)
    return tls.error();
  for (int hop = 0; hop < 2; ++hop) {
    auto r = http::request(*at, "POST", "/api/v1", call.dump(), "application/json", timeout_,
                           auth_headers(), *tls);
    if (!r)
      return make_error(Errc::connect_failed,
                        "cannot reach the master at " + *at + ": " + what(r.error()));
    if (r->status == 307 && hop == 0 && r->headers.count("location")) {
      resolved_ = strip_scheme(r->headers["location"]);
      *at = resolved_;
      continue;  // a standby: once more, at the leader
    }
    if (r->status != 200)
      return make_error(Errc::invalid_argument, error_of(*r));
    try {
      return nlohmann::json::parse(r->body);
    } catch (const nlohmann::json::exception& e) {
      return make_error(Errc::malformed,
                        std::string("the master's answer is not JSON: ") + e.what());
    }
  }
  return make_error(Errc::connect_failed, "the masters redirect in a loop");
}

expected<int> OperatorClient::stream(const nlohmann::json& call,
                                     const std::function<bool(const nlohmann::json&)>& on_record) {
  auto at = address();
  if (!at)
    return at.error();
  auto tls = client_tls();
  if (!tls)
    return tls.error();
  http::RecordIoReader reader;
  std::string refusal;
  bool stop = false;
  auto status = http::stream(
      *at, "POST", "/api/v1", call.dump(),
      [&](std::string_view chunk) {
        reader.feed(chunk);
        while (auto record = reader.next()) {
          try {
            auto event = nlohmann::json::parse(*record);
            if (!on_record(event)) {
              stop = true;
              return false;
            }
          } catch (const nlohmann::json::exception&) {
            refusal.append(*record);  // an error body is one plain JSON object, not framed
          }
        }
        if (reader.error()) {
          refusal.append(chunk);
          return false;
        }
        return true;
      },
      std::chrono::milliseconds::zero(), auth_headers(), *tls);
  if (!status)
    return make_error(Errc::connect_failed,
                      "cannot reach the master at " + *at + ": " + what(status.error()));
  if (*status != 200 && !stop)
    return make_error(Errc::invalid_argument, error_of({*status, refusal, {}}));
  return *status;
}

expected<nlohmann::json> call_agent(const std::string& agent_http, const nlohmann::json& call,
                                    std::chrono::milliseconds timeout) {
  auto tls = client_tls();
  if (!tls)
    return tls.error();
  auto r = http::request(agent_http, "POST", "/api/v1", call.dump(), "application/json", timeout,
                         auth_headers(), *tls);
  if (!r)
    return make_error(Errc::connect_failed,
                      "cannot reach the agent at " + agent_http + ": " + what(r.error()));
  if (r->status != 200)
    return make_error(Errc::invalid_argument, error_of(*r));
  try {
    return nlohmann::json::parse(r->body);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::malformed, std::string("the agent's answer is not JSON: ") + e.what());
  }
}

int failed(const std::string& what) {
  std::fprintf(stderr, "tessera: %s\n", what.c_str());
  return 1;
}

int print_answer(const expected<nlohmann::json>& answer, bool as_json,
                 const std::function<void(const nlohmann::json&)>& table) {
  if (!answer)
    return failed(what(answer.error()));
  if (as_json)
    std::printf("%s\n", answer->dump(2).c_str());
  else
    table(*answer);
  return 0;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows,
                 const std::vector<std::vector<std::string>>& notes) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i)
    width[i] = header[i].size();
  for (auto& row : rows)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  };
  print(header);
  for (size_t r = 0; r < rows.size(); ++r) {
    print(rows[r]);
    if (r < notes.size())
      for (auto& note : notes[r])
        std::printf("    %s\n", note.c_str());
  }
}

double scalar_of(const nlohmann::json& resources, const std::string& name) {
  double sum = 0;
  if (!resources.is_array())
    return 0;
  for (auto& r : resources)
    if (r.value("name", "") == name && r.contains("scalar"))
      sum += r["scalar"].value("value", 0.0);
  return sum;
}

std::string number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", value);
  if (value >= 1000)
    std::snprintf(buf, sizeof buf, "%.0f", value);
  return buf;
}

std::string id_of(const nlohmann::json& id) {
  if (id.is_string())
    return id.get<std::string>();
  if (id.is_object() && id.contains("value") && id["value"].is_string())
    return id["value"].get<std::string>();
  return "";
}

std::string base64_decode(std::string_view text) {
  if (text.empty())
    return {};
  std::string out(3 * ((text.size() + 3) / 4), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0)
    return {};
  // EVP_DecodeBlock counts the padding's zero bytes: take them off.
  size_t pad = 0;
  if (text.size() >= 1 && text.back() == '=')
    ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=')
    ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace tessera::cli
