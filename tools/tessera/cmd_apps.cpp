// The apps framework's commands: `tessera app add|list|show|update|scale|
// restart|remove|plan|rollback|promote|abort|kill`, `tessera deployments`
// and `tessera queue`. Each is a client of the framework's Marathon-style
// /v2 HTTP API (docs/apps.md); tables for people, --json for scripts, and
// --wait follows the deployment a change started until it ends.
//
// --apps is the API's address: HOST:PORT or http://HOST:PORT (zk://HOSTS/PATH
// finds the leading master, whose HTTP edge serves /v2 in `tessera cluster`).
// The default is $TESSERA_APPS, else the master's HTTP address.
//
// Exit codes: 0 done; 1 the call failed or the API cannot be reached (one
// line "tessera: ..." on stderr, then the server's details), the deployment
// waited for did not succeed, or `app plan` says the app does not fit; 2 a
// bad command line or a definition file that cannot be read as JSON.

#include "tools/tessera/command.hpp"
#include "tools/tessera/api_client.hpp"
#include "services/http/client.hpp"
#include "tools/tessera/ops_client.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <thread>

namespace tessera::cli {

namespace {

using json = nlohmann::json;

// -- the client ----------------------------------------------------------------------

std::string default_apps_http() {
  if (const char* env = std::getenv("TESSERA_APPS"); env && *env)
    return env;
  return default_master_http();
}

struct AppsOptions {
  std::string apps;
  bool as_json = false;
  double timeout_s = 10;
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  }
};

// The apps framework's /v2 API.
class AppsClient : public ApiClient {
 public:
  explicit AppsClient(const AppsOptions& o) : ApiClient(o.apps, o.timeout(), "the apps API") {}
};

// -- ids and files -------------------------------------------------------------------

// CLI11 check: something that can go into a URL path as it is.
CLI::Validator path_safe(const std::string& what, bool slashes) {
  return CLI::Validator(
      [what, slashes](std::string& v) -> std::string {
        auto bad = [&](unsigned char c) {
          return c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' ||
                 (!slashes && c == '/');
        };
        bool empty = v.find_first_not_of('/') == std::string::npos;
        for (unsigned char c : v)
          if (bad(c))
            return "'" + v + "' is not " + what;
        return empty ? "'" + v + "' is not " + what : std::string();
      },
      what, what);
}

// "/shop/web" from "shop/web", "/shop/web" or "shop/web/".
std::string app_id(std::string id) {
  while (!id.empty() && id.back() == '/')
    id.pop_back();
  return !id.empty() && id.front() == '/' ? id : "/" + id;
}

std::string app_path(const std::string& id) {
  return "/v2/apps" + app_id(id);
}

// -- deployments: one line of progress -----------------------------------------------

bool finished(const std::string& state) {
  return state == "success" || state == "failed" || state == "canceled" || state == "rolled_back";
}

std::string counts_of(const json& t) {
  return count(t, "newHealthy") + "/" + count(t, "target") + " new healthy, " +
         count(t, "oldInstances") + " old";
}

// "upgrade /shop/web: 2/3 new healthy, 1 old" (with the state unless it is
// running), then with_times ", 12 s (deadline in 588 s)".
std::string progress_of(const json& d, bool with_times) {
  auto& t = field(d, "tessera");
  auto state = text(t, "state", "");
  std::vector<std::string> apps;
  for (auto& a : list(d, "affectedApps"))
    apps.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  std::string out = text(t, "kind", "") + " " + joined(apps, ",") + ": ";
  out += (state == "running" || state.empty() ? "" : state + ", ") + counts_of(t);
  if (state == "canary")
    out += ", waiting for promote or abort";
  auto started = epoch_of(field(t, "startedAt"));
  if (!with_times || !started)
    return out;
  auto end = epoch_of(field(t, "finishedAt"));
  out += ", " + secs(end.value_or(now_epoch()) - *started);
  if (auto deadline = epoch_of(field(t, "deadline")); deadline && !finished(state))
    out += *deadline > now_epoch() ? " (deadline in " + secs(*deadline - now_epoch()) + ")"
                                   : " (deadline passed)";
  return out;
}

// The columns of the terminal stderr is, 0 when unknown.
size_t terminal_columns() {
  winsize ws{};
  return ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

// line cut to columns characters (UTF-8 aware, for the ellipsis).
std::string fit(const std::string& line, size_t columns) {
  size_t seen = 0;
  for (size_t i = 0; i < line.size(); ++i)
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80 && ++seen > columns)
      return line.substr(0, i);
  return line;
}

// One live line on stderr: rewritten in place on a terminal, else printed
// again only when what it says (times aside) changes.
class ProgressLine {
 public:
  ProgressLine() : tty_(::isatty(STDERR_FILENO) != 0) {}
  void show(const std::string& line, const std::string& key) {
    if (tty_) {
      auto columns = terminal_columns();
      std::fprintf(stderr, "\r\033[K%s",
                   columns > 1 ? fit(line, columns - 1).c_str() : line.c_str());
      shown_ = true;
    } else if (key != key_) {
      std::fprintf(stderr, "%s\n", line.c_str());
      key_ = key;
    }
    std::fflush(stderr);
  }
  void end() {
    if (shown_)
      std::fputc('\n', stderr);
    shown_ = false;
  }

