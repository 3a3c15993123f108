// The agent's HTTP API (services/agent/agent_http.hpp) over real sockets on
// 127.0.0.1: an agent with a fake master, its AgentHttp in front, and the
// blocking HTTP client as the operator.

#include "agent/fake_master.hpp"
#include "services/agent/agent_http.hpp"
#include "services/agent/base64.hpp"
#include "services/http/client.hpp"
#include "services/http/recordio.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <future>
#include <map>
#include <sstream>

using namespace tessera;
using namespace tessera::agent_test;
using json = nlohmann::json;

namespace {

// An agent whose AgentHttp started first, as `tessera agent` starts them.
struct HttpAgent {
  std::shared_ptr<AgentHttpHandle> handle = std::make_shared<AgentHttpHandle>();
  std::unique_ptr<AgentHttp> edge;
  std::string address;
  std::unique_ptr<Cluster> c;

  explicit HttpAgent(const std::function<void(AgentConfig&)>& tweak = {}) {
    auto started = AgentHttp::start(http::ServerConfig{}, handle);
    REQUIRE(started);
    edge = std::move(*started);
    address = edge->address();
    c = std::make_unique<Cluster>([&](AgentConfig& a) {
      a.http = handle;
      a.http_address = address;
      if (tweak)
        tweak(a);
    });
  }
  ~HttpAgent() {
    edge->stop();
    c.reset();
  }

  http::ClientResponse post(const std::string& body) {
    auto r = http::request(address, "POST", "/api/v1", body);
    REQUIRE(r);
    return *r;
  }
  std::pair<int, json> call(const json& body) {
    auto r = post(body.dump());
    INFO(r.body);
    return {r.status, json::parse(r.body)};
  }
  http::ClientResponse get(const std::string& target) {
    auto r = http::request(address, "GET", target);
    REQUIRE(r);
    return *r;
  }
  // Launches a command task and waits until it reached state.
  void run(const std::string& id, const std::string& shell, State state) {
    c->master.send_to_agent(run_task(id, shell));
    c->master.wait_state(id, state);
  }
};

json read_call(const std::string& task, const std::string& path, int64_t offset = 0,
               int64_t length = 1024) {
  return {{"type", "READ_FILE"},
          {"read_file",
           {{"framework_id", "fw-1"},
            {"task_id", task},
            {"path", path},
            {"offset", offset},
            {"length", length}}}};
}

const json* find_task(const json& list, const std::string& id) {
  for (const auto& t : list)
    if (t["task_id"]["value"] == id)
      return &t;
  return nullptr;
}

// Every sample line of a Prometheus text exposition: name{labels} -> value.
// Fails the test on a line that is neither a sample nor a comment.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  // name: [a-zA-Z_:][a-zA-Z0-9_:]*, then optional {labels}, one space, a value.
  auto name_char = [](char c, bool first) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
           (!first && std::isdigit(static_cast<unsigned char>(c)));
  };
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    INFO(line);
    size_t i = 0;
    while (i < line.size() && name_char(line[i], i == 0))
      ++i;
    REQUIRE(i > 0);
    if (i < line.size() && line[i] == '{') {
      auto close = line.find('}', i);
      REQUIRE(close != std::string::npos);
      i = close + 1;
    }
    REQUIRE(i < line.size());
    REQUIRE(line[i] == ' ');
    auto value = line.substr(i + 1);
    REQUIRE(!value.empty());
    REQUIRE(value.find(' ') == std::string::npos);
    size_t used = 0;
    double v = std::stod(value, &used);
    REQUIRE(used == value.size());
    out[line.substr(0, i)] = v;
  }
  return out;
}

}  // namespace

