#include "tools/tessera/bench_dns.hpp"

#include "runtime/log.hpp"
#include "runtime/node.hpp"
#include "services/common/wire.hpp"
#include "services/dns/dns_service.hpp"
#include "services/master/master.hpp"
#include "services/scheduler/scheduler.hpp"
#include "tools/tessera/bench_report.hpp"
#include "tools/tessera/sim_agent.hpp"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

namespace tessera::bench {

namespace {

using WallClock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* framework_name = "bench";

std::string task_name(uint64_t k) {
  return "t" + std::to_string(k);
}

// What the bench thread and the framework actor share.
struct Shared {
  std::atomic<uint64_t> wanted{0};  // tasks to launch, in all
  std::atomic<uint64_t> running{0};
  uint64_t first_sample = 0;
  std::vector<std::atomic<int64_t>> running_ns;  // per sample: its RUNNING status's timestamp
  explicit Shared(uint64_t samples) : running_ns(samples) {}
};

// Launches tasks t0, t1, ... (one cpu, one port each) up to shared.wanted,
// and declines what it does not use for long, reviving when more are wanted.
class Filler : public Scheduler {
 public:
  Filler(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
         std::shared_ptr<Shared> shared)
      : Scheduler(cfg, std::move(init), std::move(config)), shared_(std::move(shared)) {}

 protected:
  void offers(const std::vector<Offer>& offers) override {
    if (!watching_) {
      watching_ = true;
      watch_wanted();
    }
    auto wanted = shared_->wanted.load();
    for (const auto& o : offers) {
      std::vector<TaskSpec> specs;
      auto left = o.resources.allocatable_to(o.role);
      while (next_ < wanted && specs.size() < 64) {
        auto ports = left.get_ranges("ports");
        if (ports.empty() || !left.contains(*Resources::parse("cpus:1;mem:1")))
          break;
        TaskSpec t;
        t.id = task_name(next_);
        t.name = t.id;
        t.argv = {"sleep", "forever"};  // simulated: nothing runs
        t.resources = *Resources::parse("cpus:1;mem:1") +
                      Resources::ranges("ports", {{ports[0].begin, ports[0].begin}});
        left -= t.resources;
        specs.push_back(std::move(t));
        ++next_;
      }
      if (specs.empty()) {
        idle_ = next_ >= wanted;
        decline({o.id}, idle_ ? 3600s : 0s);
      } else
        accept({o.id}, specs, 0s);
    }
  }
  void update(const TaskStatus& s) override {
    if (s.state != TaskState::RUNNING)
      return;
    ++shared_->running;
    auto k = std::stoull(s.task_id.substr(1));
    if (k >= shared_->first_sample && k - shared_->first_sample < shared_->running_ns.size())
      shared_->running_ns[k - shared_->first_sample] =
          std::chrono::duration_cast<std::chrono::nanoseconds>(s.timestamp.time_since_epoch())
              .count();
  }

 private:
  // Offers declined for long while nothing is wanted (the allocator then
  // idles, as during dnsperf); every 5 ms: more wanted? revive.
  void watch_wanted() {
    if (idle_ && shared_->wanted.load() > next_) {
      idle_ = false;
      revive();
    }
    after(5ms, [this] { watch_wanted(); });
  }

  std::shared_ptr<Shared> shared_;
  uint64_t next_ = 0;
  bool idle_ = false;
  bool watching_ = false;
};

void wait_for(const std::function<bool()>& done, std::chrono::seconds timeout, const char* what) {
  auto deadline = WallClock::now() + timeout;
  while (!done()) {
    if (WallClock::now() > deadline)
      throw std::runtime_error(std::string("timed out waiting for ") + what);
    std::this_thread::sleep_for(10ms);
  }
}

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A UDP client asking one name until it has an A record: the wall clock
// when it first does (ldns builds the query and reads the answer).
class Prober {
 public:
  explicit Prober(const std::string& server) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    auto colon = server.rfind(':');
    to.sin_port = htons(static_cast<uint16_t>(std::stoi(server.substr(colon + 1))));
    ::inet_pton(AF_INET, server.substr(0, colon).c_str(), &to.sin_addr);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
      throw std::runtime_error("cannot open a UDP socket to the server");
  }
  ~Prober() { ::close(fd_); }

