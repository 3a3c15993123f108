#pragma once
// What every `tessera bench …` subcommand shares: run a measurement several
// times, report the median of each figure, as a table or as one JSON object.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tessera::bench {

// One run's figures by name (the JSON keys).
using Row = std::map<std::string, double>;

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs measure `runs` times and prints the per-figure medians: through
// print_table, or as JSON together with the run's parameters. Returns the
// process exit code; a measurement that throws is reported as one line.
inline int report_medians(const char* name, int runs, bool json, const nlohmann::json& params,
                          const std::function<Row(int run)>& measure,
                          const std::function<void(const Row&)>& print_table) {
  std::vector<Row> rows;
  try {
    for (int i = 0; i < runs; ++i)
      rows.push_back(measure(i));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera bench %s: %s\n", name, e.what());
    return 1;
  }
  Row med;
  for (auto& [key, _] : rows.front()) {
    std::vector<double> values;
    for (auto& r : rows)
      values.push_back(r.at(key));
    med[key] = median(values);
  }
  if (!json) {
    print_table(med);
    return 0;
  }
  nlohmann::json j(med);
  j.update(params);
  j["runs"] = runs;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace tessera::bench
