// The agent's metrics: GET /metrics (Prometheus text exposition, written by
// prometheus-cpp's serializer) and GET /metrics/snapshot (Mesos's agent
// keys, slave/...). Gauges come from the agent's books, counters from
// AgentMetrics, the node's message stats and the checkpoint writer.

#include "services/agent/agent.hpp"
#include "services/common/metric_families.hpp"

#include <nlohmann/json.hpp>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <limits>
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

// The states an agent reports (UNKNOWN is only ever the master's answer).
constexpr wire::TaskState all_states[] = {
    wire::TaskState::STAGING, wire::TaskState::STARTING,    wire::TaskState::RUNNING,
    wire::TaskState::KILLING, wire::TaskState::FINISHED,    wire::TaskState::FAILED,
    wire::TaskState::KILLED,  wire::TaskState::ERROR,       wire::TaskState::LOST,
    wire::TaskState::DROPPED, wire::TaskState::UNREACHABLE, wire::TaskState::GONE};

// Every AgentMetrics counter by the name it is exported under.
std::vector<std::pair<std::string, uint64_t>> counters_of(const AgentMetrics& m) {
  auto v = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {{"registration_attempts", v(m.registration_attempts)},
          {"registrations", v(m.registrations)},
          {"master_lost", v(m.master_lost)},
          {"refused_not_master", v(m.refused_not_master)},
          {"refused_executor_calls", v(m.refused_executor_calls)},
          {"refused_invalid", v(m.refused_invalid)},
          {"refused_stale_launches", v(m.refused_stale_launches)},
          {"unknown_tasks", v(m.unknown_tasks)},
          {"status_updates_received", v(m.updates_received)},
          {"status_updates_duplicate", v(m.updates_duplicate)},
          {"status_updates_forwarded", v(m.updates_forwarded)},
          {"status_update_retries", v(m.updates_retried)},
          {"acks_unexpected", v(m.acks_unexpected)},
          {"tasks_launched", v(m.tasks_launched)},
          {"executors_exited", v(m.executors_exited)},
          {"containers_destroyed", v(m.containers_destroyed)},
          {"container_ooms", v(m.container_limitations)},
          {"container_errors", v(m.container_errors)},
          {"fetches", v(m.fetches)},
          {"fetch_failures", v(m.fetch_failures)},
          {"checkpoint_failures", v(m.checkpoint_failures)},
          {"checkpoint_refusals", v(m.checkpoint_refusals)},
          {"gc_scans", v(m.gc_scans)},
          {"gc_sandboxes_removed", v(m.gc_sandboxes_removed)},
          {"gc_failures", v(m.gc_failures)}};
}

MetricFamily latency_histogram(const CheckpointLatency* latency) {
  auto f =
      family("tessera_agent_checkpoint_write_seconds",
             "How long the checkpoint writer's batches of writes take.", MetricType::Histogram);
  ClientMetric m;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= CheckpointLatency::bounds_ms.size(); ++i) {
    cumulative += latency ? latency->buckets[i].load() : 0;
    double bound = i < CheckpointLatency::bounds_ms.size()
                       ? CheckpointLatency::bounds_ms[i] / 1e3
                       : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back({cumulative, bound});
  }
  m.histogram.sample_count = latency ? latency->count.load() : 0;
  m.histogram.sample_sum = latency ? double(latency->sum_us.load()) / 1e6 : 0;
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

void Agent::api_metrics(bool prometheus, std::vector<std::pair<std::string, double>> edge,
                        const http::Responder& responder) {
  if (prometheus) {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = prometheus_text(edge);
    return responder.respond(std::move(r));
  }
  auto out = nlohmann::json::object();
  for (auto& [k, v] : snapshot_values(edge))
    out[k] = v;
  responder.respond(http::json_response(200, out.dump()));
}

