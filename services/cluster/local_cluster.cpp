#include "services/cluster/local_cluster.hpp"

#include "runtime/log.hpp"

#include <system_error>

namespace tessera {

expected<std::unique_ptr<LocalCluster>> LocalCluster::start(LocalClusterConfig config) {
  auto given = Resources::parse(config.agent_resources);
  if (!given)
    return make_error(Errc::invalid_argument, "agent resources: " + what(given.error()));
  auto attributes = parse_attributes(config.agent_attributes);
  if (!attributes)
    return make_error(Errc::invalid_argument, "agent attributes: " + what(attributes.error()));
  std::error_code ec;
  std::filesystem::create_directories(config.work_dir, ec);
  if (ec)
    return make_os_error(ec.value(), "create " + config.work_dir.string());

  std::unique_ptr<LocalCluster> cluster(new LocalCluster());
  auto node = Node::start(config.node);
  if (!node)
    return node.error();
  cluster->node_ = std::move(*node);
  auto master = cluster->node_->spawn<Master>("master", config.master);
  if (!master)
    return master.error();
  cluster->master_ = *master;
  cluster->given_ = std::move(*given);
  cluster->attributes_ = std::move(*attributes);
  cluster->config_ = std::move(config);
  for (size_t i = 0; i < cluster->config_.agents; ++i)
    if (auto agent = cluster->add_agent(); !agent)
      return agent.error();
  return cluster;
}

expected<Address> LocalCluster::add_agent() {
  auto n = std::to_string(agents_.size() + 1);
  AgentConfig ac = config_.agent;
  ac.master = master_;
  ac.work_dir = config_.work_dir / ("agent-" + n);
  ac.attributes = attributes_;
  if (agents_.size() < config_.agent_hostnames.size())
    ac.hostname = config_.agent_hostnames[agents_.size()];
  if (ac.hostname.empty())
    ac.hostname = node_->host();  // the advertised host
  ac.metrics = std::make_shared<AgentMetrics>();
  std::error_code ec;
  std::filesystem::create_directories(ac.work_dir, ec);
  if (ec)
    return make_os_error(ec.value(), "create " + ac.work_dir.string());
  // As Mesos: what --resources does not name is detected from the host.
  auto detected = detect_resources(ac.work_dir);
  if (!detected)
    return detected.error();
  ac.resources = merge_resources(given_, *detected);
  if (config_.agent.seed)
    ac.seed = config_.agent.seed + agents_.size() + 1;
  if (!config_.isolation.kind.empty()) {
    auto isolation = config_.isolation;
    isolation.scope = isolation_scope(ac.work_dir);
    std::string warning;
    auto isolator = make_isolator(isolation, &warning);
    if (!isolator)
      return isolator.error();
    if (!warning.empty() && !warned_) {
      warned_ = true;
      log().warn("cluster: {}", warning);
    }
    ac.isolator = std::move(*isolator);
  }
  auto edge = start_agent_http(ac);
  if (!edge)
    return edge.error();
  auto agent = node_->spawn<Agent>("agent-" + n, ac);
  if (!agent)
    return agent.error();
  agents_.push_back(*agent);
  metrics_.push_back(ac.metrics);
  agent_http_.push_back(std::move(*edge));
  http_addresses_.push_back(ac.http_address);
  return *agent;
}

// Before the agent is spawned, so its first registration names the edge.
expected<std::unique_ptr<AgentHttp>> LocalCluster::start_agent_http(AgentConfig& ac) {
  ac.http = nullptr;
  ac.http_address.clear();
  if (config_.agent_http_host.empty())
    return std::unique_ptr<AgentHttp>();
  http::ServerConfig server;
  server.host = config_.agent_http_host;
  server.port = 0;
  server.tls = config_.agent_http_tls;
  ac.http = std::make_shared<AgentHttpHandle>();
  auto edge = AgentHttp::start(server, ac.http, config_.agent_http_guard);
  if (!edge)
    return edge.error();
  ac.http_address = (*edge)->advertised_address(node_->host());
  return edge;
}

LocalCluster::~LocalCluster() {
  stop();
}

void LocalCluster::stop() {
  for (auto& edge : agent_http_)
    if (edge)
      edge->stop();
  if (node_)
    node_->stop();
}

}  // namespace tessera
