// The operator commands: `tessera agents|frameworks|tasks|roles`, `task log|kill`,
// `quota set|remove`, `weights set`,
// `agent drain|deactivate|reactivate|reserve|unreserve`,
// `events` and `top`. Each is a client of the master's HTTP API
// (ops_client.hpp); tables for people, --json for scripts.

#include "tools/tessera/command.hpp"
#include "services/common/json_forms.hpp"
#include "tools/tessera/ops_client.hpp"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace tessera::cli {

namespace {

using json = nlohmann::json;

struct OpsOptions {
  std::string master;
  bool as_json = false;
  double timeout_s = 10;
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  }
};

CLI::App* ops_command(CLI::App& parent, const char* name, const char* help, OpsOptions& o,
                      bool json_flag = true) {
  auto* sub = parent.add_subcommand(name, help);
  add_master_http_flag(sub, o.master);
  if (json_flag)
    sub->add_flag("--json", o.as_json, "Print the API's JSON instead of a table");
  sub->add_option("--timeout", o.timeout_s, "Seconds to wait for the master")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  return sub;
}

// Runs one call; prints its JSON (--json) or hands it to table().
int read_call(const OpsOptions& o, const json& call,
              const std::function<void(const json&)>& table) {
  OperatorClient client(o.master, o.timeout());
  return print_answer(client.call(call), o.as_json, table);
}

int write_call(const OpsOptions& o, const json& call, const std::string& done) {
  OperatorClient client(o.master, o.timeout());
  auto answer = client.call(call);
  if (!answer)
    return failed(what(answer.error()));
  std::printf("%s\n", done.c_str());
  return 0;
}

std::string used_of_total(const json& used, const json& total, const char* name) {
  return number(scalar_of(used, name)) + "/" + number(scalar_of(total, name));
}

// The roles that hold reservations in resources: "web,batch", or "-".
std::string reserved_roles(const json& resources) {
  std::set<std::string> roles;
  for (auto& r : resources)
    if (r.value("role", "*") != "*")
      roles.insert(r.value("role", ""));
  std::string out;
  for (auto& r : roles)
    out += (out.empty() ? "" : ",") + r;
  return out.empty() ? "-" : out;
}

void agents_table(const json& answer) {
  std::vector<std::vector<std::string>> rows;
  for (auto& a : answer["get_agents"]["agents"]) {
    auto& info = a["agent_info"];
    rows.push_back({id_of(info["id"]), info.value("hostname", ""), a.value("state", ""),
                    a["drain_info"].value("state", ""),
                    a.value("deactivated", false) ? "yes" : "no",
                    used_of_total(a["allocated_resources"], a["total_resources"], "cpus"),
                    used_of_total(a["allocated_resources"], a["total_resources"], "mem"),
                    reserved_roles(a["total_resources"]), a.value("http_address", "")});
  }
  print_table(
      {"ID", "HOSTNAME", "STATE", "DRAIN", "DEACTIVATED", "CPUS", "MEM", "RESERVED FOR", "HTTP"},
      rows);
}

void frameworks_table(const json& answer) {
  std::vector<std::vector<std::string>> rows;
  for (auto& f : answer["get_frameworks"]["frameworks"]) {
    auto& info = f["framework_info"];
    std::string roles;
    for (auto& r : info["roles"])
      roles += (roles.empty() ? "" : ",") + r.get<std::string>();
    rows.push_back({id_of(info["id"]), info.value("name", ""), roles,
                    f.value("connected", false) ? "yes" : "no",
                    number(scalar_of(f["allocated_resources"], "cpus")),
                    number(scalar_of(f["allocated_resources"], "mem"))});
  }
  print_table({"ID", "NAME", "ROLES", "CONNECTED", "CPUS", "MEM"}, rows);
}

