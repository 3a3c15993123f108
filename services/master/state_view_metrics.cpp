// The master's metrics: GET /metrics (Prometheus text exposition, written by
// prometheus-cpp's serializer), GET /metrics/snapshot and GET_METRICS (Mesos's
// key names, for the figures Mesos had). Gauges come from the view's copy;
// counters from the master and allocator, asked once per scrape.

#include "services/master/state_view.hpp"

#include "services/common/metric_families.hpp"
#include "services/master/view_json.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace tessera {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using metrics::add;
using metrics::family;
using metrics::short_state;
using metrics::single;
constexpr auto& all_states = metrics::all_task_states;

}  // namespace

void StateView::metrics(bool prometheus, const http::Responder& responder, bool as_call) {
  // The master's counters, then the allocator's; a scrape while either is
  // away still answers, with what the others have.
  using Copy = std::shared_ptr<capnp::MallocMessageBuilder>;
  auto copy = [](const wire::MasterMetrics::Reader* r) {
    auto out = std::make_shared<capnp::MallocMessageBuilder>();
    if (r)
      out->setRoot(*r);
    else
      out->initRoot<wire::MasterMetrics>();
    return out;
  };
  auto finish = [this, prometheus, responder, as_call](Copy master, Copy alloc) {
    auto m = master->getRoot<wire::MasterMetrics>().asReader();
    auto a = alloc->getRoot<wire::MasterMetrics>().asReader();
    if (prometheus) {
      http::Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = prometheus_text(m, a);
      return responder.respond(std::move(r));
    }
    auto out = nlohmann::json::object();
    for (auto& [k, v] : snapshot_values(m, a))
      out[k] = v;
    if (as_call)
      out = {{"type", "GET_METRICS"}, {"get_metrics", {{"metrics", out}}}};
    responder.respond(http::json_response(200, out.dump()));
  };
  auto timeout = std::chrono::seconds(5);
  auto ask_allocator = [this, copy, finish, timeout](Copy master) {
    request<wire::MasterMetrics>(
        config_.allocator, build_default<wire::MasterMetricsRequest>(), timeout,
        [finish, master, copy](const Received<wire::MasterMetrics>& r) {
          auto body = r.body();
          finish(master, copy(&body));
        },
        [finish, master, copy](const caf::error&) { finish(master, copy(nullptr)); });
  };
  request<wire::MasterMetrics>(
      config_.master, build_default<wire::MasterMetricsRequest>(), timeout,
      [ask_allocator, copy](const Received<wire::MasterMetrics>& r) {
        auto body = r.body();
        ask_allocator(copy(&body));
      },
      [ask_allocator, copy](const caf::error&) { ask_allocator(copy(nullptr)); });
}