TEST_CASE("GET_STATE lists a launched task, its executor and framework", "[agent_http]") {
  HttpAgent a;
  CHECK(a.c->master.with([](MasterState& s) { return s.http_address; }) == a.address);
  a.run("t1", "sleep 100", State::RUNNING);

  auto [status, state] = a.call({{"type", "GET_STATE"}});
  REQUIRE(status == 200);
  CHECK(state["type"] == "GET_STATE");
  const auto& s = state["get_state"];
  const auto* task = find_task(s["get_tasks"]["launched_tasks"], "t1");
  REQUIRE(task);
  CHECK((*task)["state"] == "TASK_RUNNING");
  CHECK((*task)["framework_id"]["value"] == "fw-1");
  CHECK((*task)["executor_id"]["value"] == "t1");
  CHECK((*task)["sandbox_directory"] == a.c->sandbox("t1").string());
  CHECK((*task)["agent_id"]["value"] == "agent-1");
  REQUIRE(s["get_executors"]["executors"].size() == 1);
  CHECK(s["get_executors"]["executors"][0]["executor_info"]["executor_id"]["value"] == "t1");
  REQUIRE(s["get_frameworks"]["frameworks"].size() == 1);
  CHECK(s["get_frameworks"]["frameworks"][0]["framework_info"]["id"]["value"] == "fw-1");

  auto [hs, health] = a.call({{"type", "GET_HEALTH"}});
  CHECK(health["get_health"]["healthy"] == true);
  auto [vs, version] = a.call({{"type", "GET_VERSION"}});
  CHECK(version["get_version"]["version_info"]["version"] == Agent::version);
  auto [as, agent] = a.call({{"type", "GET_AGENT"}});
  CHECK(agent["get_agent"]["agent_info"]["http_address"] == a.address);

  auto [cs, containers] = a.call({{"type", "GET_CONTAINERS"}});
  REQUIRE(cs == 200);
  const auto& list = containers["get_containers"]["containers"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["executor_id"]["value"] == "t1");
  CHECK(list[0].contains("limits"));
  CHECK(list[0].contains("resource_statistics"));

  a.c->master.send_to_agent(kill_task("t1"));
  a.c->master.wait_state("t1", State::KILLED);
  REQUIRE(wait_until([&] {
    auto [st, after] = a.call({{"type", "GET_TASKS"}});
    return find_task(after["get_tasks"]["launched_tasks"], "t1") == nullptr;
  }));

  // The agent gone, the edge answers 503.
  a.c->node->stop();
  auto gone = a.post(json{{"type", "GET_STATE"}}.dump());
  CHECK(gone.status == 503);
}

TEST_CASE("READ_FILE and /files/read read a task's stdout", "[agent_http]") {
  HttpAgent a;
  a.run("t1", "printf 'hello world'; mkdir -p sub; echo x > sub/x", State::FINISHED);

  auto [status, read] = a.call(read_call("t1", "stdout", 6, 5));
  REQUIRE(status == 200);
  CHECK(read["type"] == "READ_FILE");
  CHECK(read["read_file"]["size"] == 11);
  CHECK(base64_decode(read["read_file"]["data"].get<std::string>()) == "world");
  // framework_id may be left out: the task id is unique here.
  auto whole =
      a.call({{"type", "READ_FILE"}, {"read_file", {{"task_id", "t1"}, {"path", "stdout"}}}});
  CHECK(base64_decode(whole.second["read_file"]["data"].get<std::string>()) == "hello world");

  json list_call = {{"type", "LIST_FILES"}};
  list_call["list_files"] = {{"framework_id", {{"value", "fw-1"}}}, {"task_id", {{"value", "t1"}}}};
  auto [ls, listed] = a.call(list_call);
  REQUIRE(ls == 200);
  std::set<std::string> names;
  for (const auto& f : listed["list_files"]["file_infos"])
    names.insert(f["path"].get<std::string>());
  CHECK(names.count("stdout"));
  CHECK(names.count("sub"));
  auto [ss, sub] =
      a.call({{"type", "LIST_FILES"}, {"list_files", {{"task_id", "t1"}, {"path", "sub"}}}});
  REQUIRE(sub["list_files"]["file_infos"].size() == 1);
  CHECK(sub["list_files"]["file_infos"][0]["path"] == "sub/x");
  CHECK(sub["list_files"]["file_infos"][0]["mtime"].contains("nanoseconds"));

  auto r = a.get("/files/read?framework_id=fw-1&task_id=t1&path=stdout&offset=6&length=5");
  REQUIRE(r.status == 200);
  CHECK(r.headers["access-control-allow-origin"] == "*");
  auto body = json::parse(r.body);
  CHECK(body["data"] == "world");
  CHECK(body["offset"] == 6);
  CHECK(body["size"] == 11);
  auto size_only = json::parse(a.get("/files/read?task_id=t1&path=stdout&offset=-1").body);
  CHECK(size_only["data"] == "");
  CHECK(size_only["offset"] == 11);
  auto browse = a.get("/files/browse?framework_id=fw-1&task_id=t1&path=");
  REQUIRE(browse.status == 200);
  CHECK(browse.headers["access-control-allow-origin"] == "*");
  CHECK(json::parse(browse.body).is_array());
  auto missing = a.get("/files/read?task_id=t1&path=nothing-here");
  CHECK(missing.status == 404);
  CHECK(missing.headers["access-control-allow-origin"] == "*");
}