 private:
  bool tty_;
  bool shown_ = false;
  std::string key_;
};

struct WaitOptions {
  bool wait = false;
  double wait_timeout_s = 600;
};

int deployment_ended(const json& d, const std::string& id) {
  auto& t = field(d, "tessera");
  auto state = text(t, "state", "");
  if (state == "success")
    return 0;
  auto reason = text(t, "reason", "");
  std::string how = state == "failed"     ? "failed"
                    : state == "canceled" ? "was canceled"
                                          : "was rolled back";
  return failed("deployment " + id + " " + how + (reason.empty() ? "" : ": " + reason));
}

// Polls GET /v2/deployments/{id} every 250 ms until it ends or the time is up.
int wait_for(const AppsOptions& o, const WaitOptions& w, const std::string& id) {
  AppsClient client(o);
  ProgressLine line;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(w.wait_timeout_s);
  auto head = "deployment " + short_id(id) + " ";
  for (;;) {
    auto d = client.call("GET", "/v2/deployments/" + id);
    if (d) {
      line.show(head + progress_of(*d, true), progress_of(*d, false));
      if (finished(text(field(*d, "tessera"), "state", ""))) {
        line.end();
        return deployment_ended(*d, id);
      }
    } else if (transient(d.error())) {
      line.show(head + "(asking again: " + what(d.error()) + ")", what(d.error()));
    } else {
      line.end();
      return failed("deployment " + id + ": " + what(d.error()));
    }
    if (std::chrono::steady_clock::now() >= give_up) {
      line.end();
      return failed("gave up waiting for deployment " + id + " after " + number(w.wait_timeout_s) +
                    " s" + " (--wait-timeout); it goes on, see `tessera deployments`");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// -- commands that start a deployment -------------------------------------------------

struct ChangeOptions : AppsOptions, WaitOptions {
  std::string id, file, task;
  bool force = false;
  uint64_t instances = 0;
};

std::string forced(const std::string& target, const ChangeOptions& o) {
  return o.force ? target + "?force=true" : target;
}

// The deployment a change started: "deploymentId", or POST /v2/apps's
// "deployments": [{"id"}].
std::string deployment_of(const json& answer) {
  auto id = text(answer, "deploymentId", "");
  auto& started = list(answer, "deployments");
  return id.empty() && !started.empty() ? text(started[0], "id", "") : id;
}

// Runs the call, says what it started (e.g. "scaling /shop/web to 5: version
// V, deployment D") or prints its JSON, and with --wait follows the deployment.
int change(const ChangeOptions& o, const std::string& method, const std::string& target,
           const std::string& body, const std::string& done) {
  AppsClient client(o);
  auto answer = client.call(method, target, body);
  if (!answer)
    return failed(what(answer.error()));
  auto deployment = deployment_of(*answer);
  if (o.as_json) {
    std::printf("%s\n", answer->dump(2).c_str());
  } else {
    std::vector<std::string> parts;
    if (auto version = text(*answer, "version", ""); !version.empty())
      parts.push_back("version " + version);
    if (!deployment.empty())
      parts.push_back("deployment " + deployment);
    std::printf("%s%s\n", done.c_str(), parts.empty() ? "" : (": " + joined(parts)).c_str());
  }
  std::fflush(stdout);
  if (!o.wait)
    return 0;
  if (deployment.empty()) {
    std::fprintf(stderr, "tessera: no deployment was started; nothing to wait for\n");
    return 0;
  }
  return wait_for(o, o, deployment);
}

// -- app list and show ----------------------------------------------------------------

// The state of each running deployment, by id.
expected<std::map<std::string, std::string>> deployment_states(AppsClient& client) {
  auto all = client.call("GET", "/v2/deployments");
  if (!all)
    return all.error();
  std::map<std::string, std::string> out;
  if (all->is_array())
    for (auto& d : *all)
      out[text(d, "id")] = text(field(d, "tessera"), "state", "running");
  return out;
}

std::string healthy_of(const json& app) {
  return list(app, "healthChecks").empty() ? "-" : count(app, "tasksHealthy");
}

void apps_table(const json& answer, const std::map<std::string, std::string>& states) {
  std::vector<std::vector<std::string>> rows;
  for (auto& a : list(answer, "apps")) {
    std::vector<std::string> deployments;
    for (auto& d : list(a, "deployments")) {
      auto it = states.find(text(d, "id"));
      deployments.push_back(it == states.end() ? "running" : it->second);
    }
    rows.push_back({text(a, "id"), count(a, "tasksRunning") + "/" + count(a, "instances"),
                    healthy_of(a), number(num(a, "cpus")), number(num(a, "mem")),
                    text(a, "version"), deployments.empty() ? "-" : joined(deployments, ",")});
  }
  print_table({"ID", "INSTANCES", "HEALTHY", "CPUS", "MEM", "VERSION", "DEPLOYMENT"}, rows);
}

int list_apps(const AppsOptions& o) {
  AppsClient client(o);
  auto answer = client.call("GET", "/v2/apps");
  if (!answer)
    return failed(what(answer.error()));
  if (o.as_json) {
    std::printf("%s\n", answer->dump(2).c_str());
    return 0;
  }
  std::map<std::string, std::string> states;
  bool deploying = false;
  for (auto& a : list(*answer, "apps"))
    deploying = deploying || !list(a, "deployments").empty();
  if (deploying) {
    auto got = deployment_states(client);
    if (!got)
      return failed(what(got.error()));
    states = std::move(*got);
  }
  apps_table(*answer, states);
  return 0;
}

void line(const char* label, const std::string& value) {
  std::printf("%-14s %s\n", label, value.c_str());
}

std::string command_of(const json& app) {
  if (auto cmd = text(app, "cmd", ""); !cmd.empty())
    return cmd;
  std::vector<std::string> args;
  for (auto& a : list(app, "args"))
    args.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  return args.empty() ? "-" : joined(args, " ");
}

std::string constraints_of(const json& app) {
  std::vector<std::string> out;
  for (auto& c : list(app, "constraints")) {
    std::vector<std::string> words;
    if (c.is_array())
      for (auto& p : c)
        words.push_back(p.is_string() ? p.get<std::string>() : p.dump());
    out.push_back(joined(words, ":"));
  }
  return out.empty() ? "-" : joined(out);
}

std::string health_checks_of(const json& app) {
  std::vector<std::string> out;
  for (auto& h : list(app, "healthChecks")) {
    auto path = text(h, "path", "");
    out.push_back(text(h, "protocol", "HTTP") + (path.empty() ? "" : " " + path));
  }
  return out.empty() ? "-" : joined(out);
}

std::string ports_of(const json& app) {
  std::vector<std::string> out;
  for (auto& p : list(app, "portDefinitions")) {
    auto name = text(p, "name", "");
    out.push_back(count(p, "port") + (name.empty() ? "" : " (" + name + ")"));
  }
  return out.empty() ? "-" : joined(out);
}

std::string upgrade_of(const json& app) {
  auto& u = field(app, "upgradeStrategy");
  return "minimumHealthCapacity " + text(u, "minimumHealthCapacity") + ", maximumOverCapacity " +
         text(u, "maximumOverCapacity") + ", canaryInstances " + text(u, "canaryInstances", "0") +
         ", progressDeadlineSeconds " + text(u, "progressDeadlineSeconds", "600");
}

void app_fields(const json& app) {
  line("id:", text(app, "id"));
  line("command:", command_of(app));
  if (auto image = text(field(field(app, "container"), "docker"), "image", ""); !image.empty())
    line("image:", image);
  line("instances:", count(app, "instances") + " wanted, " + count(app, "tasksRunning") +
                         " running, " + count(app, "tasksHealthy") + " healthy, " +
                         count(app, "tasksUnhealthy") + " unhealthy, " + count(app, "tasksStaged") +
                         " staged");
  auto& t = field(app, "tessera");
  if (num(t, "waiting") > 0 || num(t, "backoffSeconds") > 0)
    line("waiting:", count(t, "waiting") + " to launch, backoff " + secs(num(t, "backoffSeconds")));
  line("resources:", "cpus " + number(num(app, "cpus")) + ", mem " + number(num(app, "mem")) +
                         ", disk " + number(num(app, "disk")) + ", gpus " +
                         number(num(app, "gpus")));
  line("ports:", ports_of(app));
  line("constraints:", constraints_of(app));
  line("health checks:", health_checks_of(app));
  line("upgrade:", upgrade_of(app));
  line("version:", text(app, "version"));
  auto& info = field(app, "versionInfo");
  line("config change:", text(info, "lastConfigChangeAt"));
  line("scaled:", text(info, "lastScalingAt"));
  line("last good:", text(t, "lastGoodVersion"));
}

std::string task_health(const json& task) {
  auto& results = list(task, "healthCheckResults");
  if (results.empty())
    return "-";
  for (auto& r : results)
    if (!field(r, "alive").is_boolean() || !field(r, "alive").get<bool>())
      return "unhealthy";
  return "healthy";
}

void tasks_table(const json& app) {
  std::vector<std::vector<std::string>> rows;
  for (auto& t : list(app, "tasks")) {
    std::vector<std::string> ports;
    for (auto& p : list(t, "ports"))
      ports.push_back(p.dump());
    rows.push_back({text(t, "id"), text(t, "host"), ports.empty() ? "-" : joined(ports, ","),
                    text(t, "state"), task_health(t), text(t, "version"), text(t, "startedAt")});
  }
  std::printf("\n");
  print_table({"ID", "HOST", "PORTS", "STATE", "HEALTH", "VERSION", "STARTED"}, rows);
}

void deployment_of_app(AppsClient& client, const std::string& id) {
  auto d = client.call("GET", "/v2/deployments/" + id);
  if (!d) {
    std::printf("\ndeployment %s: %s\n", id.c_str(), what(d.error()).c_str());
    return;
  }
  auto& t = field(*d, "tessera");
  std::printf("\ndeployment %s %s\n", id.c_str(), progress_of(*d, true).c_str());
  std::printf("  from version %s to %s, step %s/%s\n", text(t, "fromVersion").c_str(),
              text(t, "toVersion").c_str(), count(*d, "currentStep").c_str(),
              count(*d, "totalSteps").c_str());
  if (auto reason = text(t, "reason", ""); !reason.empty())
    std::printf("  reason: %s\n", reason.c_str());
}

void last_failure(const json& app) {
  auto& f = field(app, "lastTaskFailure");
  if (!f.is_object())
    return;
  std::printf("\nlast task failure: %s of task %s on %s at %s (version %s)\n",
              text(f, "state").c_str(), text(f, "taskId").c_str(), text(f, "host").c_str(),
              text(f, "timestamp").c_str(), text(f, "version").c_str());
  if (auto message = text(f, "message", ""); !message.empty())
    std::printf("  %s\n", message.c_str());
}

int show_app(const AppsOptions& o, const std::string& id) {
  AppsClient client(o);
  auto answer = client.call("GET", app_path(id));
  if (!answer)
    return failed(what(answer.error()));
  if (o.as_json) {
    std::printf("%s\n", answer->dump(2).c_str());
    return 0;
  }
  auto& app = field(*answer, "app");
  app_fields(app);
  tasks_table(app);
  for (auto& d : list(app, "deployments"))
    deployment_of_app(client, text(d, "id"));
  last_failure(app);
  return 0;
}

// -- app plan --------------------------------------------------------------------------

std::string value_text(const json& j, const char* key) {
  auto& v = field(j, key);
  return v.is_null() ? "-" : v.dump();
}

std::string steps_of(const json& steps) {
  std::vector<std::string> out;
  for (auto& s : steps) {
    std::vector<std::string> actions;
    for (auto& a : list(s, "actions"))
      actions.push_back(text(a, "action") + " " + text(a, "app"));
    out.push_back(joined(actions, " + "));
  }
  return out.empty() ? "-" : joined(out, "; then ");
}

// Prints the plan; 0 when it fits, else 1.
int print_plan(const json& plan) {
  bool exists = field(plan, "exists").is_boolean() && field(plan, "exists").get<bool>();
  std::printf("plan for %s (%s)\n", text(plan, "id").c_str(),
              exists ? ("exists, version " + text(plan, "currentVersion")).c_str() : "new");
  auto& changes = list(plan, "changes");
  std::printf("changes:%s\n", changes.empty() ? " none" : "");
  for (auto& c : changes)
    std::printf("  %s: %s -> %s\n", text(c, "path").c_str(), value_text(c, "from").c_str(),
                value_text(c, "to").c_str());
  std::printf("kind: %s\n", text(plan, "kind").c_str());
  std::printf("steps: %s\n", steps_of(list(plan, "steps")).c_str());
  bool fits = field(plan, "fits").is_boolean() && field(plan, "fits").get<bool>();
  std::printf("fits: %s (%s/%s placeable, %s agents seen)\n", fits ? "yes" : "no",
              count(plan, "placeable").c_str(), count(plan, "instances").c_str(),
              count(plan, "agentsSeen").c_str());
  for (auto& why : list(plan, "why"))
    std::printf("  why: %s\n",
                why.is_string() ? why.get<std::string>().c_str() : why.dump().c_str());
  return fits ? 0 : 1;
}

int plan(const AppsOptions& o, const std::string& file) {
  auto body = read_definition(file, "an app definition");
  if (!body)
    return fail(what(body.error()));
  AppsClient client(o);
  auto answer = client.call("POST", "/v2/plan", *body);
  if (!answer)
    return failed(what(answer.error()));
  if (!o.as_json)
    return print_plan(*answer);
  std::printf("%s\n", answer->dump(2).c_str());
  return field(*answer, "fits").is_boolean() && field(*answer, "fits").get<bool>() ? 0 : 1;
}

// -- deployments and queue ----------------------------------------------------------

std::string deadline_of(const json& t) {
  auto deadline = epoch_of(field(t, "deadline"));
  if (!deadline)
    return text(t, "deadline");
  return *deadline > now_epoch() ? "in " + secs(*deadline - now_epoch()) : "passed";
}

void deployments_table(const json& answer) {
  std::vector<std::vector<std::string>> rows;
  if (answer.is_array())
    for (auto& d : answer) {
      auto& t = field(d, "tessera");
      std::vector<std::string> apps;
      for (auto& a : list(d, "affectedApps"))
        apps.push_back(a.is_string() ? a.get<std::string>() : a.dump());
      rows.push_back({text(d, "id"), joined(apps, ","), text(t, "kind"), text(t, "state"),
                      counts_of(t), ago(field(t, "startedAt")), deadline_of(t)});
    }
  print_table({"ID", "APP", "KIND", "STATE", "PROGRESS", "STARTED", "DEADLINE"}, rows);
}

// "cpus 12, hostname:UNIQUE 3": the reasons offers were declined, most first.
// "constraint" sums the named constraints, so it shows only without them.
std::string declined_by(const json& declined) {
  std::vector<std::pair<double, std::string>> reasons;
  bool named = false;
  if (declined.is_object())
    for (auto& [name, n] : declined.items())
      if (n.is_number() && n.get<double>() > 0) {
        reasons.emplace_back(-n.get<double>(), name);
        named = named || name.find(':') != std::string::npos;
      }
  std::sort(reasons.begin(), reasons.end());
  std::vector<std::string> out;
  for (auto& [n, name] : reasons)
    if (!(named && name == "constraint"))
      out.push_back(name + " " + std::to_string(std::llround(-n)));
  return out.empty() ? "-" : joined(out);
}

std::string delay_of(const json& item) {
  auto& delay = field(item, "delay");
  double left = num(delay, "timeLeftSeconds");
  return left > 0 ? secs(left) : "-";
}

void queue_table(const json& answer) {
  std::vector<std::vector<std::string>> rows, notes;
  for (auto& q : list(answer, "queue")) {
    auto& t = field(q, "tessera");
    rows.push_back({text(field(q, "app"), "id"), count(q, "count"), delay_of(q),
                    count(t, "offersSeen"), declined_by(field(t, "declined"))});
    notes.emplace_back();
    for (auto& why : list(t, "why"))
      notes.back().push_back(why.is_string() ? why.get<std::string>() : why.dump());
  }
  print_table({"APP", "WAITING", "DELAY", "OFFERS", "DECLINED-BY"}, rows, notes);
}

int read_call(const AppsOptions& o, const std::string& target,
              const std::function<void(const json&)>& table) {
  AppsClient client(o);
  return print_answer(client.call("GET", target), o.as_json, table);
}

// -- registering ------------------------------------------------------------------------

// A command's run, with an answer that is not as docs/apps.md says reported
// as one line rather than an uncaught exception.
std::function<int()> guarded(std::function<int()> run) {
  return [run = std::move(run)] {
    try {
      return run();
    } catch (const json::exception& e) {
      return failed(std::string("unexpected answer from the apps API: ") + e.what());
    }
  };
}

CLI::App* apps_command(CLI::App& parent, const char* name, const char* help, AppsOptions& o) {
  auto* sub = parent.add_subcommand(name, help);
  o.apps = default_apps_http();
  sub->add_option("--apps", o.apps,
                  "The apps API: HOST:PORT, http://HOST:PORT or zk://HOSTS/PATH (default: "
                  "$TESSERA_APPS, else the master's HTTP address, $TESSERA_MASTER or "
                  "127.0.0.1:6050)");
  add_token_flag(sub);
  sub->add_flag("--json", o.as_json, "Print the API's JSON instead of a table");
  sub->add_option("--timeout", o.timeout_s, "Seconds each HTTP call may take")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  return sub;
}

void add_id(CLI::App* sub, std::string& id) {
  sub->add_option("ID", id, "The app's id: /shop/web or shop/web")
      ->required()
      ->check(path_safe("an app id", true));
}

void add_file(CLI::App* sub, std::string& file) {
  sub->add_option("FILE", file, "The app definition, JSON ('-': stdin)")->required();
}

// --force (when the call takes it), --wait and --wait-timeout.
void add_change_flags(CLI::App* sub, ChangeOptions& o, bool force) {
  if (force)
    sub->add_flag("--force", o.force,
                  "Go ahead even when a deployment locks the app (it is canceled)");
  sub->add_flag("--wait", o.wait,
                "Follow the deployment on stderr; exit 0 when it succeeds, 1 when it fails, is "
                "canceled or rolled back");
  sub->add_option("--wait-timeout", o.wait_timeout_s, "Seconds --wait waits at most")
      ->check(CLI::Range(0.1, 7 * 86400.0))
      ->capture_default_str();
}

using ChangeRun = std::function<int(const ChangeOptions&)>;

// An `app` subcommand that starts a deployment.
Command change_command(CLI::App& app, const char* name, const char* help, bool force,
                       const std::function<void(CLI::App*, ChangeOptions&)>& args, ChangeRun run) {
  auto o = std::make_shared<ChangeOptions>();
  auto* sub = apps_command(app, name, help, *o);
  args(sub, *o);
  add_change_flags(sub, *o, force);
  return {sub, guarded([o, run = std::move(run)] { return run(*o); })};
}

int add_app(const ChangeOptions& o) {
  auto body = read_definition(o.file, "an app definition");
  if (!body)
    return fail(what(body.error()));
  auto id = text(json::parse(*body), "id", "");
  return change(o, "POST", "/v2/apps", *body, "created " + (id.empty() ? "the app" : app_id(id)));
}

int update_app(const ChangeOptions& o) {
  auto body = read_definition(o.file, "an app definition");
  if (!body)
    return fail(what(body.error()));
  return change(o, "PUT", forced(app_path(o.id), o), *body, "updating " + app_id(o.id));
}

void add_definition_changes(CLI::App& app, std::vector<Command>& out) {
  out.push_back(change_command(
      app, "add", "Create an app from its definition (POST /v2/apps)", false,
      [](CLI::App* sub, ChangeOptions& o) { add_file(sub, o.file); }, add_app));
  out.push_back(change_command(
      app, "update", "Change an app to a new definition (PUT /v2/apps/ID)", true,
      [](CLI::App* sub, ChangeOptions& o) {
        add_id(sub, o.id);
        add_file(sub, o.file);
      },
      update_app));
  out.push_back(change_command(
      app, "scale", "Change how many instances an app wants (PATCH /v2/apps/ID)", true,
      [](CLI::App* sub, ChangeOptions& o) {
        add_id(sub, o.id);
        sub->add_option("N", o.instances, "Instances")
            ->required()
            ->check(CLI::Range(uint64_t{0}, uint64_t{1'000'000}));
      },
      [](const ChangeOptions& o) {
        return change(o, "PATCH", forced(app_path(o.id), o),
                      json{{"instances", o.instances}}.dump(),
                      "scaling " + app_id(o.id) + " to " + std::to_string(o.instances));
      }));
}

void add_simple_changes(CLI::App& app, std::vector<Command>& out) {
  auto id = [](CLI::App* sub, ChangeOptions& o) { add_id(sub, o.id); };
  out.push_back(change_command(app, "restart",
                               "Replace every instance of an app (POST /v2/apps/ID/restart)", true,
                               id, [](const ChangeOptions& o) {
                                 return change(o, "POST", forced(app_path(o.id) + "/restart", o),
                                               "", "restarting " + app_id(o.id));
                               }));
  out.push_back(change_command(
      app, "remove", "Stop an app's instances and forget it (DELETE /v2/apps/ID)", true, id,
      [](const ChangeOptions& o) {
        return change(o, "DELETE", forced(app_path(o.id), o), "", "removing " + app_id(o.id));
      }));
  out.push_back(change_command(app, "rollback", "Go back to the app's last fully healthy version",
                               false, id, [](const ChangeOptions& o) {
                                 return change(o, "POST", app_path(o.id) + "/rollback", "",
                                               "rolling " + app_id(o.id) + " back");
                               }));
  out.push_back(change_command(app, "promote",
                               "End a deployment's canary step: the rollout goes on", false, id,
                               [](const ChangeOptions& o) {
                                 return change(o, "POST", app_path(o.id) + "/promote", "",
                                               "promoted the canaries of " + app_id(o.id));
                               }));
  out.push_back(change_command(app, "abort",
                               "Kill a deployment's canaries and go back to the version before",
                               false, id, [](const ChangeOptions& o) {
                                 return change(o, "POST", app_path(o.id) + "/abort", "",
                                               "aborting the canaries of " + app_id(o.id));
                               }));
}

int kill_task(const ChangeOptions& o, bool scale) {
  AppsClient client(o);
  auto target = app_path(o.id) + "/tasks/" + o.task + (scale ? "?scale=true" : "");
  auto answer = client.call("DELETE", target);
  if (!answer)
    return failed(what(answer.error()));
  if (o.as_json)
    std::printf("%s\n", answer->dump(2).c_str());
  else
    std::printf("killing task %s of %s (%s)\n", o.task.c_str(), app_id(o.id).c_str(),
                scale ? "the app now wants one instance fewer" : "it will be replaced");
  return 0;
}

void add_reads(CLI::App& app, std::vector<Command>& out) {
  auto l = std::make_shared<AppsOptions>();
  out.push_back({apps_command(app, "list", "List the apps (GET /v2/apps)", *l),
                 guarded([l] { return list_apps(*l); })});
  struct IdOptions : AppsOptions {
    std::string id, file;
  };
  auto s = std::make_shared<IdOptions>();
  auto* show = apps_command(app, "show", "An app: its fields, tasks, deployment, last failure", *s);
  add_id(show, s->id);
  out.push_back({show, guarded([s] { return show_app(*s, s->id); })});
  auto p = std::make_shared<IdOptions>();
  auto* plan_cmd = apps_command(
      app, "plan", "Dry-run a definition: what would change and whether it fits (POST /v2/plan)",
      *p);
  add_file(plan_cmd, p->file);
  plan_cmd->footer(
      "Exit status: 0 when it fits, 1 when it does not or the call failed, 2 for a "
      "bad command line.");
  out.push_back({plan_cmd, guarded([p] { return plan(*p, p->file); })});
}

void add_kill(CLI::App& app, std::vector<Command>& out) {
  auto o = std::make_shared<ChangeOptions>();
  auto* sub = apps_command(app, "kill", "Kill one of an app's tasks; it is replaced", *o);
  add_id(sub, o->id);
  sub->add_option("TASK_ID", o->task, "The task's id (see `tessera app show ID`)")
      ->required()
      ->check(path_safe("a task id", false));
  auto scale = std::make_shared<bool>(false);
  sub->add_flag("--scale", *scale, "Do not replace it: the app wants one instance fewer");
  out.push_back({sub, guarded([o, scale] { return kill_task(*o, *scale); })});
}

}  // namespace

std::vector<Command> add_apps_commands(CLI::App& app) {
  std::vector<Command> out;
  auto* group = app.add_subcommand(
      "app", "Long-running apps, through the apps framework's Marathon-style /v2 API");
  group->require_subcommand(1);
  group->footer(
      "add, update, scale, restart, remove, rollback, promote and abort start a deployment; with "
      "--wait they follow it on stderr and exit 0 when it succeeds, 1 when it fails, is canceled "
      "or rolled back, or --wait-timeout passes.\nThe API is at --apps, else $TESSERA_APPS, else "
      "the master's HTTP edge ($TESSERA_MASTER or 127.0.0.1:6050), as in `tessera cluster`.");
  add_reads(*group, out);
  add_definition_changes(*group, out);
  add_simple_changes(*group, out);
  add_kill(*group, out);
  auto d = std::make_shared<AppsOptions>();
  out.push_back({apps_command(app, "deployments", "The apps' running deployments", *d),
                 guarded([d] { return read_call(*d, "/v2/deployments", deployments_table); })});
  auto q = std::make_shared<AppsOptions>();
  out.push_back({apps_command(app, "queue", "Apps waiting to launch instances, and why", *q),
                 guarded([q] { return read_call(*q, "/v2/queue", queue_table); })});
  return out;
}

}  // namespace tessera::cli
