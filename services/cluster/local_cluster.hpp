#pragma once
// A whole cluster in one process: a master (with its allocator) and N agents
// on one node, each agent with a work directory of its own. This is what
// `tessera cluster` runs and what mesos-local was; tests use it to run the
// real roles on real sockets without starting processes.
//
// Frameworks reach it at master_address() from this process or any other.
// Executors run as actors on the same node (in_process) or as `tessera
// executor` processes; tasks are always real processes. With
// agent_http_host set, each agent has an HTTP API of its own (AgentHttp) on
// that host at a port the OS picks, named in its registration (the master's
// GET_AGENTS shows it as http_address).

#include "runtime/node.hpp"
#include "services/agent/agent.hpp"
#include "services/agent/agent_http.hpp"
#include "services/master/master.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tessera {

struct LocalClusterConfig {
  NodeConfig node;    // host, port (0: any free one), clock
  size_t agents = 1;  // started with the master; add_agent() adds more
  // Each agent's --resources; empty: detected from the host.
  std::string agent_resources;
  std::string agent_attributes;
  // Agent i's hostname, where given (simulated hosts); else the node's host.
  std::vector<std::string> agent_hostnames;
  std::filesystem::path work_dir;  // agents use work_dir/agent-N
  MasterConfig master;
  // Applied to every agent (master address, work dir, resources and
  // attributes are filled in by the cluster).
  AgentConfig agent;
  // Each agent gets an isolator of this kind, scoped by its own work dir;
  // empty kind: AgentConfig::isolator as given (null: posix).
  IsolationConfig isolation = no_isolator();
  // Set: each agent's AgentHttp listens on this host, port 0. Empty: none.
  // (AgentConfig::http and http_address are the cluster's to fill in.)
  std::string agent_http_host;
  // Who may call those agents' APIs (null: everyone).
  std::shared_ptr<const security::HttpGuard> agent_http_guard;
  // Set: those APIs serve HTTPS with it (http::ServerConfig::tls).
  std::shared_ptr<const TlsContext> agent_http_tls;

  static IsolationConfig no_isolator() {
    IsolationConfig c;
    c.kind.clear();
    return c;
  }
};

class LocalCluster {
 public:
  // Starts the node, the master and the agents. Bad resources or attributes
  // and a port in use are errors (Errc::invalid_argument / os_error).
  static expected<std::unique_ptr<LocalCluster>> start(LocalClusterConfig config);
  ~LocalCluster();

  // Starts one more agent, named agent-N, configured as the others.
  expected<Address> add_agent();

  const Address& master_address() const { return master_; }
  const std::vector<Address>& agent_addresses() const { return agents_; }
  // Agent i's counters (in add_agent order); null when there is no agent i.
  // Readable from any thread.
  std::shared_ptr<AgentMetrics> agent_metrics(size_t i) const {
    return i < metrics_.size() ? metrics_[i] : nullptr;
  }
  // Agent i's HTTP API, "host:port" as advertised; empty without one.
  std::string agent_http_address(size_t i) const {
    return i < http_addresses_.size() ? http_addresses_[i] : std::string();
  }
  Node& node() { return *node_; }
  // Stops every actor and closes the port; the destructor does it too.
  void stop();

 private:
  LocalCluster() = default;
  expected<std::unique_ptr<AgentHttp>> start_agent_http(AgentConfig& ac);
  LocalClusterConfig config_;
  Resources given_;
  std::vector<Attribute> attributes_;
  std::unique_ptr<Node> node_;
  Address master_;
  std::vector<Address> agents_;
  std::vector<std::shared_ptr<AgentMetrics>> metrics_;
  std::vector<std::unique_ptr<AgentHttp>> agent_http_;  // by agent; null: none
  std::vector<std::string> http_addresses_;
  bool warned_ = false;
};

}  // namespace tessera