TEST_CASE("paths through a symlink or out of the sandbox are refused, never read", "[agent_http]") {
  HttpAgent a;
  a.run("t1", "ln -s /etc/passwd leak; ln -s / root; mkdir d; echo in > d/x", State::FINISHED);
  auto refused = [&](const std::string& path) {
    INFO(path);
    auto r = a.post(read_call("t1", path).dump());
    CHECK((r.status == 403 || r.status == 400));
    CHECK(r.body.find("root:") == std::string::npos);
    CHECK(json::parse(r.body).contains("error"));
    return r.status;
  };
  CHECK(refused("leak") == 403);
  CHECK(refused("root/etc/passwd") == 403);
  refused("leak/../x");
  refused("d/../leak");
  refused("d/../../../../etc/passwd");
  CHECK(refused("/etc/passwd") == 403);
  auto list = a.post(
      json{{"type", "LIST_FILES"}, {"list_files", {{"task_id", "t1"}, {"path", "root"}}}}.dump());
  CHECK(list.status == 403);
  auto files = a.get("/files/read?task_id=t1&path=leak");
  CHECK(files.status == 403);
  CHECK(files.body.find("root:") == std::string::npos);
  CHECK(files.headers["access-control-allow-origin"] == "*");
  // Listed as what they are, never followed.
  auto [ls, listed] = a.call({{"type", "LIST_FILES"}, {"list_files", {{"task_id", "t1"}}}});
  bool leak_listed = false;
  for (const auto& f : listed["list_files"]["file_infos"])
    if (f["path"] == "leak") {
      leak_listed = true;
      CHECK(f["symlink"] == true);
    }
  CHECK(leak_listed);
  // Inside the sandbox all is well.
  auto [st, in] = a.call(read_call("t1", "d/x"));
  CHECK(base64_decode(in["read_file"]["data"].get<std::string>()) == "in\n");
}

TEST_CASE("unknown tasks are 404, malformed calls 400 and counted", "[agent_http]") {
  HttpAgent a;
  CHECK(a.post(read_call("no-such-task", "stdout").dump()).status == 404);
  CHECK(a.get("/files/read?task_id=no-such-task&path=stdout").status == 404);
  CHECK(a.get("/files/browse?framework_id=fw-9&task_id=x").status == 404);
  CHECK(a.get("/no/such/endpoint").status == 404);

  auto before = a.edge->bad_calls();
  for (const auto& body :
       {std::string("{not json"), std::string("[]"), json{{"type", 7}}.dump(),
        json{{"type", "NO_SUCH_CALL"}}.dump(), json{{"type", "READ_FILE"}}.dump(),
        json{{"type", "READ_FILE"}, {"read_file", {{"task_id", "t"}, {"offset", "x"}}}}.dump(),
        json{{"type", "READ_FILE"}, {"read_file", {{"task_id", "t"}, {"offset", -2}}}}.dump(),
        json{{"type", "READ_FILE"}, {"read_file", {{"task_id", "t"}, {"path", 3}}}}.dump(),
        json{{"type", "LIST_FILES"}, {"list_files", {{"path", "x"}}}}.dump(),
        json{{"type", "READ_FILE"}, {"read_file", {{"task_id", "t"}, {"follow", "yes"}}}}.dump()}) {
    INFO(body);
    auto r = a.post(body);
    CHECK(r.status == 400);
    CHECK(json::parse(r.body).contains("error"));
  }
  CHECK(a.get("/files/read?task_id=t&offset=abc").status == 400);
  CHECK(a.edge->bad_calls() == before + 11);
  auto metrics = parse_prometheus(a.get("/metrics").body);
  CHECK(metrics["tessera_agent_api_bad_calls_total"] == double(before + 11));
  CHECK(a.get("/api/v1").status == 405);
  CHECK(http::request(a.address, "POST", "/metrics")->status == 405);
}

