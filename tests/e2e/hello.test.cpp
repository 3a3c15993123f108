// The framework guide's complete example against a real cluster: its tasks
// run as processes on real agents and their output comes back from the
// sandboxes.

#include "services/cluster/local_cluster.hpp"
#include "services/frameworks/hello/hello_framework.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <future>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

TEST_CASE("the guide's hello framework on a real cluster", "[e2e][docs]") {
  TempDir dir;
  LocalClusterConfig config;
  config.agents = 2;
  config.agent_resources = "cpus:1;mem:256";
  config.work_dir = dir.path();
  auto cluster = LocalCluster::start(config);
  REQUIRE(cluster);
  SchedulerConfig sc;
  sc.master = (*cluster)->master_address();
  sc.framework.name = "hello";
  HelloOptions options;
  options.tasks = 12;  // more than one offer holds (cpus:0.1 each, 2 cpus)
  auto done = std::make_shared<std::promise<HelloResult>>();
  auto result = done->get_future();
  REQUIRE((*cluster)->node().spawn<HelloFramework>(
      "hello", sc, options, [done](const HelloResult& r) { done->set_value(r); }));
  REQUIRE(result.wait_for(60s) == std::future_status::ready);
  auto r = result.get();
  CHECK(r.error.empty());
  CHECK(r.finished == 12);
  CHECK(r.failed == 0);
  REQUIRE(r.outputs.size() == 12);
  for (auto& [task, out] : r.outputs)
    CHECK(out.rfind("hello ", 0) == 0);
}