void tasks_table(const json& answer) {
  std::vector<std::vector<std::string>> rows;
  auto add = [&](const json& list) {
    for (auto& t : list)
      rows.push_back({id_of(t["task_id"]), t.value("name", ""), id_of(t["framework_id"]),
                      id_of(t["agent_id"]), t.value("state", ""),
                      number(scalar_of(t["resources"], "cpus")),
                      number(scalar_of(t["resources"], "mem"))});
  };
  add(answer["get_tasks"]["tasks"]);
  add(answer["get_tasks"]["completed_tasks"]);
  print_table({"ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "CPUS", "MEM"}, rows);
}

void roles_table(const json& answer) {
  std::vector<std::vector<std::string>> rows;
  for (auto& r : answer["get_roles"]["roles"]) {
    std::string quota = "-";
    if (r.contains("quota")) {
      quota.clear();
      for (auto& q : r["quota"]["limit"])
        quota += (quota.empty() ? "" : ",") + q.value("name", "") + ":" +
                 number(q["scalar"].value("value", 0.0));
    }
    rows.push_back(
        {r.value("name", ""), number(r.value("weight", 1.0)),
         std::to_string(r["frameworks"].size()), number(scalar_of(r["allocated"], "cpus")),
         number(scalar_of(r["allocated"], "mem")), number(scalar_of(r["offered"], "cpus")),
         number(scalar_of(r["reserved"], "cpus")), number(scalar_of(r["reserved"], "mem")), quota});
  }
  print_table({"ROLE", "WEIGHT", "FRAMEWORKS", "CPUS", "MEM", "OFFERED CPUS", "RESERVED CPUS",
               "RESERVED MEM", "QUOTA"},
              rows);
}

// "running" -> "TASK_RUNNING".
std::string task_state(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s.rfind("TASK_", 0) == 0 ? s : "TASK_" + s;
}

// -- task log -------------------------------------------------------------------

struct TaskLogOptions : OpsOptions {
  std::string task, framework;
  bool stderr_file = false;
  bool follow = false;
};

int task_log(const TaskLogOptions& o) {
  auto printed =
      print_task_output(o.master, o.task, o.framework, o.stderr_file, o.follow, o.timeout());
  return printed ? 0 : failed(what(printed.error()));
}

// -- events and top ---------------------------------------------------------------

std::string event_line(const json& e) {
  auto type = e.value("type", "");
  std::string seq = std::to_string(e.value("sequence", uint64_t{0}));
  if (type == "TASK_ADDED") {
    auto& t = e["task_added"]["task"];
    return seq + " TASK_ADDED " + id_of(t["task_id"]) + " (" + t.value("name", "") + ") of " +
           id_of(t["framework_id"]) + " on " + id_of(t["agent_id"]) + ": " + t.value("state", "");
  }
  if (type == "TASK_UPDATED") {
    auto& u = e["task_updated"];
    std::string msg = u["status"].value("message", "");
    return seq + " TASK_UPDATED " + id_of(u["status"]["task_id"]) + ": " + u.value("state", "") +
           (msg.empty() ? "" : " (" + msg + ")");
  }
  if (type == "AGENT_ADDED" || type == "AGENT_UPDATED") {
    auto& a = e[type == "AGENT_ADDED" ? "agent_added" : "agent_updated"]["agent"];
    return seq + " " + type + " " + id_of(a["agent_info"]["id"]) + " " +
           a["agent_info"].value("hostname", "") + ": " + a.value("state", "") +
           (a["drain_info"].value("state", "NONE") == "NONE"
                ? ""
                : ", " + a["drain_info"].value("state", ""));
  }
  if (type == "AGENT_REMOVED")
    return seq + " AGENT_REMOVED " + id_of(e["agent_removed"]["agent_id"]);
  if (type == "FRAMEWORK_ADDED" || type == "FRAMEWORK_UPDATED") {
    auto& f = e[type == "FRAMEWORK_ADDED" ? "framework_added" : "framework_updated"]["framework"];
    return seq + " " + type + " " + id_of(f["framework_info"]["id"]) + " (" +
           f["framework_info"].value("name", "") + ")" +
           (f.value("connected", false) ? "" : ", disconnected");
  }
  if (type == "FRAMEWORK_REMOVED")
    return seq + " FRAMEWORK_REMOVED " + id_of(e["framework_removed"]["framework_info"]["id"]);
  if (type == "SUBSCRIBED") {
    auto& s = e["subscribed"]["get_state"];
    return seq + " SUBSCRIBED: " + std::to_string(s["get_agents"]["agents"].size()) + " agents, " +
           std::to_string(s["get_frameworks"]["frameworks"].size()) + " frameworks, " +
           std::to_string(s["get_tasks"]["tasks"].size()) + " tasks";
  }
  return seq + " " + type;
}

struct EventsOptions : OpsOptions {
  std::vector<std::string> frameworks, roles;
  uint64_t count = 0;  // stop after this many events; 0: never
};

json subscribe_call(const EventsOptions& o) {
  json args = json::object();
  if (!o.frameworks.empty())
    args["framework_ids"] = o.frameworks;
  if (!o.roles.empty())
    args["roles"] = o.roles;
  return {{"type", "SUBSCRIBE"}, {"subscribe", args}};
}

int events(const EventsOptions& o) {
  OperatorClient client(o.master, o.timeout());
  uint64_t seen = 0, expected_seq = 0;
  auto status = client.stream(subscribe_call(o), [&](const json& e) {
    auto seq = e.value("sequence", uint64_t{0});
    if (seq != expected_seq)
      std::fprintf(stderr, "tessera: events %llu to %llu were missed\n",
                   static_cast<unsigned long long>(expected_seq),
                   static_cast<unsigned long long>(seq));
    expected_seq = seq + 1;
    std::printf("%s\n", o.as_json ? e.dump().c_str() : event_line(e).c_str());
    std::fflush(stdout);
    return o.count == 0 || ++seen < o.count;
  });
  if (!status)
    return failed(what(status.error()));
  return 0;
}

// The cluster as top shows it, kept from the event stream.
struct TopState {
  std::map<std::string, json> agents, frameworks, tasks;  // tasks by framework/id
  uint64_t sequence = 0;
  void apply(const json& e) {
    sequence = e.value("sequence", uint64_t{0});
    auto type = e.value("type", "");
    auto key = [](const json& t) { return id_of(t["framework_id"]) + "/" + id_of(t["task_id"]); };
    if (type == "SUBSCRIBED") {
      auto& s = e["subscribed"]["get_state"];
      agents.clear(), frameworks.clear(), tasks.clear();
      for (auto& a : s["get_agents"]["agents"])
        agents[id_of(a["agent_info"]["id"])] = a;
      for (auto& f : s["get_frameworks"]["frameworks"])
        frameworks[id_of(f["framework_info"]["id"])] = f;
      for (auto& t : s["get_tasks"]["tasks"])
        tasks[key(t)] = t;
    } else if (type == "TASK_ADDED") {
      tasks[key(e["task_added"]["task"])] = e["task_added"]["task"];
    } else if (type == "TASK_UPDATED") {
      auto& u = e["task_updated"];
      auto k = id_of(u["framework_id"]) + "/" + id_of(u["status"]["task_id"]);
      if (tasks.count(k))
        tasks[k]["state"] = u["state"];
    } else if (type == "AGENT_ADDED" || type == "AGENT_UPDATED") {
      auto& a = e[type == "AGENT_ADDED" ? "agent_added" : "agent_updated"]["agent"];
      agents[id_of(a["agent_info"]["id"])] = a;
    } else if (type == "AGENT_REMOVED") {
      agents.erase(id_of(e["agent_removed"]["agent_id"]));
    } else if (type == "FRAMEWORK_ADDED" || type == "FRAMEWORK_UPDATED") {
      auto& f = e[type == "FRAMEWORK_ADDED" ? "framework_added" : "framework_updated"]["framework"];
      frameworks[id_of(f["framework_info"]["id"])] = f;
    } else if (type == "FRAMEWORK_REMOVED") {
      frameworks.erase(id_of(e["framework_removed"]["framework_info"]["id"]));
    }
  }
  void draw(bool clear) const {
    if (clear)
      std::printf("\033[H\033[2J");
    double cpus = 0, cpus_used = 0, mem = 0, mem_used = 0;
    for (auto& [id, a] : agents) {
      cpus += scalar_of(a["total_resources"], "cpus");
      mem += scalar_of(a["total_resources"], "mem");
    }
    std::map<std::string, int> by_state;
    for (auto& [k, t] : tasks) {
      auto state = t.value("state", "");
      ++by_state[state];
      if (state == "TASK_STAGING" || state == "TASK_STARTING" || state == "TASK_RUNNING" ||
          state == "TASK_KILLING") {
        cpus_used += scalar_of(t["resources"], "cpus");
        mem_used += scalar_of(t["resources"], "mem");
      }
    }
    std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%H:%M:%S", std::localtime(&now));
    std::printf("tessera top - %s  agents %zu  frameworks %zu  tasks %zu  (event %llu)\n", when,
                agents.size(), frameworks.size(), tasks.size(),
                static_cast<unsigned long long>(sequence));
    std::printf("cpus %s/%s used   mem %s/%s MiB used\n", number(cpus_used).c_str(),
                number(cpus).c_str(), number(mem_used).c_str(), number(mem).c_str());
    std::string states;
    for (auto& [s, n] : by_state)
      states += s + ":" + std::to_string(n) + "  ";
    std::printf("%s\n\n", states.c_str());
    std::vector<std::vector<std::string>> rows;
    for (auto& [k, t] : tasks) {
      if (rows.size() >= 40)
        break;
      rows.push_back({id_of(t["task_id"]), t.value("name", ""), id_of(t["agent_id"]),
                      t.value("state", ""), number(scalar_of(t["resources"], "cpus")),
                      number(scalar_of(t["resources"], "mem"))});
    }
    print_table({"TASK", "NAME", "AGENT", "STATE", "CPUS", "MEM"}, rows);
    std::fflush(stdout);
  }
};

struct TopOptions : EventsOptions {
  double interval_s = 1;
  uint64_t iterations = 0;  // redraws, then exit; 0: until Ctrl-C
};

int top(const TopOptions& o) {
  OperatorClient client(o.master, o.timeout());
  TopState state;
  auto last = std::chrono::steady_clock::now() - std::chrono::hours(1);
  uint64_t drawn = 0;
  bool tty = isatty(fileno(stdout));
  auto interval = std::chrono::duration<double>(o.interval_s);
  // Redrawn at most once an interval, on an event or a heartbeat.
  auto status = client.stream(subscribe_call(o), [&](const json& e) {
    state.apply(e);
    auto now = std::chrono::steady_clock::now();
    if (now - last < interval && e.value("type", "") != "SUBSCRIBED")
      return true;
    last = now;
    state.draw(tty);
    return o.iterations == 0 || ++drawn < o.iterations;
  });
  if (!status)
    return failed(what(status.error()));
  return 0;
}

}  // namespace

// The task (live or completed) and the HTTP address of its agent.
expected<std::pair<json, std::string>> locate(OperatorClient& client, const std::string& task,
                                              const std::string& framework) {
  json args = json::object();
  if (!framework.empty())
    args["framework_id"] = framework;
  auto tasks = client.call({{"type", "GET_TASKS"}, {"get_tasks", args}});
  if (!tasks)
    return tasks.error();
  std::vector<json> found;
  for (const char* list : {"tasks", "completed_tasks"})
    for (auto& t : (*tasks)["get_tasks"][list])
      if (id_of(t["task_id"]) == task)
        found.push_back(t);
  if (found.empty())
    return make_error(Errc::invalid_argument, "no task " + task);
  auto agent = id_of(found.front()["agent_id"]);
  auto agents = client.call({{"type", "GET_AGENTS"}});
  if (!agents)
    return agents.error();
  for (auto& a : (*agents)["get_agents"]["agents"])
    if (id_of(a["agent_info"]["id"]) == agent) {
      auto http = a.value("http_address", "");
      if (http.empty())
        return make_error(Errc::invalid_argument,
                          "agent " + agent + " has no HTTP API to read the log from");
      return std::make_pair(found.front(), http);
    }
  return make_error(Errc::invalid_argument, "the agent of task " + task + " (" + agent +
                                                ") is gone, and its sandbox with it");
}

expected<void> print_task_output(const std::string& master, const std::string& task_id,
                                 const std::string& framework, bool stderr_file, bool follow,
                                 std::chrono::milliseconds timeout) {
  OperatorClient client(master, timeout);
  auto where = locate(client, task_id, framework);
  if (!where)
    return where.error();
  auto& [task, agent] = *where;
  json read = {{"framework_id", id_of(task["framework_id"])},
               {"task_id", task_id},
               {"path", stderr_file ? "stderr" : "stdout"},
               {"offset", 0}};
  if (!follow) {
    uint64_t offset = 0;
    for (;;) {
      read["offset"] = offset;
      read["length"] = 1 << 20;
      auto chunk = call_agent(agent, {{"type", "READ_FILE"}, {"read_file", read}}, timeout);
      if (!chunk)
        return chunk.error();
      auto data = base64_decode((*chunk)["read_file"].value("data", ""));
      std::fwrite(data.data(), 1, data.size(), stdout);
      offset += data.size();
      if (data.empty() || offset >= (*chunk)["read_file"].value("size", uint64_t{0}))
        return {};
    }
  }
  read["follow"] = true;
  OperatorClient at_agent(agent, timeout);
  auto status = at_agent.stream({{"type", "READ_FILE"}, {"read_file", read}}, [](const json& r) {
    auto data = base64_decode(r.value("data", ""));
    std::fwrite(data.data(), 1, data.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (!status)
    return status.error();
  return {};
}

std::vector<Command> add_ops_commands(CLI::App& app, CLI::App* agent) {
  std::vector<Command> out;
  {
    auto o = std::make_shared<OpsOptions>();
    auto* sub = ops_command(app, "agents", "List the cluster's agents", *o);
    out.push_back({sub, [o] { return read_call(*o, {{"type", "GET_AGENTS"}}, agents_table); }});
  }
  {
    auto o = std::make_shared<OpsOptions>();
    auto* sub = ops_command(app, "frameworks", "List the frameworks", *o);
    out.push_back({sub, [o] {
                     return read_call(*o, {{"type", "GET_FRAMEWORKS"}}, frameworks_table);
                   }});
  }
  {
    struct TasksOptions : OpsOptions {
      std::string state, framework, agent;
      size_t limit = 0;
    };
    auto o = std::make_shared<TasksOptions>();
    auto* sub = ops_command(app, "tasks", "List tasks (live, then recently completed)", *o);
    sub->add_option("--state", o->state, "Only tasks in this state (running, TASK_FINISHED, ...)");
    sub->add_option("--framework", o->framework, "Only this framework's tasks");
    sub->add_option("--agent", o->agent, "Only tasks on this agent");
    sub->add_option("--limit", o->limit, "At most this many tasks");
    out.push_back(
        {sub, [o] {
           json args = json::object();
           if (!o->state.empty())
             args["state"] = task_state(o->state);
           if (!o->framework.empty())
             args["framework_id"] = o->framework;
           if (!o->agent.empty())
             args["agent_id"] = o->agent;
           if (o->limit)
             args["limit"] = o->limit;
           return read_call(*o, {{"type", "GET_TASKS"}, {"get_tasks", args}}, tasks_table);
         }});
  }
  {
    auto o = std::make_shared<OpsOptions>();
    auto* sub = ops_command(app, "roles", "Roles: weights, quota, what they hold", *o);
    out.push_back({sub, [o] { return read_call(*o, {{"type", "GET_ROLES"}}, roles_table); }});
  }
  auto* task = app.add_subcommand("task", "Read a task's log or kill it");
  task->require_subcommand(1);
  {
    auto o = std::make_shared<TaskLogOptions>();
    auto* sub = ops_command(*task, "log", "Print a task's stdout (or stderr)", *o, false);
    sub->add_option("ID", o->task, "The task's id")->required();
    sub->add_option("--framework", o->framework, "Its framework, when the id is not unique");
    sub->add_flag("--stderr", o->stderr_file, "Print stderr instead of stdout");
    sub->add_flag("--follow,-f", o->follow, "Keep printing what the task writes until it ends");
    out.push_back({sub, [o] { return task_log(*o); }});
  }
  {
    struct KillOptions : OpsOptions {
      std::string task, framework;
      double grace_s = 0;
    };
    auto o = std::make_shared<KillOptions>();
    auto* sub = ops_command(*task, "kill", "Kill a task", *o, false);
    sub->add_option("ID", o->task, "The task's id")->required();
    sub->add_option("--framework", o->framework, "Its framework, when the id is not unique");
    sub->add_option("--grace", o->grace_s, "Seconds between SIGTERM and SIGKILL")
        ->check(CLI::Range(0.0, 86'400.0));
    out.push_back(
        {sub, [o] {
           json args = {{"task_id", o->task}};
           if (!o->framework.empty())
             args["framework_id"] = o->framework;
           if (o->grace_s > 0)
             args["grace_period_seconds"] = o->grace_s;
           return write_call(*o, {{"type", "KILL"}, {"kill", args}}, "killing task " + o->task);
         }});
  }
  auto* quota = app.add_subcommand("quota", "Set or remove a role's quota");
  quota->require_subcommand(1);
  {
    struct QuotaOptions : OpsOptions {
      std::string role;
      double cpus = 0, mem = 0, disk = 0, gpus = 0;
    };
    auto o = std::make_shared<QuotaOptions>();
    auto* sub = ops_command(*quota, "set", "Limit what a role may hold", *o, false);
    sub->add_option("ROLE", o->role, "The role")->required();
    sub->add_option("--cpus", o->cpus, "CPUs")->check(CLI::NonNegativeNumber);
    sub->add_option("--mem", o->mem, "Memory, MiB")->check(CLI::NonNegativeNumber);
    sub->add_option("--disk", o->disk, "Disk, MiB")->check(CLI::NonNegativeNumber);
    sub->add_option("--gpus", o->gpus, "GPUs")->check(CLI::NonNegativeNumber);
    out.push_back(
        {sub, [o, sub] {
           json limits = json::object();
           for (auto [name, v] :
                {std::pair{"cpus", o->cpus}, {"mem", o->mem}, {"disk", o->disk}, {"gpus", o->gpus}})
             if (sub->count(std::string("--") + name))
               limits[name] = {{"value", v}};
           if (limits.empty()) {
             std::fprintf(stderr,
                          "tessera: quota set: give --cpus, --mem, --disk or "
                          "--gpus (see --help)\n");
             return 2;
           }
           json call = {
               {"type", "UPDATE_QUOTA"},
               {"update_quota", {{"quota_configs", {{{"role", o->role}, {"limits", limits}}}}}}};
           return write_call(*o, call, "quota of role " + o->role + " set");
         }});
    auto r = std::make_shared<QuotaOptions>();
    auto* remove = ops_command(*quota, "remove", "Remove a role's quota", *r, false);
    remove->add_option("ROLE", r->role, "The role")->required();
    out.push_back({remove, [r] {
                     json call = {
                         {"type", "UPDATE_QUOTA"},
                         {"update_quota",
                          {{"quota_configs", {{{"role", r->role}, {"limits", json::object()}}}}}}};
                     return write_call(*r, call, "quota of role " + r->role + " removed");
                   }});
  }
  auto* weights = app.add_subcommand("weights", "Set roles' weights");
  weights->require_subcommand(1);
  {
    struct WeightsOptions : OpsOptions {
      std::vector<std::string> pairs;
    };
    auto o = std::make_shared<WeightsOptions>();
    auto* sub = ops_command(*weights, "set", "Set weights: ROLE=W ...", *o, false);
    sub->add_option("ROLE=WEIGHT", o->pairs, "Roles and their weights (> 0)")->required();
    out.push_back(
        {sub, [o] {
           json infos = json::array();
           for (auto& p : o->pairs) {
             auto eq = p.find('=');
             char* end = nullptr;
             double w = eq == std::string::npos ? 0 : std::strtod(p.c_str() + eq + 1, &end);
             if (eq == std::string::npos || eq == 0 || !end || *end != '\0' || !(w > 0)) {
               std::fprintf(stderr,
                            "tessera: weights set: '%s' is not ROLE=WEIGHT with a "
                            "weight above 0\n",
                            p.c_str());
               return 2;
             }
             infos.push_back({{"role", p.substr(0, eq)}, {"weight", w}});
           }
           return write_call(
               *o, {{"type", "UPDATE_WEIGHTS"}, {"update_weights", {{"weight_infos", infos}}}},
               "weights set");
         }});
  }
  for (auto [name, type, help, done] :
       {std::tuple{"drain", "DRAIN_AGENT", "Stop offering an agent and kill its tasks",
                   "draining agent "},
        {"deactivate", "DEACTIVATE_AGENT", "Stop offering an agent; its tasks run on",
         "deactivated agent "},
        {"reactivate", "REACTIVATE_AGENT", "Offer a deactivated or drained agent again",
         "reactivated agent "}}) {
    struct AgentOptions : OpsOptions {
      std::string id;
      double grace_s = 0;
    };
    auto o = std::make_shared<AgentOptions>();
    auto* sub = ops_command(*agent, name, help, *o, false);
    sub->add_option("ID", o->id, "The agent's id (see `tessera agents`)")->required();
    if (std::string(name) == "drain")
      sub->add_option("--grace", o->grace_s, "At most this many seconds of grace per task")
          ->check(CLI::Range(0.0, 86'400.0));
    std::string type_s = type, done_s = done, key = type_s;
    for (auto& c : key)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(
        {sub, [o, type_s, done_s, key] {
           json args = {{"agent_id", o->id}};
           if (o->grace_s > 0)
             args["max_grace_period"] = {{"nanoseconds", static_cast<int64_t>(o->grace_s * 1e9)}};
           return write_call(*o, {{"type", type_s}, {key, args}}, done_s + o->id);
         }});
  }
  for (auto [name, type, help, done] :
       {std::tuple{"reserve", "RESERVE_RESOURCES",
                   "Reserve an agent's unreserved resources for roles", "reserved "},
        {"unreserve", "UNRESERVE_RESOURCES", "Return dynamically reserved resources to all roles",
         "unreserved "}}) {
    struct ReserveOptions : OpsOptions {
      std::string id, resources;
    };
    auto o = std::make_shared<ReserveOptions>();
    auto* sub = ops_command(*agent, name, help, *o, false);
    sub->add_option("ID", o->id, "The agent's id (see `tessera agents`)")->required();
    sub->add_option("RESOURCES", o->resources, "Each with its role, as 'cpus(web):2;mem(web):512'")
        ->required();
    std::string type_s = type, done_s = done, key = type_s;
    for (auto& c : key)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(
        {sub, [o, type_s, done_s, key, name = std::string(name)] {
           auto r = Resources::parse(o->resources);
           if (!r || r->empty() || !r->reserved(any_role).empty()) {
             std::fprintf(stderr,
                          "tessera: agent %s: '%s' is not a list of resources each "
                          "with a role, as 'cpus(web):2;mem(web):512'%s%s\n",
                          name.c_str(), o->resources.c_str(), r ? "" : ": ",
                          r ? "" : what(r.error()).c_str());
             return 2;
           }
           json args = {{"agent_id", {{"value", o->id}}}, {"resources", resources_json(*r)}};
           return write_call(*o, {{"type", type_s}, {key, args}},
                             done_s + r->to_string() + " on agent " + o->id);
         }});
  }
  {
    auto o = std::make_shared<EventsOptions>();
    auto* sub = ops_command(app, "events", "Print the master's event stream", *o);
    sub->add_option("--framework", o->frameworks, "Only these frameworks' events");
    sub->add_option("--role", o->roles, "Only these roles' events");
    sub->add_option("--count", o->count, "Stop after this many events");
    out.push_back({sub, [o] { return events(*o); }});
  }
  {
    auto o = std::make_shared<TopOptions>();
    auto* sub =
        ops_command(app, "top", "A live view of the cluster's resources and tasks", *o, false);
    sub->add_option("--interval", o->interval_s, "Seconds between redraws, at least")
        ->check(CLI::Range(0.05, 3600.0))
        ->capture_default_str();
    sub->add_option("--iterations", o->iterations, "Redraw this many times, then exit");
    out.push_back({sub, [o] { return top(*o); }});
  }
  return out;
}

}  // namespace tessera::cli
