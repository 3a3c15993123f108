#pragma once
// Building Prometheus metric families by hand for prometheus-cpp's text
// serializer: the master's and the agent's /metrics keep their figures in
// their own books and turn them into families on each scrape. Users link
// prometheus-cpp::core.

#include "runtime/stats.hpp"
#include "services/common/wire.hpp"

#include <prometheus/metric_family.h>

#include <array>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace tessera::metrics {

inline prometheus::MetricFamily family(std::string name, std::string help,
                                       prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// One sample of a counter or gauge family.
inline void add(prometheus::MetricFamily& f, double value,
                std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

// A family of one sample.
inline prometheus::MetricFamily single(std::string name, std::string help,
                                       prometheus::MetricType type, double value) {
  auto f = family(std::move(name), std::move(help), type);
  add(f, value);
  return f;
}

// Every task state, in wire order.
inline constexpr wire::TaskState all_task_states[] = {
    wire::TaskState::STAGING, wire::TaskState::STARTING,    wire::TaskState::RUNNING,
    wire::TaskState::KILLING, wire::TaskState::FINISHED,    wire::TaskState::FAILED,
    wire::TaskState::KILLED,  wire::TaskState::ERROR,       wire::TaskState::LOST,
    wire::TaskState::DROPPED, wire::TaskState::UNREACHABLE, wire::TaskState::GONE,
    wire::TaskState::UNKNOWN};

// Mesos's metric names for a state: TASK_RUNNING -> running.
inline std::string short_state(wire::TaskState s) {
  std::string name = std::string(to_string(s)).substr(5);
  for (auto& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// tessera_messages_received_total{type} and
// tessera_messages_rejected_total{reason}, from a node's message counters.
inline void add_message_families(std::vector<prometheus::MetricFamily>& families,
                                 const Stats& stats) {
  using prometheus::MetricType;
  auto received =
      family("tessera_messages_received_total", "Messages received, by type.", MetricType::Counter);
  auto rejected =
      family("tessera_messages_rejected_total",
             "Messages refused before any handler saw them, by reason.", MetricType::Counter);
  std::array<uint64_t, reject_reason_count> reasons{};
  for (auto& [type, s] : stats.snapshot()) {
    if (s.received > 0)
      add(received, double(s.received), {{"type", s.name}});
    for (size_t i = 0; i < reject_reason_count; ++i)
      reasons[i] += s.rejected[i];
  }
  for (size_t i = 0; i < reject_reason_count; ++i)
    add(rejected, double(reasons[i]), {{"reason", to_string(static_cast<Reject>(i))}});
  families.push_back(std::move(received));
  families.push_back(std::move(rejected));
}

}  // namespace tessera::metrics
