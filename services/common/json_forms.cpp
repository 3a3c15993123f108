// JSON forms of the shared value types (json_forms.hpp).

#include "services/common/json_forms.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <map>

namespace tessera {

nlohmann::json resources_json(const Resources& r) {
  auto out = nlohmann::json::array();
  r.visit(
      [&](const std::string& name, const std::string& role, Milli value) {
        out.push_back({{"name", name},
                       {"type", "SCALAR"},
                       {"scalar", {{"value", double(value) / 1000.0}}},
                       {"role", role}});
      },
      [&](const std::string& name, const std::string& role, const std::vector<Range>& ranges) {
        auto list = nlohmann::json::array();
        for (auto& range : ranges)
          list.push_back({{"begin", range.begin}, {"end", range.end}});
        out.push_back(
            {{"name", name}, {"type", "RANGES"}, {"ranges", {{"range", list}}}, {"role", role}});
      },
      [&](const std::string& name, const std::string& role, const std::set<std::string>& items) {
        out.push_back(
            {{"name", name}, {"type", "SET"}, {"set", {{"item", items}}}, {"role", role}});
      });
  return out;
}

namespace {

expected<Resources> resource_from_json(const nlohmann::json& r) {
  auto bad = [&](const std::string& why) -> expected<Resources> {
    return make_error(Errc::invalid_argument, "bad resource " + r.dump() + ": " + why);
  };
  if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
    return bad("it needs a name");
  auto name = r["name"].get<std::string>();
  std::string role(any_role);
  if (r.contains("role")) {
    if (!r["role"].is_string())
      return bad("'role' must be a string");
    role = r["role"].get<std::string>();
  }
  if (r.contains("reservations")) {
    const auto& list = r["reservations"];
    if (!list.is_array() || list.size() > 1)
      return bad(
          "'reservations' must be a list of at most one (refined reservations are "
          "not supported)");
    if (!list.empty()) {
      const auto& reservation = list[0];
      if (!reservation.is_object() || !reservation.contains("role") ||
          !reservation["role"].is_string())
        return bad("a reservation needs a role");
      if (reservation.contains("type") && reservation["type"] != "DYNAMIC")
        return bad(
            "only DYNAMIC reservations are made through the API (static ones are an "
            "agent's --resources)");
      auto reserved_for = reservation["role"].get<std::string>();
      if (r.contains("role") && role != reserved_for)
        return bad("'role' and the reservation's role differ");
      role = reserved_for;
    }
  }
  if (r.contains("type") && !r["type"].is_string())
    return bad("'type' must be a string");
  auto type = r.value("type", std::string());
  if (type == "SCALAR" || (type.empty() && r.contains("scalar"))) {
    if (!r.contains("scalar") || !r["scalar"].is_object() || !r["scalar"].contains("value") ||
        !r["scalar"]["value"].is_number())
      return bad("a scalar needs \"scalar\": {\"value\": N}");
    double value = r["scalar"]["value"].get<double>();
    if (!(value >= 0) || !std::isfinite(value) || value > 1e12)
      return bad("the quantity must be a finite number >= 0");
    return Resources::checked_scalar(name, std::llround(value * 1000), role);
  }
  if (type == "RANGES" || (type.empty() && r.contains("ranges"))) {
    if (!r.contains("ranges") || !r["ranges"].is_object() || !r["ranges"].contains("range") ||
        !r["ranges"]["range"].is_array())
      return bad("ranges need \"ranges\": {\"range\": [{\"begin\": B, \"end\": E}]}");
    std::vector<Range> ranges;
    for (auto& x : r["ranges"]["range"]) {
      if (!x.is_object() || !x.contains("begin") || !x.contains("end") ||
          !x["begin"].is_number_unsigned() || !x["end"].is_number_unsigned())
        return bad("each range needs unsigned \"begin\" and \"end\"");
      ranges.push_back({x["begin"].get<uint64_t>(), x["end"].get<uint64_t>()});
    }
    return Resources::checked_ranges(name, std::move(ranges), role);
  }
  if (type == "SET" || (type.empty() && r.contains("set"))) {
    if (!r.contains("set") || !r["set"].is_object() || !r["set"].contains("item") ||
        !r["set"]["item"].is_array())
      return bad("a set needs \"set\": {\"item\": [...]}");
    std::set<std::string> items;
    for (auto& x : r["set"]["item"]) {
      if (!x.is_string())
        return bad("set items must be strings");
      items.insert(x.get<std::string>());
    }
    return Resources::checked_set(name, std::move(items), role);
  }
  return bad("unknown type '" + type + "' (SCALAR, RANGES or SET)");
}

}  // namespace

expected<Resources> resources_from_json(const nlohmann::json& in) {
  if (in.is_string())
    return Resources::parse(in.get<std::string>());
  if (!in.is_array())
    return make_error(Errc::invalid_argument, "resources must be a list or a string");
  // Bounded, so no sum can overflow: each quantity is at most 1e12.
  constexpr size_t resources_max = 1000;
  if (in.size() > resources_max)
    return make_error(Errc::invalid_argument,
                      "at most " + std::to_string(resources_max) + " resources in one list");
  Resources out;
  std::map<std::string, std::string> kinds;  // name -> type, as parse() refuses a mix
  for (auto& r : in) {
    auto one = resource_from_json(r);
    if (!one)
      return one.error();
    auto kind = r.value("type", std::string());
    if (kind.empty())
      kind = r.contains("scalar") ? "SCALAR" : r.contains("ranges") ? "RANGES" : "SET";
    auto [it, fresh] = kinds.emplace(r["name"].get<std::string>(), kind);
    if (!fresh && it->second != kind)
      return make_error(Errc::invalid_argument, "resource '" + it->first + "' given as both " +
                                                    it->second + " and " + kind);
    out += *one;
  }
  return out;
}

void append_string(std::string& out, const std::string& s) {
  // Ids, hosts and names are short and rarely need escaping; nlohmann
  // escapes them right when they do.
  bool plain = true;
  for (unsigned char c : s)
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) {
      plain = false;
      break;
    }
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += nlohmann::json(s).dump();
  }
}

