#pragma once
// What a framework service (the apps framework, the jobs framework) does on
// start before and after its own part (reading its records): make its work
// directory, open its store, start its own HTTP server if it has one, and
// spawn its actor, then wait until the actor serves. Header-only: each
// service's library links the store, HTTP and runtime libraries itself.

#include "runtime/log.hpp"
#include "runtime/node.hpp"
#include "services/common/actor_handle.hpp"
#include "services/http/server.hpp"
#include "services/registry/store.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace tessera {

struct FrameworkServiceParts {
  std::shared_ptr<RegistryStore> store;
  std::unique_ptr<http::Server> server;  // null: its API is mounted elsewhere
};

// what names the service in errors ("apps"); registry is a store spec
// (make_store); http set: a server of its own, serving handler.
inline expected<FrameworkServiceParts> open_framework_service(
    const std::string& what, const std::string& registry, const std::string& work_dir,
    const std::optional<http::ServerConfig>& http, http::Handler handler) {
  FrameworkServiceParts parts;
  if (!work_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    if (ec)
      return make_error(Errc::os_error, what + ": cannot create " + work_dir + ": " + ec.message());
  }
  auto store = make_store(registry, work_dir);
  if (!store)
    return store.error();
  parts.store = std::move(*store);
  if (http) {
    auto server = http::Server::start(*http, std::move(handler));
    if (!server)
      return server.error();
    parts.server = std::move(*server);
  }
  return parts;
}

// Spawns the framework's actor as actor_name and waits (10 s at most) until
// it has attached to handle, so its API does not answer 503 at first.
template <class Framework, class Config>
expected<Address> spawn_framework(Node& node, const std::string& what,
                                  const std::string& actor_name, Config config,
                                  ActorHandle<Framework>& handle) {
  auto actor = node.spawn<Framework>(actor_name, std::move(config));
  if (!actor)
    return actor.error();
  if (!handle.wait_attached(std::chrono::seconds(10)))
    log().warn(
        "{}: the framework actor has not started within 10 s; its API answers 503 until "
        "it does",
        what);
  return actor;
}

}  // namespace tessera
