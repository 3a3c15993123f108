// The apps framework's HTTP API: Marathon's /v2 (docs/apps.md has every
// call and shape). Requests arrive on the framework's thread through its
// inbox (AppsHandle); each is answered at once from the framework's state,
// except /v2/events, which stays open.

#include "services/apps/apps_framework.hpp"

#include "runtime/log.hpp"
#include "services/apps/apps_time.hpp"

#include <algorithm>
#include <sstream>

namespace tessera::apps {

using json = nlohmann::json;

namespace {

// JSON text; bytes that are not UTF-8 (a path, a task's message) become
// U+FFFD instead of throwing.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

// -- the edge's handler ---------------------------------------------------

http::Handler apps_http_handler(std::shared_ptr<AppsHandle> handle) {
  return serve_http(std::move(handle), "apps framework");
}

// -- rendering --------------------------------------------------------------

class AppsApi {
 public:
  using F = AppsFramework;
  AppsApi(F& fw, const http::Request& req, const http::Responder& res)
      : fw_(fw), req_(req), res_(res) {}
  void serve();

 private:
  void answer(int status, const json& body, http::Headers headers = {}) {
    if (status == 400 || status == 422) {  // bad input: counted, logged, served on
      ++fw_.counters_.bad_requests;
      log().info("apps: {} {} refused ({}): {}", req_.method, req_.path, status,
                 dump(body).substr(0, 300));
    }
    http::Response r = http::json_response(status, dump(body));
    r.headers = std::move(headers);
    res_.respond(std::move(r));
  }
  // A change is answered once what it wrote is durable: a client told 201
  // or 200 never loses the change to a crash. Refusals are answered at once.
  void answer(const F::Change& c, http::Headers headers = {}) {
    if (c.status >= 300)
      return answer(c.status, c.body, std::move(headers));
    fw_.after_durable([res = res_, c, headers = std::move(headers)]() mutable {
      http::Response r = http::json_response(c.status, dump(c.body));
      r.headers = std::move(headers);
      res.respond(std::move(r));
    });
  }
  void bad(int status, const std::string& text) { answer(status, {{"message", text}}); }
  bool force() const { return req_.query_value("force") == "true"; }
  std::optional<json> body_json();
  // The body as an app definition; on a problem answers 400 or 422 itself.
  std::optional<AppSpec> body_app();

  void apps_root();
  void app_path(const std::string& rest);
  void one_app(const std::string& id);
  void deployments(const std::string& rest);
  void queue(const std::string& rest);
  void plan();
  void info();
  void all_tasks();

  json app_json(const std::string& id, const F::App& app, bool tasks) const;
  json task_json(const F::Instance& i) const;
  json deployment_json(const F::Deployment& d) const;
  json queue_json(const std::string& id, const F::App& app) const;
  std::vector<std::string> why_lines(const F::App& app, const AppSpec& spec,
                                     const std::map<std::string, uint64_t>& declined,
                                     const std::optional<Offer>& largest, uint64_t seen) const;

