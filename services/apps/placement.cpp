#include "services/apps/placement.hpp"

#include <algorithm>

namespace tessera::apps {

const char* to_string(Refusal r) {
  switch (r) {
    case Refusal::none:
      return "none";
    case Refusal::role:
      return "role";
    case Refusal::cpus:
      return "cpus";
    case Refusal::mem:
      return "mem";
    case Refusal::disk:
      return "disk";
    case Refusal::gpus:
      return "gpus";
    case Refusal::ports:
      return "ports";
    case Refusal::constraint:
      return "constraint";
  }
  return "?";
}

const char* marathon_reason(Refusal r) {
  switch (r) {
    case Refusal::none:
      return "None";
    case Refusal::role:
      return "UnfulfilledRole";
    case Refusal::cpus:
      return "InsufficientCpus";
    case Refusal::mem:
      return "InsufficientMemory";
    case Refusal::disk:
      return "InsufficientDisk";
    case Refusal::gpus:
      return "InsufficientGpus";
    case Refusal::ports:
      return "InsufficientPorts";
    case Refusal::constraint:
      return "UnfulfilledConstraint";
  }
  return "?";
}

namespace {

// quantity of name, from role's reservation first, then unreserved.
std::optional<Resources> take_scalar(const Resources& left, const std::string& role,
                                     const char* name, double quantity) {
  if (quantity <= 0)
    return Resources{};
  double reserved = role == any_role ? 0 : left.get(name, role);
  double from_role = std::min(reserved, quantity);
  Resources take;
  if (from_role > 0)
    take += Resources::scalar(name, from_role, role);
  if (quantity - from_role > 1e-9)
    take += Resources::scalar(name, quantity - from_role);
  if (!left.contains(take))
    return std::nullopt;
  return take;
}

bool port_free(const std::vector<Range>& ranges, uint64_t port) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const Range& r) { return r.begin <= port && port <= r.end; });
}

// The ports of app from the unreserved and role's "ports" of left.
std::optional<std::pair<Resources, std::vector<uint32_t>>> take_ports(const AppSpec& app,
                                                                      const std::string& role,
                                                                      const Resources& left) {
  std::vector<std::pair<std::string, std::vector<Range>>> pools;
  if (role != any_role)
    pools.emplace_back(role, left.get_ranges("ports", role));
  pools.emplace_back(std::string(any_role), left.get_ranges("ports"));
  Resources take;
  std::vector<uint32_t> ports;
  auto claim = [&](uint64_t port) {
    for (auto& [pool_role, ranges] : pools)
      if (port_free(ranges, port)) {
        take += Resources::ranges("ports", {{port, port}}, pool_role);
        // Split the range so this port is not handed out twice.
        std::vector<Range> rest;
        for (auto r : ranges) {
          if (r.begin <= port && port <= r.end) {
            if (r.begin < port)
              rest.push_back({r.begin, port - 1});
            if (port < r.end)
              rest.push_back({port + 1, r.end});
          } else {
            rest.push_back(r);
          }
        }
        ranges = std::move(rest);
        return true;
      }
    return false;
  };
  // Fixed ports first, so a dynamic one never takes a port a fixed one needs.
  std::vector<std::optional<uint32_t>> chosen(app.ports.size());
  for (size_t i = 0; i < app.ports.size(); ++i)
    if (app.require_ports && app.ports[i].port != 0) {
      if (!claim(app.ports[i].port))
        return std::nullopt;
      chosen[i] = app.ports[i].port;
    }
  for (size_t i = 0; i < app.ports.size(); ++i) {
    if (chosen[i])
      continue;
    std::optional<uint64_t> lowest;
    for (auto& [pool_role, ranges] : pools)
      if (!ranges.empty() && (!lowest || ranges.front().begin < *lowest))
        lowest = ranges.front().begin;
    if (!lowest || !claim(*lowest))
      return std::nullopt;
    chosen[i] = static_cast<uint32_t>(*lowest);
  }
  for (auto& c : chosen)
    ports.push_back(*c);
  return std::make_pair(std::move(take), std::move(ports));
}

}  // namespace

std::vector<ConstraintCheck> compile_checks(const AppSpec& app) {
  std::vector<ConstraintCheck> out;
  for (const auto& c : app.constraints)
    if (auto check = ConstraintCheck::compile(c))
      out.push_back(std::move(*check));
  return out;
}

FitResult fit(const AppSpec& app, const std::string& role,
              const std::vector<ConstraintCheck>& checks,
              const std::vector<std::vector<std::optional<std::string>>>& placed, OfferView& view) {
  FitResult result;
  const Offer& offer = *view.offer;
  auto refuse = [&](Refusal r, std::string why = {}) {
    result.refusal = r;
    result.why = std::move(why);
    return result;
  };
  if (offer.role != role)
    return refuse(Refusal::role, "offered for role " + offer.role + ", the app runs as " + role);
  const std::pair<const char*, std::pair<double, Refusal>> scalars[] = {
      {"cpus", {app.cpus, Refusal::cpus}},
      {"mem", {app.mem, Refusal::mem}},
      {"disk", {app.disk, Refusal::disk}},
      {"gpus", {static_cast<double>(app.gpus), Refusal::gpus}}};
  Resources take;
  for (auto& [name, want] : scalars) {
    auto part = take_scalar(view.left, role, name, want.first);
    if (!part)
      return refuse(want.second);
    take += *part;
  }
  auto ports = take_ports(app, role, view.left);
  if (!ports)
    return refuse(Refusal::ports);
  take += ports->first;
  for (size_t i = 0; i < checks.size(); ++i) {
    auto value = field_value(checks[i].constraint().field, offer.hostname, offer.attributes);
    static const std::vector<std::optional<std::string>> none;
    if (auto why = checks[i].refuses(value, i < placed.size() ? placed[i] : none)) {
      result.constraint = checks[i].describe();
      return refuse(Refusal::constraint, *why);
    }
  }
  view.left -= take;
  result.placed = Placed{std::move(take), std::move(ports->second)};
  return result;
}

uint64_t spread_load(const std::vector<ConstraintCheck>& checks,
                     const std::vector<std::vector<std::optional<std::string>>>& placed,
                     const Offer& offer) {
  uint64_t load = 0;
  for (size_t i = 0; i < checks.size() && i < placed.size(); ++i) {
    if (checks[i].constraint().op != Constraint::Op::spread)
      continue;
    auto value = field_value(checks[i].constraint().field, offer.hostname, offer.attributes);
    load += static_cast<uint64_t>(
        std::count_if(placed[i].begin(), placed[i].end(), [&](auto& p) { return p == value; }));
  }
  return load;
}

}  // namespace tessera::apps
