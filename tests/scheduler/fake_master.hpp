#pragma once
// Test doubles for the scheduler library's tests: a fake master that records
// every SchedulerCall and sends the events a test tells it to, a fake agent
// that serves sandbox files, and a framework that records its callbacks.
// Each runs as a real actor on a real node; the test hands them work through
// a Remote (a job queue the actor drains when the test pokes it).

#include "runtime/actor.hpp"
#include "services/scheduler/scheduler.hpp"
#include "support/ping_pong.hpp"

#include <catch2/catch.hpp>

#include <capnp/agent.capnp.h>
#include <capnp/scheduler.capnp.h>

#include <deque>
#include <future>
#include <mutex>

namespace tessera::testing {

using namespace std::chrono_literals;
using Call = wire::SchedulerCall;
using Event = wire::SchedulerEvent;

// Runs test code on an actor's own thread: call() queues a job, pokes the
// actor with a Ping and waits for the job's result.
template <class A>
class Remote {
 public:
  // From the actor's constructor.
  void bind(A* self, Node* node, Address address) {
    self_ = self;
    node_ = node;
    address_ = std::move(address);
  }
  // On the actor: runs what is queued.
  void drain() {
    std::deque<std::function<void()>> jobs;
    {
      std::lock_guard<std::mutex> guard(mu_);
      jobs.swap(jobs_);
    }
    for (auto& job : jobs)
      job();
  }
  template <class F>
  auto call(F fn) -> decltype(fn(std::declval<A&>())) {
    using R = decltype(fn(std::declval<A&>()));
    auto task = std::make_shared<std::packaged_task<R()>>([this, fn] { return fn(*self_); });
    auto result = task->get_future();
    {
      std::lock_guard<std::mutex> guard(mu_);
      jobs_.push_back([task] { (*task)(); });
    }
    node_->send(address_, make_ping(0));
    REQUIRE(result.wait_for(10s) == std::future_status::ready);
    return result.get();
  }

 private:
  A* self_ = nullptr;
  Node* node_ = nullptr;
  Address address_;
  std::mutex mu_;
  std::deque<std::function<void()>> jobs_;
};

// Every call the fake master received, in order; outlives master restarts.
class CallLog {
 public:
  void add(const Payload& p) {
    std::lock_guard<std::mutex> guard(mu_);
    calls_.push_back(p);
  }
  size_t count(Call::Which which) const {
    size_t n = 0;
    for_each([&](Call::Reader c) { n += c.which() == which; });
    return n;
  }
  // Calls fn with the last call of that kind; false if there is none.
  template <class F>
  bool last(Call::Which which, F fn) const {
    std::optional<Payload> found;
    {
      std::lock_guard<std::mutex> guard(mu_);
      for (const auto& p : calls_)
        if (read(p).getRoot<Call>().which() == which)
          found = p;
    }
    if (!found)
      return false;
    auto reader = read(*found);
    fn(reader.getRoot<Call>());
    return true;
  }
  template <class F>
  void for_each(F fn) const {
    std::lock_guard<std::mutex> guard(mu_);
    for (const auto& p : calls_) {
      auto reader = read(p);
      fn(reader.getRoot<Call>());
    }
  }

 private:
  static capnp::FlatArrayMessageReader read(const Payload& p) {
    return capnp::FlatArrayMessageReader(p.words());
  }
  mutable std::mutex mu_;
  std::vector<Payload> calls_;
};

struct FakeMasterOptions {
  bool answer_subscribe = true;
  std::string framework_id = "fw-1";  // for subscribes that bring none
  Duration heartbeat_interval = Duration::zero();
};

struct StatusSpec {
  std::string task_id;
  std::string agent_id = "agent-1";
  TaskState state = TaskState::RUNNING;
  std::string uuid;  // non-empty: must be acknowledged
  int exit_code = -1;
  int term_signal = 0;
  std::string message;
  TaskReason reason = TaskReason::NONE;
};

inline StatusSpec status(std::string task_id, TaskState state, std::string uuid = {}) {
  StatusSpec s;
  s.task_id = std::move(task_id);
  s.state = state;
  s.uuid = std::move(uuid);
  return s;
}

class FakeMaster : public Actor {
 public:
  using LaunchFn = std::function<void(FakeMaster&, wire::TaskInfo::Reader)>;
  using KillFn = std::function<void(FakeMaster&, const std::string& task_id)>;

  FakeMaster(caf::actor_config& cfg, ActorInit init, FakeMasterOptions options,
             std::shared_ptr<CallLog> log, std::shared_ptr<Remote<FakeMaster>> remote)
      : Actor(cfg, std::move(init)),
        options_(std::move(options)),
        log_(std::move(log)),
        remote_(std::move(remote)) {
    remote_->bind(this, &node(), me());
    on<testwire::Ping>([this](const Received<testwire::Ping>&) { remote_->drain(); });
    on<Call>([this](const Received<Call>& m) { on_call(m); });
  }