  int64_t resolved_at(const std::string& name, std::chrono::seconds timeout) {
    ldns_pkt* query = nullptr;
    if (ldns_pkt_query_new_frm_str(&query, name.c_str(), LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
                                   LDNS_RD) != LDNS_STATUS_OK)
      throw std::runtime_error("cannot build a query for " + name);
    uint8_t* wire = nullptr;
    size_t size = 0;
    ldns_pkt2wire(&wire, query, &size);
    ldns_pkt_free(query);
    auto deadline = WallClock::now() + timeout;
    int64_t at = -1;
    while (at < 0 && WallClock::now() < deadline) {
      (void)::send(fd_, wire, size, 0);
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5) <= 0)
        continue;
      uint8_t buf[4096];
      auto got = ::recv(fd_, buf, sizeof buf, 0);
      ldns_pkt* answer = nullptr;
      if (got > 0 && ldns_wire2pkt(&answer, buf, static_cast<size_t>(got)) == LDNS_STATUS_OK) {
        if (ldns_pkt_ancount(answer) > 0)
          at = wall_ns();
        ldns_pkt_free(answer);
      }
      if (at < 0)
        std::this_thread::sleep_for(100us);
    }
    std::free(wire);
    if (at < 0)
      throw std::runtime_error(name + " did not resolve");
    return at;
  }

 private:
  int fd_ = -1;
};

struct Dnsperf {
  double queries_per_s = -1;
  double lost_pct = -1;     // queries never answered
  double noerror_pct = -1;  // of the answers, NOERROR (every name asked exists)
};

// A percentage dnsperf prints as "(12.34%)" after marker on line, or -1.
double percent_after(const std::string& line, const char* marker) {
  auto at = line.find(marker);
  if (at == std::string::npos)
    return -1;
  auto open = line.find('(', at);
  return open == std::string::npos ? -1 : std::stod(line.substr(open + 1));
}