std::vector<std::pair<std::string, double>> StateView::snapshot_values(
    wire::MasterMetrics::Reader master, wire::MasterMetrics::Reader alloc) {
  std::vector<std::pair<std::string, double>> out;
  auto put = [&](std::string key, double v) { out.emplace_back(std::move(key), v); };
  auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  put("master/uptime_secs", master_started_ns_ ? double(now_ns - master_started_ns_) / 1e9 : 0);
  put("master/elected", ready_ ? 1 : 0);
  double connected = 0, disconnected = 0, unreachable = 0, active = 0, deactivated = 0;
  Resources total, used, offered;
  for (auto& [id, a] : agents_) {
    if (a.state == wire::AgentViewState::REGISTERED) {
      ++connected;
      total += a.total;
      used += a.used;
      offered += a.offered;
    } else if (a.state == wire::AgentViewState::UNREACHABLE)
      ++unreachable;
    else
      ++disconnected;
    a.deactivated ? ++deactivated : ++active;
  }
  put("master/slaves_connected", connected);
  put("master/slaves_disconnected", disconnected);
  put("master/slaves_unreachable", unreachable);
  put("master/slaves_active", active);
  put("master/slaves_inactive", deactivated);
  double fw_connected = 0;
  for (auto& [id, f] : frameworks_)
    fw_connected += f.connected ? 1 : 0;
  put("master/frameworks_connected", fw_connected);
  put("master/frameworks_disconnected", double(frameworks_.size()) - fw_connected);
  put("master/frameworks_active", fw_connected);
  put("master/frameworks_inactive", double(frameworks_.size()) - fw_connected);
  std::map<wire::TaskState, double> live;
  for (auto& [key, t] : tasks_)
    if (!is_terminal(t.state))
      ++live[t.state];
  for (auto s : all_states) {
    if (is_terminal(s)) {
      auto it = terminal_counts_.find(s);
      put("master/tasks_" + short_state(s), it == terminal_counts_.end() ? 0 : double(it->second));
    } else {
      put("master/tasks_" + short_state(s), live[s]);
    }
  }
  for (const char* r : {"cpus", "mem", "disk", "gpus"}) {
    double t = total.total(r), u = used.total(r), o = offered.total(r);
    put(std::string("master/") + r + "_total", t);
    put(std::string("master/") + r + "_used", u);
    put(std::string("master/") + r + "_offered", o);
    put(std::string("master/") + r + "_percent", t > 0 ? u / t : 0);
  }
  put("master/outstanding_offers", double(offers_.size()));
  put("master/event_queue_dispatches", double(handle_->inbox ? handle_->inbox->size() : 0));
  for (auto c : master.getCounters()) {
    std::string name = str(c.getName());
    if (name == "status_updates_total")
      put("master/valid_status_updates", c.getValue());
    else if (name == "invalid_calls_total")
      put("master/invalid_calls", c.getValue());
    put("master/" + name, c.getValue());
  }
  for (auto c : alloc.getCounters()) {
    std::string name = str(c.getName());
    if (name == "allocation_runs_total")
      put("allocator/mesos/allocation_runs", c.getValue());
    else if (name == "allocation_run_ms_p50")
      put("allocator/mesos/allocation_run_ms/p50", c.getValue());
    else
      put("allocator/" + name, c.getValue());
  }
  uint64_t received = 0, rejected = 0;
  for (auto& [type, s] : node().stats().snapshot()) {
    received += s.received;
    for (auto n : s.rejected)
      rejected += n;
  }
  put("master/messages_received", double(received));
  put("master/messages_rejected", double(rejected));
  put("master/operator_api_bad_calls", double(bad_calls_));
  put("master/subscribers", double(subscribers_.size()));
  put("master/state_renders", double(state_renders_));
  put("master/state_reuses", double(state_reuses_));
  return out;
}

