#include "tools/tessera/bench_runtime.hpp"

#include "runtime/actor.hpp"
#include "runtime/process_launcher.hpp"
#include "services/security/certs.hpp"
#include "tools/tessera/bench_report.hpp"

#include <capnp/testing.capnp.h>
#include <caf/io/middleman.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>
#include <vector>

namespace tessera::bench {

namespace {

namespace tw = tessera::wire::testing;
using namespace std::chrono_literals;
using Seconds = std::chrono::duration<double>;

constexpr uint64_t chunk_messages = 1024;  // sends per activation before yielding

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return Seconds(std::chrono::steady_clock::now() - t0).count();
}

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
};

Latency percentiles(std::vector<double> us) {
  if (us.empty())
    return {};
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[static_cast<size_t>(q * static_cast<double>(us.size() - 1))];
  };
  return {at(0.50), at(0.99)};
}

// -- Tessera actors ------------------------------------------------------------

Outgoing tick(uint64_t n) {
  return build<tw::Tick>([n](tw::Tick::Builder b) { b.setN(n); });
}

Outgoing pong(uint64_t seq) {
  return build<tw::Pong>([seq](tw::Pong::Builder b) { b.setSeq(seq); });
}

// Counts ticks; a Ping(seq = n) request arms it for n ticks, after which it
// reports to the Ping's sender.
class Sink : public Actor {
 public:
  Sink(caf::actor_config& cfg, ActorInit init) : Actor(cfg, std::move(init)) {
    on<tw::Ping>([this](const Received<tw::Ping>& m) {
      target_ = m.body().getSeq();
      count_ = 0;
      reporter_ = m.sender();
      reply(m, pong(target_));
    });
    on<tw::Tick>([this](const Received<tw::Tick>& m) {
      sum_ += m.body().getN();
      if (++count_ == target_)
        send(reporter_, pong(count_));
    });
  }

 private:
  uint64_t target_ = 0;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  Address reporter_;
};

class Echo : public Actor {
 public:
  Echo(caf::actor_config& cfg, ActorInit init) : Actor(cfg, std::move(init)) {
    on<tw::Ping>([this](const Received<tw::Ping>& m) { reply(m, pong(m.body().getSeq())); });
  }
};

class OnewaySender : public Actor {
 public:
  OnewaySender(caf::actor_config& cfg, ActorInit init, Address sink, uint64_t n,
               std::promise<double>* rate)
      : Actor(cfg, std::move(init)), sink_(std::move(sink)), n_(n), rate_(rate) {
    on<tw::Pong>([this](const Received<tw::Pong>&) {
      rate_->set_value(static_cast<double>(n_) / seconds_since(t0_));
    });
  }

 private:
  void on_start() override {
    auto arm = build<tw::Ping>([this](tw::Ping::Builder b) { b.setSeq(n_); });
    request<tw::Pong>(
        sink_, arm, 30s,
        [this](const Received<tw::Pong>&) {
          t0_ = std::chrono::steady_clock::now();
          blast();
        },
        [this](const caf::error&) { rate_->set_value(0); });
  }
  void blast() {
    for (uint64_t i = 0; i < chunk_messages && sent_ < n_; ++i)
      send(sink_, tick(sent_++));
    if (sent_ < n_)
      defer([this] { blast(); });
  }

  Address sink_;
  uint64_t n_;
  uint64_t sent_ = 0;
  std::promise<double>* rate_;
  std::chrono::steady_clock::time_point t0_;
};

class RttPinger : public Actor {
 public:
  RttPinger(caf::actor_config& cfg, ActorInit init, Address echo, uint64_t n,
            std::promise<std::vector<double>>* out)
      : Actor(cfg, std::move(init)), echo_(std::move(echo)), n_(n), out_(out) {}

 private:
  void on_start() override { next(); }
  void next() {
    if (samples_.size() == n_) {
      out_->set_value(std::move(samples_));
      return;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto ping = build<tw::Ping>([this](tw::Ping::Builder b) { b.setSeq(samples_.size()); });
    request<tw::Pong>(
        echo_, ping, 30s,
        [this, t0](const Received<tw::Pong>& m) {
          static_cast<void>(m.body().getSeq());
          samples_.push_back(seconds_since(t0) * 1e6);
          next();
        },
        [this](const caf::error&) { out_->set_value({}); });
  }

  Address echo_;
  uint64_t n_;
  std::vector<double> samples_;
  std::promise<std::vector<double>>* out_;
};

// -- the plain-CAF baseline: same Cap'n Proto encode/decode, no runtime layer --

using start_atom = caf::atom_constant<caf::atom("bstart")>;
using tick_atom = caf::atom_constant<caf::atom("btick")>;
using done_atom = caf::atom_constant<caf::atom("bdone")>;
using blast_atom = caf::atom_constant<caf::atom("bblast")>;
using ping_atom = caf::atom_constant<caf::atom("bping")>;

using Bytes = std::vector<char>;

template <class T, class Fill>
Bytes encode(Fill&& fill) {
  capnp::MallocMessageBuilder builder(build_first_segment_words);  // as tessera::build
  fill(builder.initRoot<T>());
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

template <class T>
uint64_t decode_field(const Bytes& bytes) {
  capnp::FlatArrayMessageReader reader(
      kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), bytes.size() / 8));
  auto root = reader.getRoot<T>();
  if constexpr (std::is_same_v<T, tw::Tick>)
    return root.getN();
  else
    return root.getSeq();
}

