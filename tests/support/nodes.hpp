#pragma once
// Starting nodes in tests: a failure to start fails the test right there.

#include "runtime/node.hpp"

#include <catch2/catch.hpp>

#include <memory>

namespace tessera::testing {

inline std::unique_ptr<Node> start_node(NodeConfig config = {}) {
  auto node = Node::start(std::move(config));
  REQUIRE(node);
  return std::move(*node);
}

// A node whose clock starts paused: time moves only by advance().
struct PausedNode {
  std::shared_ptr<Clock> clock = Clock::make_real();
  std::unique_ptr<Node> node;

  PausedNode() {
    clock->pause();
    NodeConfig config;
    config.clock = clock;
    node = start_node(config);
  }
  // Moves time forward, then waits until what it set off has run.
  void advance(Duration d) {
    clock->advance(d);
    REQUIRE(node->settle());
  }
};

}  // namespace tessera::testing