std::vector<std::pair<std::string, double>> Agent::snapshot_values(
    const std::vector<std::pair<std::string, double>>& edge) {
  std::vector<std::pair<std::string, double>> out;
  auto put = [&](std::string key, double v) { out.emplace_back("slave/" + std::move(key), v); };
  put("uptime_secs", std::chrono::duration<double>(now() - started_at_).count());
  put("registered", registered_ ? 1 : 0);
  std::map<wire::TaskState, double> live;
  Resources used;
  for (const auto& [key, t] : tasks_)
    if (!is_terminal(t.stream.latest_state())) {
      ++live[t.stream.latest_state()];
      if (t.info)
        if (auto r = from_wire(t.info.get().getResources()))
          used += *r;
    }
  for (auto s : all_states) {
    auto ended = terminal_counts_.find(s);
    put("tasks_" + short_state(s), !is_terminal(s)                   ? live[s]
                                   : ended != terminal_counts_.end() ? double(ended->second)
                                                                     : 0.0);
  }
  double registering = 0;
  for (const auto& [key, e] : executors_)
    registering += e.subscribed ? 0 : 1;
  put("executors_running", double(executors_.size()) - registering);
  put("executors_registering", registering);
  put("executors_terminated", double(metrics_.executors_exited.load()));
  put("frameworks_active", double(frameworks_.size()));
  for (const char* r : {"cpus", "mem", "disk", "gpus"}) {
    double total = config_.resources.total(r), u = used.total(r);
    put(std::string(r) + "_total", total);
    put(std::string(r) + "_used", u);
    put(std::string(r) + "_percent", total > 0 ? u / total : 0);
  }
  put("valid_status_updates", double(metrics_.updates_received.load()));
  put("container_launch_errors", double(metrics_.container_errors.load()));
  for (auto& [name, v] : counters_of(metrics_))
    put(name, double(v));
  uint64_t received = 0, rejected = 0;
  for (auto& [type, s] : node().stats().snapshot()) {
    received += s.received;
    for (auto n : s.rejected)
      rejected += n;
  }
  put("messages_received", double(received));
  put("messages_rejected", double(rejected));
  if (writer_) {
    const auto& l = writer_->latency();
    auto n = l.count.load();
    put("checkpoint_writes", double(n));
    put("checkpoint_write_ms_mean", n ? double(l.sum_us.load()) / 1e3 / double(n) : 0);
  }
  put("http_followers", double(followers_.size()));
  for (auto& [name, v] : edge)
    out.emplace_back(name, v);
  return out;
}

std::string Agent::prometheus_text(const std::vector<std::pair<std::string, double>>& edge) {
  std::vector<MetricFamily> families;
  auto tasks = family("tessera_agent_tasks", "Tasks in the agent's books, by latest state.",
                      MetricType::Gauge);
  std::map<std::string, double> by_state;
  for (auto s : all_states)
    if (!is_terminal(s))
      by_state[to_string(s)] = 0;
  for (const auto& [key, t] : tasks_)
    by_state[to_string(t.stream.latest_state())] += 1;
  for (auto& [s, n] : by_state)
    add(tasks, n, {{"state", s}});
  families.push_back(std::move(tasks));
  auto ended = family("tessera_agent_tasks_terminal_total",
                      "Terminal status updates taken, by state.", MetricType::Counter);
  for (auto s : all_states)
    if (is_terminal(s)) {
      auto it = terminal_counts_.find(s);
      add(ended, it == terminal_counts_.end() ? 0 : double(it->second), {{"state", to_string(s)}});
    }
  families.push_back(std::move(ended));
  families.push_back(single("tessera_agent_executors_running", "Executor runs the agent holds.",
                            MetricType::Gauge, double(executors_.size())));
  families.push_back(single("tessera_agent_frameworks", "Frameworks with work on the agent.",
                            MetricType::Gauge, double(frameworks_.size())));
  families.push_back(single("tessera_agent_registered", "1 while registered with a master.",
                            MetricType::Gauge, registered_ ? 1 : 0));
  families.push_back(single("tessera_agent_uptime_seconds", "Since the agent started.",
                            MetricType::Gauge,
                            std::chrono::duration<double>(now() - started_at_).count()));
  families.push_back(single("tessera_agent_http_followers", "Open READ_FILE follow streams.",
                            MetricType::Gauge, double(followers_.size())));
  for (auto& [name, v] : counters_of(metrics_))
    families.push_back(single("tessera_agent_" + name + "_total",
                              "The agent's count of " + name + ".", MetricType::Counter,
                              double(v)));
  families.push_back(latency_histogram(writer_ ? &writer_->latency() : nullptr));

  metrics::add_message_families(families, node().stats());
  for (auto& [name, value] : edge) {
    bool counter = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    families.push_back(single(name, "The HTTP edge's " + name + ".",
                              counter ? MetricType::Counter : MetricType::Gauge, value));
  }
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, families);
  return text.str();
}

}  // namespace tessera
