#include "tools/tessera/bench_registry.hpp"

#include "services/registry/registry.hpp"
#include "tools/tessera/bench_report.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace tessera::bench {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

RegistryAgent agent(uint64_t i) {
  RegistryAgent a;
  a.id = "bench-S" + std::to_string(i);
  a.hostname = "host-" + std::to_string(i);
  a.address =
      "agent@10.0." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) + ":5051";
  return a;
}

Row run_once(const RegistryBenchOptions& o, const std::filesystem::path& dir, int run) {
  // Each run starts empty: its own file, or its own ZooKeeper path.
  auto spec = o.backend == "memory" ? std::string("memory")
              : o.backend.rfind("zk://", 0) == 0
                  ? o.backend + "/bench-" + std::to_string(::getpid()) + "-" + std::to_string(run)
                  : "sqlite:" + (dir / ("registry-" + std::to_string(run) + ".db")).string();
  auto made = make_store(spec, dir.string());
  if (!made)
    throw std::runtime_error(describe(made.error()));
  auto& store = **made;
  uint64_t version = 0;
  auto commit = [&](const std::vector<RegistryChange>& changes) {
    auto v = store.commit(version, changes);
    if (!v)
      throw std::runtime_error(describe(v.error()));
    version = *v;
  };
  std::vector<double> latencies;
  for (uint64_t i = 0; i < o.writes; ++i) {
    auto t0 = Clock::now();
    commit({agent_record(agent(i))});
    latencies.push_back(ms_since(t0));
  }
  auto t0 = Clock::now();
  uint64_t written = 0;
  while (written < o.records) {
    std::vector<RegistryChange> batch;
    for (uint64_t k = 0; k < o.batch && written < o.records; ++k, ++written)
      batch.push_back(agent_record(agent(o.writes + written)));
    commit(batch);
  }
  double batched_ms = ms_since(t0);
  t0 = Clock::now();
  auto snapshot = store.load();
  if (!snapshot)
    throw std::runtime_error(describe(snapshot.error()));
  auto state = decode_registry(*snapshot);
  if (!state)
    throw std::runtime_error(describe(state.error()));
  double load_ms = ms_since(t0);
  Row row;
  row["write_ms_p50"] = percentile(latencies, 0.5);
  row["write_ms_p99"] = percentile(latencies, 0.99);
  row["batch_records_per_s"] = static_cast<double>(o.records) / (batched_ms / 1000.0);
  row["load_ms"] = load_ms;
  row["loaded_records"] = static_cast<double>(state->agents.size());
  return row;
}

}  // namespace

int run_registry_bench(const RegistryBenchOptions& o) {
  std::filesystem::path dir = o.dir;
  bool made_dir = false;
  if (o.backend != "memory" && o.backend != "sqlite" && o.backend.rfind("zk://", 0) != 0) {
    std::fprintf(stderr,
                 "tessera bench registry: --backend %s: expected sqlite, memory or zk://...\n",
                 o.backend.c_str());
    return 2;
  }
  if (dir.empty() && o.backend == "sqlite") {
    char tmpl[] = "/var/tmp/tessera-bench-registry-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::fprintf(stderr, "tessera bench registry: cannot create a directory in /var/tmp\n");
      return 1;
    }
    dir = tmpl;
    made_dir = true;
  }
  int rc = report_medians(
      "registry", o.runs, o.json,
      {{"backend", o.backend},
       {"writes", o.writes},
       {"batch", o.batch},
       {"records", o.records},
       {"dir", dir.string()}},
      [&](int run) { return run_once(o, dir, run); },
      [&](const Row& m) {
        std::printf(
            "tessera bench registry: %s%s, %llu single-record commits, %llu records in batches "
            "of %llu,\nmedian of %d run(s), on %u cores\n\n",
            o.backend.c_str(), o.backend == "sqlite" ? (" in " + dir.string()).c_str() : "",
            static_cast<unsigned long long>(o.writes), static_cast<unsigned long long>(o.records),
            static_cast<unsigned long long>(o.batch), o.runs, std::thread::hardware_concurrency());
        std::printf("%-34s %12.3f ms\n", "one commit p50", m.at("write_ms_p50"));
        std::printf("%-34s %12.3f ms\n", "one commit p99", m.at("write_ms_p99"));
        std::printf("%-34s %12.0f\n", "records/s in batched commits", m.at("batch_records_per_s"));
        std::printf("%-34s %12.2f ms (%.0f records)\n", "reading it all back", m.at("load_ms"),
                    m.at("loaded_records"));
      });
  if (made_dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}

}  // namespace tessera::bench
