#include "services/common/wire.hpp"

#include "services/common/text.hpp"

#include <charconv>
#include <cmath>

namespace tessera {

unsigned wire_size(const Resources& r) {
  return static_cast<unsigned>(r.entry_count());
}

void to_wire(const Resources& r, capnp::List<wire::Resource>::Builder out) {
  unsigned i = 0;
  auto head = [&](const std::string& name, const std::string& role) {
    auto b = out[i++];
    b.setName(name);
    b.setRole(role);
    return b;
  };
  r.visit(
      [&](const std::string& name, const std::string& role, Milli m) {
        head(name, role).setScalarMilli(m);
      },
      [&](const std::string& name, const std::string& role, const std::vector<Range>& ranges) {
        auto list = head(name, role).initRanges(static_cast<unsigned>(ranges.size()));
        for (unsigned k = 0; k < ranges.size(); ++k) {
          list[k].setBegin(ranges[k].begin);
          list[k].setEnd(ranges[k].end);
        }
      },
      [&](const std::string& name, const std::string& role, const std::set<std::string>& items) {
        auto list = head(name, role).initSet(static_cast<unsigned>(items.size()));
        unsigned k = 0;
        for (const auto& item : items)
          list.set(k++, item);
      });
}

expected<Resources> from_wire(capnp::List<wire::Resource>::Reader in) {
  Resources out;
  for (auto r : in) {
    auto name = str(r.getName());
    auto role = str(r.getRole());
    expected<Resources> one = Resources{};
    switch (r.which()) {
      case wire::Resource::SCALAR_MILLI:
        one = Resources::checked_scalar(name, r.getScalarMilli(), role);
        break;
      case wire::Resource::RANGES: {
        std::vector<Range> ranges;
        for (auto x : r.getRanges())
          ranges.push_back(Range{x.getBegin(), x.getEnd()});
        one = Resources::checked_ranges(name, std::move(ranges), role);
        break;
      }
      case wire::Resource::SET: {
        std::set<std::string> items;
        for (auto x : r.getSet())
          items.insert(str(x));
        one = Resources::checked_set(name, std::move(items), role);
        break;
      }
      default:
        return make_error(Errc::invalid_argument, "resource " + name + " of unknown kind");
    }
    if (!one)
      return one.error();
    // Mixing kinds under one name is an error for parse(); on the wire it
    // shows as a sum that loses nothing, which is all the books need.
    out += *one;
  }
  return out;
}

namespace {

using text::parse_u64;
using text::trim;

bool parse_number(std::string_view text, double& out) {
  if (text.empty())
    return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(out);
}

bool valid_attribute_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

}  // namespace

expected<std::vector<Attribute>> parse_attributes(std::string_view text) {
  std::vector<Attribute> out;
  if (trim(text).empty())
    return out;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(';', start);
    auto item = trim(text.substr(start, end == std::string_view::npos ? end : end - start));
    start = end == std::string_view::npos ? text.size() + 1 : end + 1;
    if (item.empty())
      continue;
    auto colon = item.find(':');
    auto bad = [&](const std::string& why) {
      return make_error(Errc::invalid_argument,
                        "bad attribute '" + std::string(item) + "': " + why);
    };
    if (colon == std::string_view::npos)
      return bad("expected name:value");
    Attribute a;
    a.name = std::string(trim(item.substr(0, colon)));
    auto value = trim(item.substr(colon + 1));
    if (!valid_attribute_name(a.name))
      return bad("name must be 1-64 of [A-Za-z0-9_.-]");
    for (const auto& seen : out)
      if (seen.name == a.name)
        return bad("given twice");
    if (value.empty())
      return bad("empty value");
    if (value.front() == '[') {
      if (value.back() != ']')
        return bad("unclosed range list");
      auto inner = value.substr(1, value.size() - 2);
      size_t p = 0;
      while (p <= inner.size()) {
        auto comma = inner.find(',', p);
        auto piece = inner.substr(p, comma == std::string_view::npos ? comma : comma - p);
        p = comma == std::string_view::npos ? inner.size() + 1 : comma + 1;
        auto dash = piece.find('-');
        Range r;
        if (dash == std::string_view::npos || !parse_u64(piece.substr(0, dash), r.begin) ||
            !parse_u64(piece.substr(dash + 1), r.end) || r.begin > r.end)
          return bad("range '" + std::string(trim(piece)) + "' must be begin-end");
        a.ranges.push_back(r);
      }
    } else if (double d; parse_number(value, d)) {
      a.is_scalar = true;
      a.scalar = d;
    } else {
      if (value.find_first_of("[]{},") != std::string_view::npos)
        return bad("text values may not hold []{},");
      a.text = std::string(value);
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::string to_string(const std::vector<Attribute>& attributes) {
  std::string out;
  for (const auto& a : attributes) {
    if (!out.empty())
      out += ';';
    out += a.name + ':';
    if (a.is_scalar) {
      char buf[64];
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), a.scalar);
      out.append(buf, ec == std::errc() ? ptr : buf);
    } else if (!a.ranges.empty()) {
      out += '[';
      for (size_t i = 0; i < a.ranges.size(); ++i)
        out += (i ? "," : "") + std::to_string(a.ranges[i].begin) + '-' +
               std::to_string(a.ranges[i].end);
      out += ']';
    } else {
      out += a.text;
    }
  }
  return out;
}

void to_wire(const std::vector<Attribute>& attributes, capnp::List<wire::Attribute>::Builder out) {
  for (unsigned i = 0; i < attributes.size(); ++i) {
    const auto& a = attributes[i];
    auto b = out[i];
    b.setName(a.name);
    if (a.is_scalar) {
      b.setScalar(a.scalar);
    } else if (!a.ranges.empty()) {
      auto list = b.initRanges(static_cast<unsigned>(a.ranges.size()));
      for (unsigned k = 0; k < a.ranges.size(); ++k) {
        list[k].setBegin(a.ranges[k].begin);
        list[k].setEnd(a.ranges[k].end);
      }
    } else {
      b.setText(a.text);
    }
  }
}

std::vector<Attribute> from_wire(capnp::List<wire::Attribute>::Reader in) {
  std::vector<Attribute> out;
  for (auto r : in) {
    Attribute a;
    a.name = str(r.getName());
    switch (r.which()) {
      case wire::Attribute::SCALAR:
        a.is_scalar = true;
        a.scalar = r.getScalar();
        break;
      case wire::Attribute::RANGES:
        for (auto x : r.getRanges())
          a.ranges.push_back(Range{x.getBegin(), x.getEnd()});
        break;
      default:
        a.text = str(r.getText());
    }
    out.push_back(std::move(a));
  }
  return out;
}

const char* to_string(wire::TaskState s) {
  using S = wire::TaskState;
  switch (s) {
    case S::STAGING:
      return "TASK_STAGING";
    case S::STARTING:
      return "TASK_STARTING";
    case S::RUNNING:
      return "TASK_RUNNING";
    case S::KILLING:
      return "TASK_KILLING";
    case S::FINISHED:
      return "TASK_FINISHED";
    case S::FAILED:
      return "TASK_FAILED";
    case S::KILLED:
      return "TASK_KILLED";
    case S::ERROR:
      return "TASK_ERROR";
    case S::LOST:
      return "TASK_LOST";
    case S::DROPPED:
      return "TASK_DROPPED";
    case S::UNREACHABLE:
      return "TASK_UNREACHABLE";
    case S::GONE:
      return "TASK_GONE";
    case S::UNKNOWN:
      return "TASK_UNKNOWN";
  }
  return "TASK_?";
}

const char* to_string(wire::TaskStatus::Reason r) {
  using R = wire::TaskStatus::Reason;
  switch (r) {
    case R::NONE:
      return "REASON_NONE";
    case R::COMMAND_EXITED:
      return "REASON_COMMAND_EXITED";
    case R::COMMAND_EXECUTOR_FAILED:
      return "REASON_COMMAND_EXECUTOR_FAILED";
    case R::CONTAINER_LAUNCH_FAILED:
      return "REASON_CONTAINER_LAUNCH_FAILED";
    case R::CONTAINER_LIMITATION_MEMORY:
      return "REASON_CONTAINER_LIMITATION_MEMORY";
    case R::CONTAINER_LIMITATION_DISK:
      return "REASON_CONTAINER_LIMITATION_DISK";
    case R::CONTAINER_PREEMPTED:
      return "REASON_CONTAINER_PREEMPTED";
    case R::EXECUTOR_REGISTRATION_TIMEOUT:
      return "REASON_EXECUTOR_REGISTRATION_TIMEOUT";
    case R::EXECUTOR_TERMINATED:
      return "REASON_EXECUTOR_TERMINATED";
    case R::EXECUTOR_UNREGISTERED:
      return "REASON_EXECUTOR_UNREGISTERED";
    case R::FETCH_FAILED:
      return "REASON_FETCH_FAILED";
    case R::FRAMEWORK_REMOVED:
      return "REASON_FRAMEWORK_REMOVED";
    case R::INVALID_FRAMEWORK_ID:
      return "REASON_INVALID_FRAMEWORK_ID";
    case R::INVALID_OFFERS:
      return "REASON_INVALID_OFFERS";
    case R::MASTER_DISCONNECTED:
      return "REASON_MASTER_DISCONNECTED";
    case R::RECONCILIATION:
      return "REASON_RECONCILIATION";
    case R::AGENT_DISCONNECTED:
      return "REASON_AGENT_DISCONNECTED";
    case R::AGENT_REMOVED:
      return "REASON_AGENT_REMOVED";
    case R::AGENT_RESTARTED:
      return "REASON_AGENT_RESTARTED";
    case R::AGENT_UNKNOWN:
      return "REASON_AGENT_UNKNOWN";
    case R::AGENT_UNREACHABLE:
      return "REASON_AGENT_UNREACHABLE";
    case R::TASK_GROUP_INVALID:
      return "REASON_TASK_GROUP_INVALID";
    case R::TASK_INVALID:
      return "REASON_TASK_INVALID";
    case R::TASK_KILLED_DURING_LAUNCH:
      return "REASON_TASK_KILLED_DURING_LAUNCH";
    case R::TASK_UNKNOWN:
      return "REASON_TASK_UNKNOWN";
    case R::TASK_UNHEALTHY:
      return "REASON_TASK_UNHEALTHY";
    case R::KILLED_BY_SCHEDULER:
      return "REASON_KILLED_BY_SCHEDULER";
  }
  return "REASON_?";
}

bool is_terminal(wire::TaskState s) {
  using S = wire::TaskState;
  switch (s) {
    case S::FINISHED:
    case S::FAILED:
    case S::KILLED:
    case S::ERROR:
    case S::LOST:
    case S::DROPPED:
    case S::GONE:
      return true;
    default:
      return false;
  }
}

int64_t timestamp_ns(Node& node) {
  if (node.simulation())
    return node.clock().now().time_since_epoch().count();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_uuid_bytes(std::mt19937_64& rng) {
  std::string out(16, '\0');
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int k = 0; k < 8; ++k)
      out[static_cast<size_t>(i * 8 + k)] = static_cast<char>((v >> (8 * k)) & 0xff);
  }
  return out;
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

}  // namespace tessera
