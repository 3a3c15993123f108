// The operator API's calls (POST /api/v1, services/master/state_view_api.cpp)
// against a master with state - an agent registered, a framework subscribed
// with a task running - and its state view, in a Simulation: each call goes
// the way MasterHttp::api sends it (parsed JSON with a "type" string, posted
// to the view's inbox, StateView::api_call), reads answered by the view,
// writes forwarded to the master as OperatorCalls and answered when it
// replies, SUBSCRIBE opening a stream. Checks: every call is answered (at
// the latest once the view's call timeout passed) and every 200 answer that
// says it is JSON parses.
//
// The answer is collected with http::detail::sink_responder (a Responder
// with no connection: the server's sockets are not what is fuzzed here,
// http_request.fuzz.cpp reads requests).
//
// Input: records [kind][length u16][body]. kind % (calls + 2): a call type
// (every one the API knows, and one it does not), raw JSON (the body as
// the request's text), or advance virtual time (body's first byte % 4
// picks 1 s ... 10 min). A call's body: [patches (u8 % 8)] then each patch
// walks the call's JSON from the root (an existing key or element at each
// level) and puts a value there: ids heard from the master, task states,
// numbers at the edges, objects and lists of the API's own keys.
// Seeds: tests/fuzz/corpus/operator_api (one per call type, by hand).

#include "services/http/connection.hpp"
#include "services/master/state_view.hpp"
#include "tests/fuzz/fuzz_world.hpp"
#include "tests/fuzz/master_templates.hpp"

#include <nlohmann/json.hpp>

namespace {

using namespace tessera;
using json = nlohmann::json;

// What the API serves, and a type it does not.
const std::vector<std::string>& calls() {
  static const auto all = [] {
    auto out = operator_call_types();
    out.push_back("NOT_A_CALL");
    return out;
  }();
  return all;
}

const char* const keys[] = {"framework_id",  "agent_id",
                            "task_id",       "state",
                            "offset",        "limit",
                            "role",          "limits",
                            "quota_configs", "weight_infos",
                            "weight",        "grace_period_seconds",
                            "resources",     "max_grace_period",
                            "nanoseconds",   "framework_ids",
                            "roles",         "value",
                            "name",          "scalar",
                            "type",          "cpus",
                            "mem",           "reservation"};

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A valid call of this type, naming what the master knows.
json template_call(const std::string& type, const fuzz::Words& w) {
  auto id = [](const std::string& v) { return json{{"value", v}}; };
  auto agent = w.last("agentId"), framework = w.last("frameworkId");
  json args = json::object();
  if (type == "GET_TASKS")
    args = {{"framework_id", framework},
            {"agent_id", agent},
            {"state", "TASK_RUNNING"},
            {"offset", 0},
            {"limit", 10}};
  else if (type == "UPDATE_QUOTA")
    args = {{"quota_configs", {{{"role", "web"}, {"limits", {{"cpus", {{"value", 1}}}}}}}}};
  else if (type == "UPDATE_WEIGHTS")
    args = {{"weight_infos", {{{"role", "web"}, {"weight", 2}}}}};
  else if (type == "TEARDOWN")
    args = {{"framework_id", id(framework)}};
  else if (type == "KILL")
    args = {{"framework_id", id(framework)},
            {"task_id", id(w.last("taskId", "t1"))},
            {"grace_period_seconds", 1}};
  else if (type == "DRAIN_AGENT")
    args = {{"agent_id", id(agent)}, {"max_grace_period", {{"nanoseconds", 1000000000}}}};
  else if (type == "DEACTIVATE_AGENT" || type == "REACTIVATE_AGENT")
    args = {{"agent_id", id(agent)}};
  else if (type == "RESERVE_RESOURCES" || type == "UNRESERVE_RESOURCES")
    args = {
        {"agent_id", id(agent)},
        {"resources",
         {{{"name", "cpus"}, {"type", "SCALAR"}, {"scalar", {{"value", 1}}}, {"role", "web"}}}}};
  else if (type == "SUBSCRIBE")
    args = {{"framework_ids", {framework}}, {"roles", {"*"}}};
  return {{"type", type}, {lower(type), args}};
}

// Values led by the API's own vocabulary.
class JsonPatcher {
 public:
  JsonPatcher(fuzz::Input& in, const fuzz::Words& words) : in_(in), words_(words) {}

  void patch(json& j, int depth = 0) {
    bool descend = (in_.u8() & 1) != 0 && depth < 4;
    if (descend && j.is_object() && !j.empty()) {
      auto it = j.begin();
      std::advance(it, in_.u8() % j.size());
      return patch(it.value(), depth + 1);
    }
    if (descend && j.is_array() && !j.empty())
      return patch(j[in_.u8() % j.size()], depth + 1);
    if (j.is_object())
      j[keys[in_.u8() % std::size(keys)]] = value(depth);
    else if (j.is_array())
      j.push_back(value(depth));
    else
      j = value(depth);
  }

