#pragma once
// A fake master on one node and the framework under test on another, both
// real nodes on 127.0.0.1: what most scheduler tests start from.

#include "scheduler/fake_master.hpp"
#include "support/nodes.hpp"
#include "support/test_support.hpp"

namespace tessera::testing {

struct Harness {
  std::shared_ptr<CallLog> calls = std::make_shared<CallLog>();
  std::unique_ptr<Node> master_node;
  std::shared_ptr<Remote<FakeMaster>> master;
  Address master_address;
  std::unique_ptr<Node> framework_node = start_node();
  std::shared_ptr<Seen> seen = std::make_shared<Seen>();
  std::shared_ptr<Remote<TestFramework>> framework = std::make_shared<Remote<TestFramework>>();

  explicit Harness(FakeMasterOptions options = {}) { start_master(std::move(options)); }

  // (Re)starts the fake master; port 0: any free port.
  void start_master(FakeMasterOptions options = {}, uint16_t port = 0) {
    NodeConfig config;
    config.port = port;
    master_node = start_node(config);
    master = std::make_shared<Remote<FakeMaster>>();
    auto address = master_node->spawn<FakeMaster>("master", std::move(options), calls, master);
    REQUIRE(address);
    master_address = *address;
  }

  SchedulerConfig config() const {
    SchedulerConfig c;
    c.master = master_address;
    c.framework.name = "test";
    c.seed = 7;
    c.resubscribe_backoff_min = std::chrono::milliseconds(10);
    c.resubscribe_backoff_max = std::chrono::milliseconds(100);
    return c;
  }

  void spawn(const SchedulerConfig& c) {
    REQUIRE(framework_node->spawn<TestFramework>("framework", c, seen, framework));
  }

  // Spawns the framework and waits for its subscribed() callback.
  void subscribe(const SchedulerConfig& c) {
    spawn(c);
    REQUIRE(
        wait_until([&] { return (*seen)([](FrameworkLog& l) { return !l.subscribed.empty(); }); }));
  }

  size_t count(Call::Which which) const { return calls->count(which); }
  bool wait_calls(Call::Which which, size_t n) const {
    return wait_until([&] { return calls->count(which) >= n; });
  }
  template <class F>
  bool wait_seen(F pred) {
    return wait_until([&] { return (*seen)(pred); });
  }
};

}  // namespace tessera::testing