  // Set from the test (through Remote) or at construction.
  LaunchFn on_launch;
  KillFn on_kill;
  bool silent = false;  // stop sending heartbeats

  const Address& subscriber() const { return subscriber_; }
  // What the master holds suppressed, as if a SUPPRESS or REVIVE were lost.
  void set_suppressed(std::set<std::string> roles) { suppressed_ = std::move(roles); }

  template <class Fill>
  void send_event(Fill fill) {
    send(subscriber_, build<Event>([&](Event::Builder e) { fill(e); }));
  }

  void offer(const std::string& id, const Resources& resources, const Address& agent_address = {},
             const std::string& role = "*", const std::string& agent_id = "agent-1") {
    offers({{id, agent_id, "host-1", agent_address, role, resources, {}}});
  }

  void offers(const std::vector<Offer>& list) {
    send_event([&](Event::Builder e) {
      auto out = e.initOffers(static_cast<unsigned>(list.size()));
      for (unsigned i = 0; i < list.size(); ++i) {
        const auto& o = list[i];
        out[i].setOfferId(o.id);
        out[i].setFrameworkId(framework_id_);
        out[i].setAgentId(o.agent_id);
        out[i].setHostname(o.hostname);
        to_wire(o.resources, out[i].initResources(wire_size(o.resources)));
        to_wire(o.attributes, out[i].initAttributes(static_cast<unsigned>(o.attributes.size())));
        out[i].setAllocationRole(o.role);
        out[i].setAgentAddress(o.agent_address.empty() ? "" : o.agent_address.to_string());
      }
    });
  }

  void update(const StatusSpec& s) {
    send_event([&](Event::Builder e) {
      auto u = e.initUpdate();
      u.setTaskId(s.task_id);
      u.setAgentId(s.agent_id);
      u.setState(s.state);
      u.setReason(s.reason);
      u.setMessage(s.message);
      u.setUuid(data(s.uuid));
      u.setExitCode(s.exit_code);
      u.setTermSignal(s.term_signal);
      u.setSource(s.uuid.empty() ? TaskSource::MASTER : TaskSource::EXECUTOR);
      u.setTimestampNs(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
    });
  }

 private:
  void on_call(const Received<Call>& m) {
    log_->add(m.envelope().payload);
    auto c = m.body();
    switch (c.which()) {
      case Call::SUBSCRIBE:
        subscriber_ = m.sender();
        // Suppression as the real master keeps it, for its heartbeats.
        roles_.clear();
        for (auto r : c.getSubscribe().getFrameworkInfo().getRoles())
          roles_.insert(str(r));
        suppressed_.clear();
        for (auto r : c.getSubscribe().getSuppressedRoles())
          suppressed_.insert(str(r));
        if (options_.answer_subscribe)
          answer_subscribe(str(c.getFrameworkId()));
        break;
      case Call::ACCEPT:
        if (on_launch)
          for (auto op : c.getAccept().getOperations())
            if (op.isLaunch())
              for (auto task : op.getLaunch())
                on_launch(*this, task);
        break;
      case Call::SUPPRESS:
        if (c.getSuppress().getRoles().size() == 0)
          suppressed_.insert(roles_.begin(), roles_.end());
        for (auto r : c.getSuppress().getRoles())
          suppressed_.insert(str(r));
        break;
      case Call::REVIVE:
        if (c.getRevive().getRoles().size() == 0)
          suppressed_.clear();
        for (auto r : c.getRevive().getRoles())
          suppressed_.erase(str(r));
        break;
      case Call::KILL:
        if (on_kill)
          on_kill(*this, str(c.getKill().getTaskId()));
        break;
      default:
        break;
    }
  }

  void answer_subscribe(const std::string& id) {
    framework_id_ = id.empty() ? options_.framework_id : id;
    send_event([&](Event::Builder e) {
      auto s = e.initSubscribed();
      s.setFrameworkId(framework_id_);
      s.setHeartbeatIntervalNs(options_.heartbeat_interval.count());
      s.initMasterInfo().setAddress(me().to_string());
    });
    if (options_.heartbeat_interval > Duration::zero() && !heartbeating_) {
      heartbeating_ = true;
      heartbeat();
    }
  }

  void heartbeat() {
    if (!silent)
      send_event([this](Event::Builder e) {
        auto roles =
            e.initHeartbeat().initSuppressedRoles(static_cast<unsigned>(suppressed_.size()));
        unsigned i = 0;
        for (const auto& r : suppressed_)
          roles.set(i++, r);
      });
    after(options_.heartbeat_interval, [this] { heartbeat(); });
  }

  FakeMasterOptions options_;
  std::shared_ptr<CallLog> log_;
  std::shared_ptr<Remote<FakeMaster>> remote_;
  Address subscriber_;
  std::string framework_id_;
  bool heartbeating_ = false;
  std::set<std::string> roles_;       // of the framework subscribed last
  std::set<std::string> suppressed_;  // as the real master keeps them
};

// Serves sandbox files: content(task id, path), at most chunk_bytes per
// answer, so readers must ask again.
class FakeAgent : public Actor {
 public:
  using ContentFn = std::function<std::optional<std::string>(const std::string& task_id,
                                                             const std::string& path)>;
  FakeAgent(caf::actor_config& cfg, ActorInit init, ContentFn content, uint64_t chunk_bytes,
            std::shared_ptr<std::atomic<int>> reads)
      : Actor(cfg, std::move(init)),
        content_(std::move(content)),
        chunk_bytes_(chunk_bytes),
        reads_(std::move(reads)) {
    on<wire::ReadSandboxFile>([this](const Received<wire::ReadSandboxFile>& m) {
      ++*reads_;
      auto r = m.body();
      auto file = content_(str(r.getTaskId()), str(r.getPath()));
      reply(m, build<wire::SandboxFile>([&](wire::SandboxFile::Builder b) {
              if (!file) {
                b.setError("no such file");
                return;
              }
              auto offset = std::min<uint64_t>(r.getOffset(), file->size());
              auto length = std::min({r.getLengthMax(), chunk_bytes_, file->size() - offset});
              b.setData(data(file->substr(offset, length)));
              b.setSize(file->size());
            }));
    });
  }