  F& fw_;
  const http::Request& req_;
  const http::Responder& res_;
};

void AppsFramework::serve(const http::Request& request, const http::Responder& responder) {
  if (writer_->lost()) {
    responder.respond(http::json_response(
        503, json{{"message", "this apps framework lost its store to another writer"}}.dump()));
    return;
  }
  AppsApi(*this, request, responder).serve();
}

std::optional<json> AppsApi::body_json() {
  auto j = json::parse(req_.body, nullptr, false);
  if (j.is_discarded()) {
    bad(400, "Invalid JSON: the body does not parse");
    return std::nullopt;
  }
  return j;
}

std::optional<AppSpec> AppsApi::body_app() {
  auto body = body_json();
  if (!body)
    return std::nullopt;
  auto parsed = parse_app(*body);
  if (!parsed.ok()) {
    answer(422, problems_json(parsed.problems));
    return std::nullopt;
  }
  return std::move(parsed.app);
}

void AppsApi::serve() {
  const auto& p = req_.path;
  auto under = [&](const std::string& prefix) {
    return p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
           p[prefix.size()] == '/';
  };
  if (p == "/v2/apps")
    return apps_root();
  if (under("/v2/apps"))
    return app_path(p.substr(std::string("/v2/apps").size()));
  if (p == "/v2/deployments" || under("/v2/deployments"))
    return deployments(p.substr(std::string("/v2/deployments").size()));
  if (p == "/v2/queue" || under("/v2/queue"))
    return queue(p.substr(std::string("/v2/queue").size()));
  if (p == "/v2/tasks" && req_.method == "GET")
    return all_tasks();
  if (p == "/v2/info" && req_.method == "GET")
    return info();
  if (p == "/v2/plan" && req_.method == "POST")
    return plan();
  if (p == "/v2/events" && req_.method == "GET")
    return fw_.open_events(req_, res_);
  if (p == "/v2/ping" || p == "/ping") {
    res_.respond({200, "text/plain", "pong", {}, nullptr});
    return;
  }
  bad(404, "no such resource: " + req_.method + " " + p);
}

void AppsApi::apps_root() {
  if (req_.method == "GET") {
    bool tasks = false;
    for (auto [it, end] = req_.query.equal_range("embed"); it != end; ++it)
      tasks = tasks || it->second.find("apps.tasks") != std::string::npos;
    auto prefix = req_.query_value("id");
    json apps = json::array();
    for (const auto& [id, app] : fw_.apps_)
      if (prefix.empty() || id.find(prefix) != std::string::npos)
        apps.push_back(app_json(id, app, tasks));
    return answer(200, {{"apps", std::move(apps)}});
  }
  if (req_.method != "POST")
    return bad(405, "use GET or POST on /v2/apps");
  auto spec = body_app();
  if (!spec)
    return;
  if (fw_.apps_.count(spec->id))
    return bad(409, "An app with id [" + spec->id + "] already exists.");
  auto c = fw_.put_app(*spec, false, false, true);
  if (c.status != 201)
    return answer(c);
  auto deployment = c.body["deploymentId"].get<std::string>();
  c.body = app_json(spec->id, fw_.apps_.at(spec->id), false);
  answer(c, {{"Location", "/v2/apps" + spec->id}, {"Marathon-Deployment-Id", deployment}});
}

void AppsApi::app_path(const std::string& rest) {
  // rest: "/shop/web", "/shop/web/restart", "/shop/web/tasks/<task>", ...
  std::vector<std::string> segs;
  std::stringstream in(rest.substr(1));
  for (std::string s; std::getline(in, s, '/');)
    segs.push_back(s);
  static const std::set<std::string> actions = {"restart", "versions", "promote",
                                                "abort",   "rollback", "tasks"};
  std::string action, task;
  if (segs.size() >= 3 && segs[segs.size() - 2] == "tasks") {
    action = "tasks";
    task = segs.back();
    segs.resize(segs.size() - 2);
  } else if (segs.size() >= 2 && actions.count(segs.back())) {
    action = segs.back();
    segs.pop_back();
  }
  std::string raw;
  for (const auto& s : segs)
    raw += "/" + s;
  auto id = normalize_app_id(raw);
  if (id.empty())
    return bad(400, "'" + raw + "' is not a valid app id");
  const auto& m = req_.method;
  if (action.empty())
    return one_app(id);
  if (action == "restart" && m == "POST")
    return answer(fw_.restart_app(id, force()));
  if (action == "promote" && m == "POST")
    return answer(fw_.promote(id));
  if (action == "abort" && m == "POST")
    return answer(fw_.abort_canary(id));
  if (action == "rollback" && m == "POST")
    return answer(fw_.rollback_app(id));
  auto app = fw_.apps_.find(id);
  if (app == fw_.apps_.end())
    return bad(404, "App '" + id + "' does not exist");
  if (action == "versions" && m == "GET") {
    json versions = json::array();
    for (const auto& v : app->second.versions)
      versions.push_back(v->version);
    return answer(200, {{"versions", versions}});
  }
  if (action == "tasks" && task.empty() && m == "GET") {
    json tasks = json::array();
    for (const auto& t : app->second.tasks)
      tasks.push_back(task_json(fw_.tasks_.at(t)));
    return answer(200, {{"tasks", tasks}});
  }
  if (action == "tasks" && !task.empty() && m == "DELETE") {
    auto it = fw_.tasks_.find(task);
    if (it == fw_.tasks_.end() || it->second.app_id != id)
      return bad(404, "Task '" + task + "' of app '" + id + "' does not exist");
    auto rendered = task_json(it->second);
    auto c = fw_.kill_task(id, task, req_.query_value("scale") == "true");
    if (c.status == 200)
      c.body = {{"task", rendered}};
    return answer(c);
  }
  bad(405, m + " is not supported on /v2/apps/{id}/" + action);
}

void AppsApi::one_app(const std::string& id) {
  const auto& m = req_.method;
  if (m == "GET") {
    auto it = fw_.apps_.find(id);
    if (it == fw_.apps_.end())
      return bad(404, "App '" + id + "' does not exist");
    return answer(200, {{"app", app_json(id, it->second, true)}});
  }
  if (m == "DELETE")
    return answer(fw_.delete_app(id, force()));
  if (m != "PUT" && m != "PATCH")
    return bad(405, "use GET, PUT, PATCH or DELETE on /v2/apps/{id}");
  auto body = body_json();
  if (!body)
    return;
  if (!body->is_object())
    return answer(422, problems_json({{"", "an app definition must be a JSON object"}}));
  auto it = fw_.apps_.find(id);
  json definition = *body;
  if (m == "PATCH") {
    if (it == fw_.apps_.end())
      return bad(404, "App '" + id + "' does not exist");
    definition = to_json(it->second.target->spec);
    for (auto& [k, v] : body->items())
      definition[k] = v;
  }
  if (!definition.contains("id"))
    definition["id"] = id;
  auto parsed = parse_app(definition);
  if (!parsed.ok())
    return answer(422, problems_json(parsed.problems));
  if (parsed.app.id != id)
    return answer(422, problems_json({{"/id", "the id in the body (" + parsed.app.id +
                                                  ") is not the id in the path (" + id + ")"}}));
  answer(fw_.put_app(parsed.app, force(), false, m == "PUT"));
}

void AppsApi::deployments(const std::string& rest) {
  if (rest.empty()) {
    if (req_.method != "GET")
      return bad(405, "use GET on /v2/deployments");
    json out = json::array();
    for (const auto& [id, d] : fw_.deployments_)
      out.push_back(deployment_json(d));
    return answer(200, out);
  }
  auto id = rest.substr(1);
  if (req_.method == "DELETE")
    return answer(fw_.cancel_deployment(id, force()));
  if (req_.method != "GET")
    return bad(405, "use GET or DELETE on /v2/deployments/{id}");
  if (auto it = fw_.deployments_.find(id); it != fw_.deployments_.end())
    return answer(200, deployment_json(it->second));
  for (const auto& d : fw_.finished_)
    if (d.id == id)
      return answer(200, deployment_json(d));
  bad(404, "DeploymentPlan " + id + " does not exist");
}

void AppsApi::queue(const std::string& rest) {
  if (rest.empty()) {
    if (req_.method != "GET")
      return bad(405, "use GET on /v2/queue");
    json out = json::array();
    for (const auto& [id, app] : fw_.apps_)
      if (app.to_launch > 0)
        out.push_back(queue_json(id, app));
    return answer(200, {{"queue", out}});
  }
  // "/shop/web/delay"
  const std::string suffix = "/delay";
  if (rest.size() <= suffix.size() ||
      rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) != 0 ||
      req_.method != "DELETE")
    return bad(404, "no such resource: " + req_.method + " " + req_.path);
  auto id = normalize_app_id(rest.substr(0, rest.size() - suffix.size()));
  auto it = fw_.apps_.find(id);
  if (it == fw_.apps_.end())
    return bad(404, "App '" + id + "' does not exist");
  fw_.reset_delay(it->second);
  res_.respond({204, "application/json", "", {}, nullptr});
}

void AppsApi::all_tasks() {
  json tasks = json::array();
  for (const auto& [id, app] : fw_.apps_)
    for (const auto& t : app.tasks)
      tasks.push_back(task_json(fw_.tasks_.at(t)));
  answer(200, {{"tasks", tasks}});
}

void AppsApi::info() {
  uint64_t running = 0;
  for (const auto& [id, i] : fw_.tasks_)
    running += i.state == TaskState::RUNNING && !i.killing ? 1 : 0;
  answer(
      200,
      {{"name", fw_.config_.name},
       {"version", "tessera-apps 1"},
       {"frameworkId", fw_.framework_id()},
       {"leader", fw_.config_.http_address},
       {"elected", fw_.connected()},
       {"http_config", {{"http_address", fw_.config_.http_address}}},
       {"marathon_config",
        {{"master", fw_.config().master.to_string()},
         {"framework_name", fw_.config_.name},
         {"mesos_role", fw_.config_.role},
         {"failover_timeout",
          std::chrono::duration_cast<std::chrono::seconds>(fw_.config_.failover_timeout).count()}}},
       {"tessera",
        {{"store", fw_.config_.store->describe()},
         {"apps", fw_.apps_.size()},
         {"instances", fw_.tasks_.size()},
         {"instancesRunning", running},
         {"deployments", fw_.deployments_.size()},
         {"launched", fw_.counters_.launched},
         {"failed", fw_.counters_.failed},
         {"killed", fw_.counters_.killed},
         {"rollbacks", fw_.counters_.rollbacks},
         {"strangersKilled", fw_.counters_.strangers_killed},
         {"storeCommits", fw_.writer_->counters().commits},
         {"storeFailures", fw_.writer_->counters().failures},
         {"badRequests", fw_.counters_.bad_requests}}}});
}

json AppsApi::task_json(const F::Instance& i) const {
  json t = {
      {"id", i.task_id},
      {"appId", i.app_id},
      {"host", i.host},
      {"agentId", i.agent_id},
      {"slaveId", i.agent_id},
      {"ports", i.ports},
      {"stagedAt", iso_time(i.staged_ms)},
      {"startedAt", i.started_ms ? json(iso_time(i.started_ms)) : json()},
      {"version", i.version ? i.version->version : ""},
      {"state", i.killing && !is_terminal(i.state) ? std::string("TASK_KILLING")
                                                   : std::string(tessera::to_string(i.state))},
      {"healthCheckResults", json::array()}};
  if (i.healthy)
    t["healthCheckResults"].push_back(
        {{"alive", *i.healthy}, {"taskId", i.task_id}, {"instanceId", i.task_id}});
  return t;
}

json AppsApi::app_json(const std::string& id, const F::App& app, bool tasks) const {
  auto out = to_json(app.target->spec);
  uint32_t staged = 0, running = 0, ok = 0, sick = 0;
  json task_list = json::array();
  for (const auto& t : app.tasks) {
    const auto& i = fw_.tasks_.at(t);
    if (i.state == TaskState::RUNNING)
      ++running;
    else if (!is_terminal(i.state))
      ++staged;
    if (i.healthy && i.state == TaskState::RUNNING)
      ++(*i.healthy ? ok : sick);
    if (tasks)
      task_list.push_back(task_json(i));
  }
  out["version"] = app.target->version;
  // As Marathon: the version is the last change; the config change is the
  // last one that restarted instances (a scale is not one).
  out["versionInfo"] = {{"lastScalingAt", app.target->version},
                        {"lastConfigChangeAt", app.target->config_version}};
  out["tasksStaged"] = staged;
  out["tasksRunning"] = running;
  out["tasksHealthy"] = ok;
  out["tasksUnhealthy"] = sick;
  out["deployments"] = json::array();
  if (!app.deployment.empty())
    out["deployments"].push_back({{"id", app.deployment}});
  if (tasks)
    out["tasks"] = std::move(task_list);
  if (app.last_failure) {
    const auto& f = *app.last_failure;
    out["lastTaskFailure"] = {{"appId", id},          {"host", f.host},
                              {"message", f.message}, {"state", f.state},
                              {"taskId", f.task_id},  {"timestamp", iso_time(f.at_ms)},
                              {"version", f.version}};
  }
  auto left = app.not_before > fw_.now() ? app.not_before - fw_.now() : Duration::zero();
  out["tessera"] = {{"waiting", app.to_launch},
                    {"backoffSeconds", std::chrono::duration<double>(left).count()},
                    {"failures", app.failures},
                    {"lastGoodVersion", app.last_good ? json(app.last_good->version) : json()},
                    {"deleting", app.deleting}};
  return out;
}

json AppsApi::deployment_json(const F::Deployment& d) const {
  const char* action = "RestartApplication";
  switch (d.kind) {
    case F::DeployKind::start:
      action = "StartApplication";
      break;
    case F::DeployKind::scale:
      action = "ScaleApplication";
      break;
    case F::DeployKind::stop:
      action = "StopApplication";
      break;
    default:
      break;
  }
  json steps = json::array();
  if (d.kind == F::DeployKind::start)
    steps.push_back({{"actions", {{{"action", "StartApplication"}, {"app", d.app_id}}}}});
  if (d.kind == F::DeployKind::upgrade && d.to && d.to->spec.canary_instances > 0)
    steps.push_back({{"actions", {{{"action", "RestartApplication"}, {"app", d.app_id}}}},
                     {"tessera", {{"canary", d.to->spec.canary_instances}}}});
  steps.push_back({{"actions",
                    {{{"action", d.kind == F::DeployKind::start ? "ScaleApplication" : action},
                      {"app", d.app_id}}}}});
  int current = static_cast<int>(steps.size());
  if (d.kind == F::DeployKind::upgrade && d.to && d.to->spec.canary_instances > 0 && d.canary > 0)
    current = 1;
  auto left_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(d.deadline - fw_.now()).count();
  return {
      {"id", d.id},
      {"version", d.to ? d.to->version : ""},
      {"affectedApps", {d.app_id}},
      {"steps", steps},
      {"currentActions", d.finished() ? json::array()
                                      : json::array({{{"action", action},
                                                      {"app", d.app_id},
                                                      {"readinessCheckResults", json::array()}}})},
      {"currentStep", current},
      {"totalSteps", steps.size()},
      {"tessera",
       {{"state", to_string(d.state)},
        {"reason", d.reason},
        {"kind", to_string(d.kind)},
        {"fromVersion", d.from ? json(d.from->version) : json()},
        {"toVersion", d.to ? json(d.to->version) : json()},
        {"target", d.kind == F::DeployKind::stop || !d.to ? 0u : d.to->spec.instances},
        {"newInstances", d.new_count},
        {"newHealthy", d.new_healthy},
        {"oldInstances", d.old_count},
        {"oldHealthy", d.old_healthy},
        {"minHealthy", d.min_healthy},
        {"maxInstances", d.max_total},
        {"canaryInstances", d.canary},
        {"startedAt", iso_time(d.started_ms)},
        {"deadline", iso_time(d.finished() ? d.finished_ms : wall_ms() + left_ms)},
        {"finishedAt", d.finished_ms ? json(iso_time(d.finished_ms)) : json()}}}};
}

std::vector<std::string> AppsApi::why_lines(const F::App& app, const AppSpec& spec,
                                            const std::map<std::string, uint64_t>& declined,
                                            const std::optional<Offer>& largest,
                                            uint64_t seen) const {
  std::vector<std::string> why;
  char buf[256];
  if (app.not_before > fw_.now()) {
    std::snprintf(buf, sizeof(buf), "backoff: next launch in %.1f s after %u failure(s)",
                  std::chrono::duration<double>(app.not_before - fw_.now()).count(), app.failures);
    why.push_back(buf);
  }
  if (seen == 0) {
    why.push_back(
        "no offers in the window: the cluster may be full, or other frameworks hold "
        "its free resources");
    return why;
  }
  auto scalar = [&](const char* name, double need) {
    double best = largest ? largest->resources.total(name) : 0;
    auto n = declined.count(name) ? declined.at(name) : 0;
    if (need > 0 && n > 0) {
      std::snprintf(buf, sizeof(buf),
                    "%s: needs %g, the largest offer had %g (%llu offer(s) short)", name, need,
                    best, static_cast<unsigned long long>(n));
      why.push_back(buf);
    }
  };
  scalar("cpus", spec.cpus);
  scalar("mem", spec.mem);
  scalar("disk", spec.disk);
  scalar("gpus", spec.gpus);
  for (const auto& [reason, n] : declined) {
    if (n == 0)
      continue;
    if (reason == "ports")
      why.push_back("ports: " + std::to_string(n) + " offer(s) did not have the " +
                    std::to_string(spec.ports.size()) + " port(s) needed free");
    else if (reason == "role")
      why.push_back("role: " + std::to_string(n) + " offer(s) were for another role");
    else if (reason.find(':') != std::string::npos)
      why.push_back("constraint " + reason + ": refused " + std::to_string(n) + " offer(s)");
  }
  return why;
}

json AppsApi::queue_json(const std::string& id, const F::App& app) const {
  const auto& stats = app.stats;
  auto window_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(fw_.config_.queue_window).count();
  auto ms = wall_ms();
  uint64_t seen = 0, used = 0;
  std::map<std::string, uint64_t> declined = {{"cpus", 0},      {"mem", 0},   {"disk", 0},
                                              {"gpus", 0},      {"ports", 0}, {"role", 0},
                                              {"constraint", 0}};
  for (const auto& b : stats.ring)
    if (b.start_ms > 0 && ms - b.start_ms < window_ms) {
      seen += b.seen;
      used += b.used;
      for (const auto& [k, n] : b.declined)
        declined[k] += n;
    }
  json reject = json::array();
  for (auto r : {Refusal::role, Refusal::constraint, Refusal::cpus, Refusal::mem, Refusal::disk,
                 Refusal::gpus, Refusal::ports}) {
    auto n = declined[to_string(r)];
    reject.push_back({{"reason", marathon_reason(r)}, {"declined", n}, {"processed", seen}});
  }
  std::optional<Offer> largest;
  if (stats.largest && ms - stats.largest_ms < window_ms)
    largest = stats.largest;
  json largest_json;
  if (largest)
    largest_json = {{"agentId", largest->agent_id},
                    {"hostname", largest->hostname},
                    {"cpus", largest->resources.total("cpus")},
                    {"mem", largest->resources.total("mem")},
                    {"disk", largest->resources.total("disk")},
                    {"gpus", largest->resources.total("gpus")},
                    {"ports", [&] {
                       uint64_t n = 0;
                       for (const auto& r : largest->resources.get_ranges("ports"))
                         n += r.end - r.begin + 1;
                       return n;
                     }()}};
  auto left = app.not_before > fw_.now() ? app.not_before - fw_.now() : Duration::zero();
  auto opt_time = [](int64_t t) { return t ? json(iso_time(t)) : json(); };
  return {
      {"app",
       {{"id", id}, {"version", app.target->version}, {"instances", app.target->spec.instances}}},
      {"count", app.to_launch},
      {"delay",
       {{"timeLeftSeconds", std::chrono::duration_cast<std::chrono::seconds>(left).count()},
        {"overdue", left == Duration::zero()}}},
      {"since", opt_time(stats.waiting_since_ms)},
      {"processedOffersSummary",
       {{"processedOffersCount", seen},
        {"unusedOffersCount", seen - used},
        {"lastUnusedOfferAt", opt_time(stats.last_unused_ms)},
        {"lastUsedOfferAt", opt_time(stats.last_used_ms)},
        {"rejectSummaryLastOffers", reject}}},
      {"tessera",
       {{"windowSeconds", window_ms / 1000},
        {"offersSeen", seen},
        {"declined", declined},
        {"largestOffer", largest_json},
        {"why", why_lines(app, app.target->spec, declined, largest, seen)}}}};
}

// A dry run of a definition: what would change, and whether it fits what
// the framework was last offered by each agent.
void AppsApi::plan() {
  auto definition = body_app();
  if (!definition)
    return;
  const auto& spec = *definition;
  auto it = fw_.apps_.find(spec.id);
  bool exists = it != fw_.apps_.end();
  json changes = json::array();
  std::string kind = "start";
  uint32_t needed = spec.instances;
  if (exists) {
    auto was = to_json(it->second.target->spec), now = to_json(spec);
    for (auto& [k, v] : now.items())
      if (!was.contains(k) || was[k] != v)
        changes.push_back({{"path", "/" + k}, {"from", was.value(k, json())}, {"to", v}});
    bool config = false;
    for (auto& c : changes)
      config = config || c["path"] != "/instances";
    auto had = it->second.target->spec.instances;
    kind = changes.empty() ? "none" : (config ? "upgrade" : "scale");
    needed = kind == "upgrade" ? spec.instances : (spec.instances > had ? spec.instances - had : 0);
  }
  // What each agent last offered, plus (for an upgrade) what this app's
  // instances there hold now, which the rollout frees.
  auto t = fw_.now();
  std::vector<Offer> offers;
  for (const auto& [agent_id, seen] : fw_.agents_)
    if (seen.last_offer && t - seen.seen <= fw_.config_.agents_seen_window)
      offers.push_back(*seen.last_offer);
  auto role = spec.role.empty() ? fw_.config_.role : spec.role;
  if (kind == "upgrade")
    for (auto& o : offers)
      for (const auto& task_id : it->second.tasks) {
        const auto& i = fw_.tasks_.at(task_id);
        if (i.agent_id != o.agent_id || !i.version)
          continue;
        const auto& held = i.version->spec;
        const std::pair<const char*, double> freed[] = {{"cpus", held.cpus},
                                                        {"mem", held.mem},
                                                        {"disk", held.disk},
                                                        {"gpus", double(held.gpus)}};
        for (auto [name, quantity] : freed)
          if (quantity > 0)
            o.resources += Resources::scalar(name, quantity);
      }
  std::vector<OfferView> views;
  for (auto& o : offers) {
    o.role = role;  // judged for the app's role
    views.push_back({&o, o.resources});
  }
  auto checks = compile_checks(spec);
  std::vector<std::vector<std::optional<std::string>>> placed(checks.size());
  std::map<std::string, uint64_t> declined;
  std::optional<Offer> largest;
  for (const auto& o : offers)
    if (!largest || o.resources.total("cpus") > largest->resources.total("cpus"))
      largest = o;
  // The dry run places at most plan_instances_max on the actor's thread: a
  // plan for more says it fits when that many fit.
  constexpr uint32_t plan_instances_max = 10'000;
  uint32_t placeable = 0;
  std::vector<bool> full(views.size());
  for (bool any = true; any && placeable < std::min(needed, plan_instances_max);) {
    any = false;
    for (size_t k = 0; k < views.size() && placeable < std::min(needed, plan_instances_max); ++k) {
      if (full[k])
        continue;
      auto r = fit(spec, role, checks, placed, views[k]);
      if (!r.placed) {
        full[k] = true;
        ++declined[to_string(r.refusal)];
        if (r.refusal == Refusal::constraint)
          ++declined[r.constraint];
        continue;
      }
      for (size_t c = 0; c < checks.size(); ++c)
        placed[c].push_back(
            field_value(checks[c].constraint().field, offers[k].hostname, offers[k].attributes));
      ++placeable;
      any = true;
    }
  }
  bool fits = placeable >= std::min(needed, plan_instances_max);
  F::App probe;
  auto lines =
      !fits ? why_lines(probe, spec, declined, largest, offers.size()) : std::vector<std::string>{};
  for (auto& l : lines)
    l = std::to_string(needed - placeable) + " instance(s): " + l;
  json steps = json::array();
  if (kind != "none")
    steps.push_back({{"actions",
                      {{{"action", kind == "start"   ? "StartApplication"
                                   : kind == "scale" ? "ScaleApplication"
                                                     : "RestartApplication"},
                        {"app", spec.id}}}}});
  answer(
      200,
      {{"id", spec.id},
       {"exists", exists},
       {"currentVersion", exists ? json(it->second.target->version) : json()},
       {"changes", changes},
       {"kind", kind},
       {"steps", steps},
       {"instances", spec.instances},
       {"needed", needed},
       {"placeable", placeable},
       {"fits", fits},
       {"checkedUpTo", plan_instances_max},
       {"agentsSeen", offers.size()},
       {"agentsSeenWindowSeconds",
        std::chrono::duration_cast<std::chrono::seconds>(fw_.config_.agents_seen_window).count()},
       {"why", lines}});
}

}  // namespace tessera::apps