 private:
  json value(int depth) {
    static const char* const strings[] = {"TASK_RUNNING", "TASK_FINISHED", "TASK_BOGUS", "*",
                                          "web",          "SCALAR",        "RANGES",     "",
                                          "cpus",         "a/b",           "\xff\xfe"};
    static const double numbers[] = {0, 1, -1, 0.5, 1e300, -1e300, 4294967296.0, 1e15, 1e16};
    switch (in_.u8() % 10) {
      case 0:
      case 1: {
        auto pick = in_.u8();
        for (const char* name : {"agentId", "frameworkId", "taskId"})
          if (const auto* heard = words_.of(name); heard && pick-- == 0)
            return heard->back();
        return strings[pick % std::size(strings)];
      }
      case 2:
        return numbers[in_.u8() % std::size(numbers)];
      case 3:
        return static_cast<int64_t>(in_.u16()) - 1000;
      case 4:
        return (in_.u8() & 1) != 0;
      case 5:
        return nullptr;
      case 6:
        return std::string(in_.piece(32));
      case 7: {
        json o = json::object();
        if (depth < 4)
          o[keys[in_.u8() % std::size(keys)]] = value(depth + 1);
        return o;
      }
      case 8: {
        json a = json::array();
        if (depth < 4)
          for (int i = in_.u8() % 3; i > 0; --i)
            a.push_back(value(depth + 1));
        return a;
      }
      default:
        return json{{"value", value(depth + 1)}};
    }
  }

  fuzz::Input& in_;
  const fuzz::Words& words_;
};

void check(bool ok) {
  if (!ok)
    std::abort();
}

struct Answer {
  bool answered = false;
  int status = 0;
};

// The checks on one answer: valid JSON when it says so and succeeded.
void check_answer(const http::Response& r) {
  if (r.status != 200 || r.content_type != "application/json")
    return;
  const auto& body = r.shared_body ? *r.shared_body : r.body;
  if (body.empty())
    return;  // a stream's head
  check(json::accept(body));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::World world;
  fuzz::add_master(world);
  world.templates = fuzz::master_templates();
  StateViewConfig vc;
  vc.master = world.home.address_of("master");
  vc.allocator = world.home.address_of("master.allocator");
  vc.master_call_timeout = std::chrono::seconds(10);
  auto handle = std::make_shared<StateViewHandle>();
  if (!world.home.spawn<StateView>("master.state", vc, handle))
    std::abort();
  world.play(fuzz::master_flow());

  fuzz::Input in(data, size);
  for (int records = 0; records < 32 && !in.empty(); ++records) {
    const auto calls_count = calls().size();
    auto kind = in.u8() % (calls_count + 2);
    auto body_bytes = in.piece(4096);
    fuzz::Input body(reinterpret_cast<const uint8_t*>(body_bytes.data()), body_bytes.size());
    if (kind == calls_count + 1) {
      static constexpr Duration steps[] = {std::chrono::seconds(1), std::chrono::seconds(11),
                                           std::chrono::minutes(1), std::chrono::minutes(10)};
      world.sim.advance(steps[body.u8() % 4]);
      continue;
    }
    json call;
    if (kind == calls_count) {
      call = json::parse(body.rest(), nullptr, false);
    } else {
      call = template_call(calls()[kind], *world.words);
      JsonPatcher patcher(body, *world.words);
      for (int patches = body.u8() % 8; patches > 0; --patches)
        patcher.patch(call);
      // As it would arrive: request text (invalid UTF-8 replaced) parsed.
      call = json::parse(call.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    // As MasterHttp::api: JSON, an object with a "type" string, or a 400.
    if (call.is_discarded() || !call.is_object() || !call.contains("type") ||
        !call["type"].is_string())
      continue;
    auto answer = std::make_shared<Answer>();
    auto responder = http::detail::sink_responder([answer](http::Response r) {
      check(!answer->answered);
      answer->answered = true;
      answer->status = r.status;
      if (std::getenv("FUZZ_DEBUG"))
        std::fprintf(stderr, "answer %d %s\n", r.status, r.body.substr(0, 200).c_str());
      check_answer(r);
    });
    auto* view = handle->view;
    if (std::getenv("FUZZ_DEBUG"))
      std::fprintf(stderr, "call %s\n", call.dump().c_str());
    check(handle->inbox->post([view, call, responder] { view->api_call(call, responder); }));
    world.sim.run(fuzz::World::steps_max);
    if (!answer->answered)
      world.sim.advance(vc.master_call_timeout + std::chrono::seconds(1));
    check(answer->answered && answer->status != 500);
  }
  return 0;
}
