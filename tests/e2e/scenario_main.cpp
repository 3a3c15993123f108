// tessera_test_scenario: the end-to-end scenario's two frameworks in a
// process of their own (the multi-process mode of tests/e2e). Prints
// "SUBSCRIBED" once both frameworks are (the test then starts the agents),
// one "FACT ..." line per fact, then "DONE"; exits 1 if the scenario stalls.
//   tessera_test_scenario MASTER_HOST:PORT

#include "e2e/scenario.hpp"

#include <cstdio>
#include <thread>

using namespace tessera;
using namespace tessera::testing;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tessera_test_scenario MASTER_HOST:PORT\n");
    return 2;
  }
  auto master = Address::parse(std::string("master@") + argv[1]);
  if (!master) {
    std::fprintf(stderr, "bad master address %s\n", argv[1]);
    return 2;
  }
  auto node = Node::start();
  if (!node) {
    std::fprintf(stderr, "cannot start a node: %s\n", describe(node.error()).c_str());
    return 2;
  }
  auto scenario = std::make_shared<Scenario>();
  for (auto role : {"analytics", "web"})
    if (!(*node)->spawn<ScenarioFramework>(role, scenario_config(*master, role, 0), scenario))
      return 2;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (scenario->get("subscribed") < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::printf("SUBSCRIBED\n");
  std::fflush(stdout);
  while (!scenario->done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (auto& f : scenario->facts())
    std::printf("FACT %s\n", f.c_str());
  std::printf("%s\n", scenario->done() ? "DONE" : "STALLED");
  std::fflush(stdout);
  (*node)->stop();
  return scenario->done() ? 0 : 1;
}
