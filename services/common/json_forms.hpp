#pragma once
// JSON forms of the value types every role shares, as Mesos's v1 API
// renders its own: Resource ([{"name", "type", "scalar"|"ranges"|"set",
// "role"}]) and Attribute. As a DOM (nlohmann) for small answers, and
// written straight onto a string for bulk reads (the master's GET_STATE).

#include "services/common/resources.hpp"
#include "services/common/wire.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace tessera {

nlohmann::json resources_json(const Resources& r);
// The reverse, checked: a list of resources in Mesos's form (the role as
// "role", or as the one entry of "reservations": [{"role": …}]), or the
// text form ("cpus(web):1;mem(web):512"). Errors name the bad entry.
expected<Resources> resources_from_json(const nlohmann::json& in);
void append_resources(std::string& out, const Resources& r);
nlohmann::json attributes_json(const std::vector<Attribute>& attributes);

// A JSON string (quoted, escaped) and a number, appended to out.
void append_string(std::string& out, const std::string& s);
void append_number(std::string& out, double v);

}  // namespace tessera