void append_number(std::string& out, double v) {
  fmt::format_to(std::back_inserter(out), "{}", v);
}

void append_resources(std::string& out, const Resources& r) {
  out += '[';
  bool first = true;
  auto open = [&](const std::string& name, const std::string& role, const char* type) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"name\":";
    append_string(out, name);
    out += ",\"role\":";
    append_string(out, role);
    out += ",\"type\":\"";
    out += type;
    out += '"';
  };
  r.visit(
      [&](const std::string& name, const std::string& role, Milli value) {
        open(name, role, "SCALAR");
        out += ",\"scalar\":{\"value\":";
        append_number(out, double(value) / 1000.0);
        out += "}}";
      },
      [&](const std::string& name, const std::string& role, const std::vector<Range>& ranges) {
        open(name, role, "RANGES");
        out += ",\"ranges\":{\"range\":[";
        for (size_t i = 0; i < ranges.size(); ++i)
          fmt::format_to(std::back_inserter(out), "{}{{\"begin\":{},\"end\":{}}}", i ? "," : "",
                         ranges[i].begin, ranges[i].end);
        out += "]}}";
      },
      [&](const std::string& name, const std::string& role, const std::set<std::string>& items) {
        open(name, role, "SET");
        out += ",\"set\":{\"item\":";
        out += nlohmann::json(items).dump();
        out += "}}";
      });
  out += ']';
}

nlohmann::json attributes_json(const std::vector<Attribute>& attributes) {
  auto out = nlohmann::json::array();
  for (auto& a : attributes) {
    if (a.is_scalar)
      out.push_back({{"name", a.name}, {"type", "SCALAR"}, {"scalar", {{"value", a.scalar}}}});
    else if (!a.ranges.empty()) {
      auto list = nlohmann::json::array();
      for (auto& r : a.ranges)
        list.push_back({{"begin", r.begin}, {"end", r.end}});
      out.push_back({{"name", a.name}, {"type", "RANGES"}, {"ranges", {{"range", list}}}});
    } else
      out.push_back({{"name", a.name}, {"type", "TEXT"}, {"text", {{"value", a.text}}}});
  }
  return out;
}

}  // namespace tessera
