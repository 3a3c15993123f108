// JSON forms of the shared value types (json_forms.hpp).

#include "services/common/json_forms.hpp"

#include <fmt/format.h>

#include <iterator>

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