// dnsperf against server, from a file of random names of the tasks.
Dnsperf run_dnsperf(const std::string& server, uint64_t tasks, double seconds) {
  char dir[] = "/tmp/tessera-bench-dns-XXXXXX";
  if (!::mkdtemp(dir))
    throw std::runtime_error("cannot create a directory in /tmp");
  auto data = std::string(dir) + "/queries.txt";
  auto out = std::string(dir) + "/dnsperf.out";
  {
    std::ofstream f(data);
    std::mt19937_64 rng(42);
    for (uint64_t i = 0; i < std::min<uint64_t>(tasks * 2, 200'000); ++i) {
      auto k = rng() % tasks;
      if (i % 2)
        f << "_" << task_name(k) << "._tcp." << framework_name << ".tessera. SRV\n";
      else
        f << task_name(k) << "." << framework_name << ".tessera. A\n";
    }
  }
  auto colon = server.rfind(':');
  auto cmd = "dnsperf -s " + server.substr(0, colon) + " -p " + server.substr(colon + 1) + " -d " +
             data + " -l " + std::to_string(seconds) + " -c 8 -q 500 > " + out + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  std::string line;
  Dnsperf result;
  std::string all;
  while (std::getline(in, line)) {
    all += line + "\n";
    auto at = line.find("Queries per second:");
    if (at != std::string::npos)
      result.queries_per_s = std::stod(line.substr(at + 19));
    if (line.find("Queries lost:") != std::string::npos)
      result.lost_pct = percent_after(line, "Queries lost:");
    if (line.find("Response codes:") != std::string::npos)
      result.noerror_pct = percent_after(line, "NOERROR");
  }
  std::remove(data.c_str());
  std::remove(out.c_str());
  ::rmdir(dir);
  if (rc != 0 || result.queries_per_s < 0)
    throw std::runtime_error("dnsperf failed (is Debian's dnsperf installed?):\n" + all);
  return result;
}

// Heap the record table takes for `tasks` tasks as the bench names them,
// measured alone: malloc's in-use bytes before and after filling one.
std::pair<double, double> table_bytes(uint64_t tasks, uint64_t agents) {
  ::malloc_trim(0);
  auto before = ::mallinfo2().uordblks;
  auto table = std::make_unique<dns::RecordTable>();
  table->apply([&](dns::RecordTable::Batch& b) {
    for (uint64_t a = 0; a < agents; ++a)
      b.upsert_agent("agent-" + std::to_string(a), "agent-" + std::to_string(a) + "@127.0.0.1:5051",
                     "sim");
    b.upsert_framework("framework-1", framework_name);
    dns::TaskFacts f;
    f.framework_id = "framework-1";
    f.listed = true;
    for (uint64_t k = 0; k < tasks; ++k) {
      f.task_id = f.name = task_name(k);
      f.agent_id = "agent-" + std::to_string(k % agents);
      f.ports = {static_cast<uint16_t>(31000 + k / agents)};
      b.upsert_task(f);
    }
  });
  auto after = ::mallinfo2().uordblks;
  auto records = table->stats().records;
  double bytes = double(after - before);
  return {bytes / double(records), bytes / double(tasks)};
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(p * double(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

Row measure(const DnsBenchOptions& o) {
  NodeConfig nc;
  nc.host = "127.0.0.1";
  auto node = Node::start(nc);
  if (!node)
    throw std::runtime_error("cannot start a node: " + describe(node.error()));
  MasterConfig mc;
  mc.allocation_interval = 20ms;
  mc.agent_ping_interval = 30s;
  auto master = (*node)->spawn<Master>("master", mc);
  if (!master)
    throw std::runtime_error("cannot start the master");
  dns::DnsServiceConfig dc;
  dc.master = *master;
  dc.server.port = 0;
  auto dns = dns::DnsService::start(node->get(), dc);
  if (!dns)
    throw std::runtime_error("cannot start the DNS server: " + what(dns.error()));
  struct Stop {
    dns::DnsService* dns;
    Node* node;
    ~Stop() {
      dns->stop();
      node->stop();
    }
  } stop{dns->get(), node->get()};
  auto server = (*dns)->address();

  uint64_t per_agent = (o.tasks + o.samples + o.agents - 1) / o.agents;
  auto total = *Resources::parse("cpus:" + std::to_string(per_agent + 8) +
                                 ";mem:" + std::to_string(per_agent + 8) + ";ports:[31000-" +
                                 std::to_string(31000 + per_agent + 8) + "]");
  for (uint64_t i = 0; i < o.agents; ++i)
    (*node)->spawn<SimAgent>("agent-" + std::to_string(i), *master, total, i + 1);
  wait_for(
      [&] { return (*dns)->feed().ready.load() && (*dns)->table().stats().agents >= o.agents; },
      300s, "the agents to register");

  auto shared = std::make_shared<Shared>(o.samples);
  shared->first_sample = o.tasks;
  shared->wanted = o.tasks;
  SchedulerConfig sc;
  sc.master = *master;
  sc.framework.name = framework_name;
  sc.framework.user = "bench";
  auto filler = (*node)->spawn<Filler>("filler", sc, shared);
  if (!filler)
    throw std::runtime_error("cannot start the framework");
  auto started = WallClock::now();
  wait_for([&] { return (*dns)->table().stats().listed >= o.tasks; }, 900s,
           "every task to have records");
  Row row;
  row["load_s"] = std::chrono::duration<double>(WallClock::now() - started).count();

  // Freshness: one task at a time, asked for from before it runs.
  Prober prober(server);
  std::vector<double> fresh_ms;
  for (uint64_t s = 0; s < o.samples; ++s) {
    auto k = o.tasks + s;
    shared->wanted = k + 1;
    auto resolved = prober.resolved_at(task_name(k) + "." + framework_name + ".tessera.", 30s);
    wait_for([&] { return shared->running_ns[s].load() != 0; }, 30s, "a RUNNING update");
    fresh_ms.push_back(double(resolved - shared->running_ns[s].load()) / 1e6);
  }
  row["freshness_ms_p50"] = percentile(fresh_ms, 0.5);
  row["freshness_ms_p99"] = percentile(fresh_ms, 0.99);

  // Throughput: dnsperf against the table of every task.
  auto stats = (*dns)->table().stats();
  row["records"] = double(stats.records);
  auto perf = run_dnsperf(server, o.tasks, o.dnsperf_s);
  row["queries_per_s"] = perf.queries_per_s;
  row["queries_lost_pct"] = perf.lost_pct;
  row["noerror_pct"] = perf.noerror_pct;
  auto [per_record, per_task] = table_bytes(o.tasks, o.agents);
  row["bytes_per_record"] = per_record;
  row["bytes_per_task"] = per_task;
  return row;
}

}  // namespace

int run_dns_bench(const DnsBenchOptions& o) {
  set_log_level("error");
  json params = {{"tasks", o.tasks}, {"agents", o.agents}, {"samples", o.samples}};
  return report_medians(
      "dns", o.runs, o.json, params, [&](int) { return measure(o); },
      [&](const Row& r) {
        std::printf("DNS, %llu tasks on %llu simulated agents (medians of %d runs)\n",
                    static_cast<unsigned long long>(o.tasks),
                    static_cast<unsigned long long>(o.agents), o.runs);
        std::printf("  %-22s %12.2f ms\n", "freshness_ms_p50", r.at("freshness_ms_p50"));
        std::printf("  %-22s %12.2f ms\n", "freshness_ms_p99", r.at("freshness_ms_p99"));
        std::printf("  %-22s %12.0f\n", "queries_per_s", r.at("queries_per_s"));
        std::printf("  %-22s %12.3f %%\n", "queries_lost_pct", r.at("queries_lost_pct"));
        std::printf("  %-22s %12.2f %%\n", "noerror_pct", r.at("noerror_pct"));
        std::printf("  %-22s %12.0f\n", "records", r.at("records"));
        std::printf("  %-22s %12.1f bytes\n", "bytes_per_record", r.at("bytes_per_record"));
        std::printf("  %-22s %12.1f bytes\n", "bytes_per_task", r.at("bytes_per_task"));
        std::printf("  %-22s %12.1f s\n", "load_s", r.at("load_s"));
      });
}

}  // namespace tessera::bench