 private:
  ContentFn content_;
  uint64_t chunk_bytes_;
  std::shared_ptr<std::atomic<int>> reads_;
};

// What a TestFramework's callbacks saw; shared with the test thread.
struct FrameworkLog {
  std::vector<std::string> subscribed;  // the framework id, per subscribed()
  int subscribe_failed = 0;
  int disconnected = 0;
  std::vector<Offer> offers;
  std::vector<std::string> rescinded;
  std::vector<TaskStatus> updates;
  std::vector<std::string> messages;
  std::vector<std::string> failures;
  std::vector<std::string> errors;
};

class Seen {
 public:
  // Runs fn on the log under the lock and returns what it returns.
  template <class F>
  auto operator()(F fn) {
    std::lock_guard<std::mutex> guard(mu_);
    return fn(log_);
  }

 private:
  std::mutex mu_;
  FrameworkLog log_;
};

class TestFramework : public Scheduler {
 public:
  TestFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                std::shared_ptr<Seen> seen, std::shared_ptr<Remote<TestFramework>> remote)
      : Scheduler(cfg, std::move(init), std::move(config)),
        seen_(std::move(seen)),
        remote_(std::move(remote)) {
    remote_->bind(this, &node(), me());
    on<testwire::Ping>([this](const Received<testwire::Ping>&) { remote_->drain(); });
  }

  using Scheduler::accept;
  using Scheduler::acknowledge;
  using Scheduler::decline;
  using Scheduler::kill;
  using Scheduler::launch_group;
  using Scheduler::read_sandbox_file;
  using Scheduler::read_whole_sandbox_file;
  using Scheduler::reconcile;
  using Scheduler::revive;
  using Scheduler::send_message;
  using Scheduler::shutdown_executor;
  using Scheduler::suppress;
  using Scheduler::teardown;

 protected:
  void subscribed(const std::string& id) override {
    (*seen_)([&](FrameworkLog& l) { l.subscribed.push_back(id); });
  }
  void subscribe_failed(const caf::error&) override {
    (*seen_)([](FrameworkLog& l) { ++l.subscribe_failed; });
  }
  void disconnected(const caf::error&) override {
    (*seen_)([](FrameworkLog& l) { ++l.disconnected; });
  }
  void offers(const std::vector<Offer>& o) override {
    (*seen_)([&](FrameworkLog& l) { l.offers.insert(l.offers.end(), o.begin(), o.end()); });
  }
  void rescinded(const std::string& id) override {
    (*seen_)([&](FrameworkLog& l) { l.rescinded.push_back(id); });
  }
  void update(const TaskStatus& s) override {
    (*seen_)([&](FrameworkLog& l) { l.updates.push_back(s); });
  }
  void message(const std::string& agent, const std::string& executor,
               const std::string& bytes) override {
    (*seen_)([&](FrameworkLog& l) { l.messages.push_back(agent + "/" + executor + ":" + bytes); });
  }
  void failure(const std::string& agent, const std::string& executor, int status) override {
    (*seen_)([&](FrameworkLog& l) {
      l.failures.push_back(agent + "/" + executor + ":" + std::to_string(status));
    });
  }
  void error(const std::string& message) override {
    (*seen_)([&](FrameworkLog& l) { l.errors.push_back(message); });
  }

 private:
  std::shared_ptr<Seen> seen_;
  std::shared_ptr<Remote<TestFramework>> remote_;
};

}  // namespace tessera::testing