std::string StateView::prometheus_text(wire::MasterMetrics::Reader master,
                                       wire::MasterMetrics::Reader alloc) {
  std::vector<MetricFamily> families;
  auto agents = family("tessera_master_agents", "Agents by state.", MetricType::Gauge);
  std::map<std::string, double> by_state = {
      {"registered", 0}, {"disconnected", 0}, {"unreachable", 0}};
  double deactivated = 0, draining = 0;
  for (auto& [id, a] : agents_) {
    std::string s = agent_state_name(a.state);
    for (auto& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    by_state[s] += 1;
    deactivated += a.deactivated ? 1 : 0;
    draining += a.drain == wire::DrainState::DRAINING ? 1 : 0;
  }
  for (auto& [s, n] : by_state)
    add(agents, n, {{"state", s}});
  families.push_back(std::move(agents));
  auto maint = family("tessera_master_agents_deactivated",
                      "Agents an operator deactivated or is draining.", MetricType::Gauge);
  add(maint, deactivated, {{"drain", "any"}});
  add(maint, draining, {{"drain", "draining"}});
  families.push_back(std::move(maint));

  auto fws = family("tessera_master_frameworks", "Frameworks by connection.", MetricType::Gauge);
  double fw_connected = 0;
  for (auto& [id, f] : frameworks_)
    fw_connected += f.connected ? 1 : 0;
  add(fws, fw_connected, {{"state", "connected"}});
  add(fws, double(frameworks_.size()) - fw_connected, {{"state", "disconnected"}});
  families.push_back(std::move(fws));

  auto tasks = family("tessera_master_tasks", "Live tasks by state.", MetricType::Gauge);
  std::map<std::string, double> live;
  for (auto s : all_states)
    if (!is_terminal(s) && s != wire::TaskState::UNKNOWN)
      live[to_string(s)] = 0;
  for (auto& [key, t] : tasks_)
    if (!is_terminal(t.state))
      live[to_string(t.state)] += 1;
  for (auto& [s, n] : live)
    add(tasks, n, {{"state", s}});
  families.push_back(std::move(tasks));
  auto ended = family("tessera_master_tasks_terminal_total",
                      "Tasks that reached a terminal state, by state.", MetricType::Counter);
  for (auto s : all_states)
    if (is_terminal(s)) {
      auto it = terminal_counts_.find(s);
      add(ended, it == terminal_counts_.end() ? 0 : double(it->second), {{"state", to_string(s)}});
    }
  families.push_back(std::move(ended));

  families.push_back(single("tessera_master_offers_outstanding", "Offers not yet used or declined.",
                            MetricType::Gauge, double(offers_.size())));

  // Resources total/used/offered per role ("*": unreserved; used and
  // offered by the role they were allocated to).
  auto res = family("tessera_master_resources",
                    "Resources of registered agents: total (by reservation), used and offered "
                    "(by allocation role).",
                    MetricType::Gauge);
  std::map<std::tuple<std::string, std::string, std::string>, double> books;  // kind, role, name
  for (auto& [id, a] : agents_)
    if (a.state == wire::AgentViewState::REGISTERED)
      a.total.visit(
          [&](const std::string& n, const std::string& role, Milli v) {
            books[{"total", role, n}] += double(v) / 1000;
          },
          [](auto&&...) {}, [](auto&&...) {});
  for (auto& [key, t] : tasks_)
    if (!is_terminal(t.state))
      for (auto& [n, v] : t.resources.scalar_totals())
        books[{"used", t.role, n}] += v;
  for (auto& [id, o] : offers_)
    for (auto& [n, v] : o.resources.scalar_totals())
      books[{"offered", o.role, n}] += v;
  for (auto& [key, v] : books)
    add(res, v,
        {{"kind", std::get<0>(key)}, {"role", std::get<1>(key)}, {"resource", std::get<2>(key)}});
  families.push_back(std::move(res));

  auto quota = family("tessera_master_role_quota", "Quota limits per role.", MetricType::Gauge);
  auto weight = family("tessera_master_role_weight", "Weights per role.", MetricType::Gauge);
  for (auto& [role, r] : roles_) {
    add(weight, r.weight, {{"role", role}});
    for (auto& [n, v] : r.quota.scalar_totals())
      add(quota, v, {{"role", role}, {"resource", n}});
  }
  families.push_back(std::move(quota));
  families.push_back(std::move(weight));

  auto cycle =
      family("tessera_master_allocation_cycle_ms",
             "How long the allocator's cycles take (milliseconds).", MetricType::Histogram);
  {
    ClientMetric m;
    auto bounds = alloc.getCycleBucketsMs();
    auto counts = alloc.getCycleCounts();
    for (unsigned i = 0; i < bounds.size() && i < counts.size(); ++i)
      m.histogram.bucket.push_back({counts[i], bounds[i]});
    uint64_t all = counts.size() > 0 ? counts[counts.size() - 1] : 0;
    m.histogram.bucket.push_back({all, std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = all;
    m.histogram.sample_sum = alloc.getCycleSumMs();
    cycle.metric.push_back(std::move(m));
  }
  families.push_back(std::move(cycle));

  for (auto c : master.getCounters()) {
    auto name = "tessera_master_" + str(c.getName());
    bool counter = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    auto f = family(name, "The master's count of " + str(c.getName()) + ".",
                    counter ? MetricType::Counter : MetricType::Gauge);
    add(f, c.getValue());
    families.push_back(std::move(f));
  }
  for (auto c : alloc.getCounters()) {
    auto name = "tessera_" + str(c.getName());
    bool counter = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    auto f = family(name, "The allocator's " + str(c.getName()) + ".",
                    counter ? MetricType::Counter : MetricType::Gauge);
    add(f, c.getValue());
    families.push_back(std::move(f));
  }

  metrics::add_message_families(families, node().stats());

  families.push_back(single("tessera_master_api_bad_calls_total",
                            "Operator API calls refused with a 400.", MetricType::Counter,
                            double(bad_calls_)));
  families.push_back(single("tessera_master_api_subscribers", "Open SUBSCRIBE streams.",
                            MetricType::Gauge, double(subscribers_.size())));
  families.push_back(single("tessera_master_api_state_renders_total",
                            "GET_STATE answers rendered anew (the cluster had changed).",
                            MetricType::Counter, double(state_renders_)));
  families.push_back(
      single("tessera_master_api_state_reuses_total",
             "GET_STATE answers that reused the last rendering (nothing had changed).",
             MetricType::Counter, double(state_reuses_)));
  if (config_.extra_metrics)
    for (auto& [name, value] : config_.extra_metrics()) {
      bool counter = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
      auto f = family(name, "Beside the master (HTTP edge, DNS): " + name + ".",
                      counter ? MetricType::Counter : MetricType::Gauge);
      add(f, value);
      families.push_back(std::move(f));
    }
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, families);
  return text.str();
}

}  // namespace tessera