TEST_CASE("READ_FILE follow streams what the task writes until it ends", "[agent_http]") {
  HttpAgent a([](AgentConfig& c) { c.followers_max = 1; });
  a.run("echo", "for i in 1 2 3 4 5 6 7 8; do echo line-$i; sleep 0.25; done", State::RUNNING);
  auto follow = read_call("echo", "stdout");
  follow["read_file"]["follow"] = true;
  follow["read_file"].erase("length");

  struct Seen {
    std::mutex mu;
    std::vector<json> records;
    std::string data;
  };
  auto seen = std::make_shared<Seen>();
  auto streamed = std::async(std::launch::async, [&a, seen, body = follow.dump()] {
    http::RecordIoReader reader;
    return http::stream(
        a.address, "POST", "/api/v1", body,
        [&](std::string_view chunk) {
          reader.feed(chunk);
          while (auto record = reader.next()) {
            auto r = json::parse(*record);
            std::lock_guard<std::mutex> guard(seen->mu);
            CHECK(r["type"] == "DATA");
            CHECK(r["offset"] == seen->data.size());
            seen->data += *base64_decode(r["data"].get<std::string>());
            seen->records.push_back(std::move(r));
          }
          return true;
        },
        std::chrono::seconds(30));
  });
  auto first_data = [&] {
    std::lock_guard<std::mutex> guard(seen->mu);
    return seen->data;
  };
  REQUIRE(wait_until([&] { return !first_data().empty(); }));
  // Still running: what comes next was written after the stream started.
  CHECK(first_data().find("line-8") == std::string::npos);
  // One follower at most here.
  CHECK(a.post(follow.dump()).status == 503);

  REQUIRE(streamed.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  auto status = streamed.get();
  REQUIRE(status);
  CHECK(*status == 200);
  a.c->master.wait_state("echo", State::FINISHED);
  std::string expected;
  for (int i = 1; i <= 8; ++i)
    expected += "line-" + std::to_string(i) + "\n";
  std::lock_guard<std::mutex> guard(seen->mu);
  CHECK(seen->data == expected);
  CHECK(seen->records.size() > 1);
}

TEST_CASE("a follow stream of an ended task sends the file and ends", "[agent_http]") {
  HttpAgent a;
  a.run("done", "echo all of it", State::FINISHED);
  auto follow = read_call("done", "stdout");
  follow["read_file"]["follow"] = true;
  std::string data;
  http::RecordIoReader reader;
  auto status = http::stream(
      a.address, "POST", "/api/v1", follow.dump(),
      [&](std::string_view chunk) {
        reader.feed(chunk);
        while (auto record = reader.next())
          data += *base64_decode(json::parse(*record)["data"].get<std::string>());
        return true;
      },
      std::chrono::seconds(20));
  REQUIRE(status);
  CHECK(*status == 200);
  CHECK(data == "all of it\n");
  // A refused path gets its status, not a stream.
  follow["read_file"]["path"] = "../../x";
  CHECK(a.post(follow.dump()).status == 403);
}

TEST_CASE("/metrics is Prometheus text with tasks by state, and /metrics/snapshot has Mesos keys",
          "[agent_http]") {
  HttpAgent a;
  a.run("t1", "sleep 100", State::RUNNING);
  a.run("t2", "true", State::FINISHED);
  auto r = a.get("/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"].find("text/plain") == 0);
  auto metrics = parse_prometheus(r.body);
  CHECK(metrics["tessera_agent_tasks{state=\"TASK_RUNNING\"}"] == 1);
  CHECK(metrics["tessera_agent_tasks_terminal_total{state=\"TASK_FINISHED\"}"] == 1);
  CHECK(metrics.count("tessera_agent_executors_running"));
  CHECK(metrics.count("tessera_agent_status_update_retries_total"));
  CHECK(metrics.count("tessera_agent_container_ooms_total"));
  CHECK(metrics["tessera_agent_checkpoint_write_seconds_count"] >= 1);
  CHECK(metrics.count("tessera_http_requests_total"));
  CHECK(r.body.find("tessera_messages_received_total{") != std::string::npos);
  CHECK(r.body.find("tessera_messages_rejected_total{") != std::string::npos);

  auto snapshot = json::parse(a.get("/metrics/snapshot").body);
  CHECK(snapshot["slave/tasks_running"] == 1);
  CHECK(snapshot["slave/tasks_finished"] == 1);
  CHECK(snapshot["slave/cpus_total"] == 2);
  CHECK(snapshot["slave/mem_total"] == 1024);
  CHECK(snapshot["slave/registered"] == 1);
  CHECK(snapshot.contains("slave/executors_running"));
  CHECK(a.get("/health").status == 200);
  a.c->master.send_to_agent(kill_task("t1"));
  a.c->master.wait_state("t1", State::KILLED);
}