struct CafSinkState {
  uint64_t target = 0;
  uint64_t count = 0;
  uint64_t sum = 0;
  caf::actor reporter;
};

// Counts ticks like Sink and answers pings like Echo.
caf::behavior caf_server(caf::stateful_actor<CafSinkState>* self) {
  return {
      [](ping_atom, const Bytes& bytes) {
        auto seq = decode_field<tw::Ping>(bytes);
        return encode<tw::Pong>([seq](tw::Pong::Builder b) { b.setSeq(seq); });
      },
      [=](start_atom, uint64_t n) {
        self->state.target = n;
        self->state.count = 0;
        self->state.reporter = caf::actor_cast<caf::actor>(self->current_sender());
        return n;
      },
      [=](tick_atom, const Bytes& bytes) {
        self->state.sum += decode_field<tw::Tick>(bytes);
        if (++self->state.count == self->state.target)
          self->send(self->state.reporter, done_atom::value, self->state.count);
      },
  };
}

struct CafSenderState {
  uint64_t sent = 0;
  std::chrono::steady_clock::time_point t0;
};

caf::behavior caf_sender(caf::stateful_actor<CafSenderState>* self, caf::actor sink, uint64_t n,
                         std::promise<double>* rate) {
  self->request(sink, caf::infinite, start_atom::value, n).then([=](uint64_t) {
    self->state.t0 = std::chrono::steady_clock::now();
    self->send(self, blast_atom::value);
  });
  return {
      [=](blast_atom) {
        auto& st = self->state;
        for (uint64_t i = 0; i < chunk_messages && st.sent < n; ++i) {
          auto seq = st.sent++;
          self->send(sink, tick_atom::value,
                     encode<tw::Tick>([seq](tw::Tick::Builder b) { b.setN(seq); }));
        }
        if (st.sent < n)
          self->send(self, blast_atom::value);
      },
      [=](done_atom, uint64_t) {
        rate->set_value(static_cast<double>(n) / seconds_since(self->state.t0));
        self->quit();
      },
  };
}

struct CafPingerState {
  std::vector<double> samples;
};

