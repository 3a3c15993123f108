#pragma once
// Reading a JSON definition (an app's, a job's) field by field, collecting
// every problem with its JSON-pointer path instead of stopping at the first:
// what Marathon and Metronome answer with a 422. Values only; no I/O.

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera {

// One problem with a definition: where (a JSON pointer, "/cpus",
// "/constraints/1") and what.
struct SpecProblem {
  std::string path;
  std::string message;
  friend bool operator==(const SpecProblem&, const SpecProblem&) = default;
};

// Marathon's and Metronome's 422 body: {"message": "Object is not valid",
// "details": [{"path", "errors": [...]}]}, problems grouped by path.
inline nlohmann::json problems_json(const std::vector<SpecProblem>& problems) {
  std::map<std::string, std::vector<std::string>> by_path;
  std::vector<std::string> order;
  for (auto& p : problems) {
    if (!by_path.count(p.path))
      order.push_back(p.path);
    by_path[p.path].push_back(p.message);
  }
  auto details = nlohmann::json::array();
  for (auto& path : order)
    details.push_back({{"path", path}, {"errors", by_path[path]}});
  return {{"message", "Object is not valid"}, {"details", details}};
}

// A key as one JSON pointer segment ("~" and "/" escaped).
inline std::string pointer_segment(const std::string& key) {
  std::string out;
  for (char c : key)
    out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

// Collects problems while reading one JSON object of a definition. Paths
// are JSON pointers: base (the object's own, "" for the top) plus the field.
class SpecReader {
  using json = nlohmann::json;

 public:
  SpecReader(const json& in, std::string base, size_t list_items_max)
      : in_(in), base_(std::move(base)), list_items_max_(list_items_max) {}

  void problem(std::string path, std::string message) {
    problems_.push_back({std::move(path), std::move(message)});
  }
  // Problems found by a reader of a nested object, in order.
  void absorb(std::vector<SpecProblem> more) {
    for (auto& p : more)
      problems_.push_back(std::move(p));
  }
  std::vector<SpecProblem> take() { return std::move(problems_); }
  const std::string& base() const { return base_; }

  const json* field(const char* name) const {
    auto it = in_.find(name);
    return it == in_.end() || it->is_null() ? nullptr : &*it;
  }

  // A number in [min, max]; fallback when absent.
  double number(const char* name, double fallback, double min, double max) {
    auto* v = field(name);
    if (!v)
      return fallback;
    return number_at(*v, base_ + "/" + name, fallback, min, max);
  }
  double number_at(const json& v, const std::string& path, double fallback, double min,
                   double max) {
    if (!v.is_number()) {
      problem(path, "must be a number");
      return fallback;
    }
    double x = v.get<double>();
    if (!std::isfinite(x) || x < min || x > max) {
      problem(path, "must be between " + show(min) + " and " + show(max));
      return fallback;
    }
    return x;
  }
  // A whole number in [min, max].
  uint64_t integer(const char* name, uint64_t fallback, uint64_t min, uint64_t max) {
    auto* v = field(name);
    if (!v)
      return fallback;
    return integer_at(*v, base_ + "/" + name, fallback, min, max);
  }
  uint64_t integer_at(const json& v, const std::string& path, uint64_t fallback, uint64_t min,
                      uint64_t max) {
    // 3 and 3.0 are both whole (JSON does not tell them apart, nor does Marathon).
    bool whole_float = v.is_number_float() && std::isfinite(v.get<double>()) &&
                       std::floor(v.get<double>()) == v.get<double>() &&
                       std::fabs(v.get<double>()) < 9e15;
    if (!v.is_number_integer() && !whole_float) {
      problem(path, "must be a whole number");
      return fallback;
    }
    bool negative =
        v.is_number_float() ? v.get<double>() < 0 : !v.is_number_unsigned() && v.get<int64_t>() < 0;
    uint64_t x = negative              ? 0
                 : v.is_number_float() ? static_cast<uint64_t>(v.get<double>())
                                       : v.get<uint64_t>();
    if (negative || x < min || x > max) {
      problem(path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return fallback;
    }
    return x;
  }
  std::optional<std::string> string(const char* name) {
    auto* v = field(name);
    if (!v)
      return std::nullopt;
    if (!v->is_string()) {
      problem(base_ + "/" + name, "must be a string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }
  bool boolean(const char* name, bool fallback) {
    auto* v = field(name);
    if (!v)
      return fallback;
    if (!v->is_boolean()) {
      problem(base_ + "/" + name, "must be true or false");
      return fallback;
    }
    return v->get<bool>();
  }
  // {"K": "V", ...}, at most list_items_max_.
  std::map<std::string, std::string> string_map(const char* name) {
    std::map<std::string, std::string> out;
    auto* v = field(name);
    if (!v)
      return out;
    auto path = base_ + "/" + name;
    if (!v->is_object()) {
      problem(path, "must be an object of strings");
      return out;
    }
    if (v->size() > list_items_max_) {
      problem(path, "at most " + std::to_string(list_items_max_) + " entries");
      return out;
    }
    for (auto& [k, x] : v->items()) {
      if (!x.is_string()) {
        // Marathon's env may also hold {"secret": ...}: not supported here.
        problem(path + "/" + pointer_segment(k), "must be a string");
        continue;
      }
      out[k] = x.get<std::string>();
    }
    return out;
  }
  // An array of at most list_items_max_ items, or nullptr (with a problem).
  const json* array(const char* name) {
    auto* v = field(name);
    if (!v)
      return nullptr;
    if (!v->is_array()) {
      problem(base_ + "/" + name, "must be an array");
      return nullptr;
    }
    if (v->size() > list_items_max_) {
      problem(base_ + "/" + name, "at most " + std::to_string(list_items_max_) + " entries");
      return nullptr;
    }
    return v;
  }

  static std::string show(double x) {
    auto s = json(x).dump();
    return s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0 ? s.substr(0, s.size() - 2) : s;
  }

 private:
  const json& in_;
  std::string base_;
  size_t list_items_max_;
  std::vector<SpecProblem> problems_;
};

}  // namespace tessera