void caf_ping_next(caf::stateful_actor<CafPingerState>* self, caf::actor echo, uint64_t n,
                   std::promise<std::vector<double>>* out) {
  if (self->state.samples.size() == n) {
    out->set_value(std::move(self->state.samples));
    self->quit();
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto seq = self->state.samples.size();
  self->request(echo, caf::infinite, ping_atom::value,
                encode<tw::Ping>([seq](tw::Ping::Builder b) { b.setSeq(seq); }))
      .then([=](const Bytes& reply) {
        static_cast<void>(decode_field<tw::Pong>(reply));
        self->state.samples.push_back(seconds_since(t0) * 1e6);
        caf_ping_next(self, echo, n, out);
      });
}

caf::behavior caf_pinger(caf::stateful_actor<CafPingerState>* self, caf::actor echo, uint64_t n,
                         std::promise<std::vector<double>>* out) {
  caf_ping_next(self, echo, n, out);
  return {[](caf::unit_t) {}};
}

// -- measurements ----------------------------------------------------------------

struct Targets {
  Address sink, echo;             // Tessera actors
  caf::actor caf_sink, caf_echo;  // plain CAF actors
};

struct Figures {
  double oneway = 0;
  Latency rtt;
};

Figures measure_tessera(Node& node, const Targets& t, uint64_t messages, uint64_t trips,
                        const std::string& tag) {
  Figures f;
  std::promise<double> rate;
  auto rate_f = rate.get_future();
  if (!node.spawn<OnewaySender>("bench.sender." + tag, t.sink, messages, &rate))
    return f;
  f.oneway = rate_f.get();
  std::promise<std::vector<double>> lat;
  auto lat_f = lat.get_future();
  if (!node.spawn<RttPinger>("bench.pinger." + tag, t.echo, trips, &lat))
    return f;
  f.rtt = percentiles(lat_f.get());
  return f;
}

Figures measure_caf(Node& node, const Targets& t, uint64_t messages, uint64_t trips) {
  Figures f;
  std::promise<double> rate;
  auto rate_f = rate.get_future();
  node.system().spawn(caf_sender, t.caf_sink, messages, &rate);
  f.oneway = rate_f.get();
  std::promise<std::vector<double>> lat;
  auto lat_f = lat.get_future();
  node.system().spawn(caf_pinger, t.caf_echo, trips, &lat);
  f.rtt = percentiles(lat_f.get());
  return f;
}

// The peer process for cross-process figures, started and stopped by pid.
class Peer {
 public:
  Peer(const std::string& self_path, const std::string& tls_dir) {
    ProcessSpec spec;
    spec.argv = {self_path, "bench-peer"};
    if (!tls_dir.empty()) {
      spec.argv.push_back("--tls-dir");
      spec.argv.push_back(tls_dir);
    }
    spec.stdout_path = out_path_;
    auto pid = launcher_.spawn(spec, [this](const ProcessExit&) { exited_ = true; });
    if (!pid)
      throw std::runtime_error("cannot start bench peer: " + describe(pid.error()));
    pid_ = *pid;
    for (int i = 0; i < 10000 && !exited_; ++i) {
      std::ifstream in(out_path_);
      std::string word;
      if (in >> word >> tessera_port_ >> caf_port_ && word == "READY")
        return;
      std::this_thread::sleep_for(1ms);
    }
    throw std::runtime_error("bench peer did not start");
  }
  ~Peer() {
    if (!exited_)
      static_cast<void>(launcher_.kill(pid_, SIGKILL));
    std::filesystem::remove(out_path_);
  }
  uint16_t tessera_port_ = 0;
  uint16_t caf_port_ = 0;

 private:
  std::string out_path_ = "/tmp/tessera-bench-peer-" + std::to_string(::getpid());
  ProcessLauncher launcher_;
  int pid_ = 0;
  std::atomic<bool> exited_{false};
};

// The three figures of one measurement under the JSON keys the issue names.
void put(Row& row, const std::string& prefix, const Figures& f) {
  row[prefix + "oneway_msgs_per_s"] = f.oneway;
  row[prefix + "rtt_p50_us"] = f.rtt.p50_us;
  row[prefix + "rtt_p99_us"] = f.rtt.p99_us;
}

// A throwaway CA with a certificate for the measuring node and one for the
// peer, removed afterwards.
class BenchPki {
 public:
  BenchPki() {
    char tmpl[] = "/tmp/tessera-bench-tls-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error("cannot make a directory for the bench's certificates");
    dir_ = tmpl;
    auto fail = [](const caf::error& e) { throw std::runtime_error(describe(e)); };
    if (auto ok = security::init_ca(dir_); !ok)
      fail(ok.error());
    for (const char* name : {"bench", "peer"}) {
      security::IssueOptions o;
      o.name = name;
      o.role = security::CertRole::agent;
      if (auto ok = security::issue(dir_, o); !ok)
        fail(ok.error());
    }
  }
  ~BenchPki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

TlsConfig tls_of(const std::filesystem::path& dir, const std::string& name) {
  return TlsConfig{(dir / (name + ".crt")).string(), (dir / (name + ".key")).string(),
                   (dir / "ca.crt").string()};
}

// Tessera's cross-process figures between two nodes that speak mutual TLS.
Figures measure_tls(const RuntimeBenchOptions& o, const std::string& tag) {
  BenchPki pki;
  NodeConfig config;
  config.tls = tls_of(pki.dir(), "bench");
  auto started = Node::start(config);
  if (!started)
    throw std::runtime_error(describe(started.error()));
  auto& node = **started;
  Peer peer(o.self_path, pki.dir().string());
  Targets remote{Address{"bench.sink", "127.0.0.1", peer.tessera_port_},
                 Address{"bench.echo", "127.0.0.1", peer.tessera_port_},
                 {},
                 {}};
  return measure_tessera(node, remote, o.messages / 2, o.round_trips, tag);
}

Row run_once(const RuntimeBenchOptions& o, int run) {
  auto started = Node::start();
  if (!started)
    throw std::runtime_error(describe(started.error()));
  auto& node = **started;
  auto tag = std::to_string(run);
  Row row;
  {
    auto server = node.system().spawn(caf_server);
    Targets local{node.address_of("bench.sink"), node.address_of("bench.echo"), server, server};
    static_cast<void>(node.spawn<Sink>("bench.sink"));
    static_cast<void>(node.spawn<Echo>("bench.echo"));
    auto t = measure_tessera(node, local, o.messages, o.round_trips, "in" + tag);
    auto c = measure_caf(node, local, o.messages, o.round_trips);
    put(row, "inproc_", t);
    put(row, "caf_inproc_", c);
    caf::anon_send_exit(server, caf::exit_reason::user_shutdown);
  }
  Peer peer(o.self_path, {});
  auto caf_sink_h = node.system().middleman().remote_actor("127.0.0.1", peer.caf_port_);
  if (!caf_sink_h)
    throw std::runtime_error("cannot reach bench peer: " + caf::to_string(caf_sink_h.error()));
  // The peer publishes one CAF actor that plays both baseline roles.
  Targets remote{Address{"bench.sink", "127.0.0.1", peer.tessera_port_},
                 Address{"bench.echo", "127.0.0.1", peer.tessera_port_}, *caf_sink_h, *caf_sink_h};
  auto t = measure_tessera(node, remote, o.messages / 2, o.round_trips, "x" + tag);
  auto c = measure_caf(node, remote, o.messages / 2, o.round_trips);
  put(row, "xproc_", t);
  put(row, "caf_xproc_", c);
  if (o.tls)
    put(row, "tls_xproc_", measure_tls(o, "t" + tag));
  return row;
}

void print_table(const Row& m, const RuntimeBenchOptions& o) {
  auto line = [&](const char* what, const std::string& key, const char* unit) {
    std::printf("%-28s %14.1f %14.1f  %s\n", what, m.at(key), m.at("caf_" + key), unit);
  };
  std::printf(
      "tessera bench runtime: median of %d run(s), %llu one-way msgs (half across\n"
      "processes), %llu round trips, on %u cores\n\n",
      o.runs, static_cast<unsigned long long>(o.messages),
      static_cast<unsigned long long>(o.round_trips), std::thread::hardware_concurrency());
  std::printf("%-28s %14s %14s\n", "", "tessera", "plain CAF");
  line("in-process one-way", "inproc_oneway_msgs_per_s", "msgs/s");
  line("in-process RTT p50", "inproc_rtt_p50_us", "us");
  line("in-process RTT p99", "inproc_rtt_p99_us", "us");
  line("cross-process one-way", "xproc_oneway_msgs_per_s", "msgs/s");
  line("cross-process RTT p50", "xproc_rtt_p50_us", "us");
  line("cross-process RTT p99", "xproc_rtt_p99_us", "us");
  if (!o.tls)
    return;
  // TLS has no plain-CAF column: its peer is Tessera's plaintext transport.
  auto tls_line = [&](const char* what, const std::string& key, const char* unit) {
    std::printf("%-28s %14.1f %14s  %s  (%.2fx plaintext)\n", what, m.at("tls_" + key), "", unit,
                m.at("tls_" + key) / m.at(key));
  };
  tls_line("cross-process TLS one-way", "xproc_oneway_msgs_per_s", "msgs/s");
  tls_line("cross-process TLS RTT p50", "xproc_rtt_p50_us", "us");
  tls_line("cross-process TLS RTT p99", "xproc_rtt_p99_us", "us");
}

}  // namespace

int run_runtime_bench(const RuntimeBenchOptions& options) {
  return report_medians(
      "runtime", options.runs, options.json,
      {{"messages", options.messages}, {"round_trips", options.round_trips}, {"tls", options.tls}},
      [&](int run) { return run_once(options, run); },
      [&](const Row& m) { print_table(m, options); });
}

int run_runtime_bench_peer(const std::string& tls_dir) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  NodeConfig config;
  if (!tls_dir.empty())
    config.tls = tls_of(tls_dir, "peer");
  auto node = Node::start(config);
  if (!node) {
    std::fprintf(stderr, "bench-peer: %s\n", describe(node.error()).c_str());
    return 1;
  }
  static_cast<void>((*node)->spawn<Sink>("bench.sink"));
  static_cast<void>((*node)->spawn<Echo>("bench.echo"));
  auto caf_actor = (*node)->system().spawn(caf_server);
  auto port = (*node)->system().middleman().publish(caf_actor, 0, "127.0.0.1");
  if (!port) {
    std::fprintf(stderr, "bench-peer: %s\n", caf::to_string(port.error()).c_str());
    return 1;
  }
  std::printf("READY %u %u\n", (*node)->port(), *port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  caf::anon_send_exit(caf_actor, caf::exit_reason::user_shutdown);
  return 0;
}

}  // namespace tessera::bench
