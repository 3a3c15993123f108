#include "services/dns/record_table.hpp"

#include "services/dns/names.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace tessera::dns {

std::optional<Ip> Ip::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 45)
    return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  Ip ip;
  if (::inet_pton(AF_INET, buf, ip.bytes) == 1) {
    ip.family = 4;
    return ip;
  }
  if (::inet_pton(AF_INET6, buf, ip.bytes) == 1) {
    ip.family = 6;
    return ip;
  }
  return std::nullopt;
}

std::string Ip::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf);
  return buf;
}

bool operator==(const Ip& a, const Ip& b) {
  return a.family == b.family && std::memcmp(a.bytes, b.bytes, a.family == 4 ? 4 : 16) == 0;
}

namespace {

constexpr uint32_t no_agent = UINT32_MAX;

// The host of "name@host:port", "host:port", "[v6]:port" or "host".
std::string_view host_of(std::string_view address) {
  if (auto at = address.find('@'); at != std::string_view::npos)
    address = address.substr(at + 1);
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    return close == std::string_view::npos ? address : address.substr(0, close + 1);
  }
  if (std::count(address.begin(), address.end(), ':') == 1)
    return address.substr(0, address.find(':'));
  return address;
}

bool family_wanted(uint16_t qtype, uint8_t family) {
  return qtype == type_any || (qtype == type_a && family == 4) ||
         (qtype == type_aaaa && family == 6);
}

}  // namespace

// Lookups by string_view, without building a std::string per query.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;

struct TaskRec;

struct Group {
  std::vector<TaskRec*> members;
  uint64_t version = 0;
};
using GroupMap = NameMap<Group>;

struct TaskRec {
  uint32_t agent = no_agent;
  bool app_path = false;  // label is a reversed app path
  bool listed = false;
  GroupMap::value_type* group = nullptr;  // set while listed and named
  std::string label;                      // sanitised task name, or reversed app path
  std::u16string ports;                   // the string's inline buffer holds up to 7 ports
};

struct FrameworkRec {
  std::string fragment;  // sanitised name: one or more labels; empty: no names
  bool apps = false;     // the apps framework
  std::unordered_map<std::string, TaskRec> tasks;
};

struct AgentRec {
  std::string id;
  std::string label;
  std::optional<Ip> ip;
  bool present = false;  // reported by the master (else only referenced)
  uint32_t tasks = 0;    // tasks that name it
};

struct RecordTable::State {
  TableConfig config;
  GroupMap groups;
  std::unordered_map<std::string, FrameworkRec> frameworks;
  std::vector<AgentRec> agents;
  std::vector<uint32_t> free_agents;
  std::unordered_map<std::string, uint32_t> agent_by_id;
  NameMap<uint32_t> agent_by_label;
  std::optional<Ip> leader;
  uint16_t leader_port = 0;
  uint64_t clock = 1;
  uint64_t names_version = 1;
  uint64_t agents_version = 1;
  uint64_t leader_version = 1;
  size_t tasks = 0;
  size_t listed = 0;
  size_t listed_ports = 0;
  size_t agents_with_ip = 0;
  uint64_t refused = 0;
  uint64_t unnamed = 0;

  uint64_t tick() { return ++clock; }

  uint32_t agent_slot(const std::string& id) {
    if (auto it = agent_by_id.find(id); it != agent_by_id.end())
      return it->second;
    if (agent_by_id.size() >= config.agents_max) {
      ++refused;
      return no_agent;
    }
    uint32_t slot;
    if (!free_agents.empty()) {
      slot = free_agents.back();
      free_agents.pop_back();
    } else {
      slot = static_cast<uint32_t>(agents.size());
      agents.emplace_back();
    }
    auto& a = agents[slot];
    a = AgentRec{};
    a.id = id;
    a.label = sanitize_label(id);
    agent_by_id.emplace(id, slot);
    if (!a.label.empty())
      agent_by_label[a.label] = slot;
    names_version = tick();
    return slot;
  }

  // Frees an agent nobody reports and no task names.
  void release_agent(uint32_t slot) {
    auto& a = agents[slot];
    if (a.present || a.tasks > 0)
      return;
    if (auto it = agent_by_label.find(a.label); it != agent_by_label.end() && it->second == slot)
      agent_by_label.erase(it);
    agent_by_id.erase(a.id);
    a = AgentRec{};
    free_agents.push_back(slot);
    names_version = tick();
  }

  void set_agent_ip(AgentRec& a, std::optional<Ip> ip) {
    if (a.ip == ip)
      return;
    agents_with_ip += (ip ? 1 : 0);
    agents_with_ip -= (a.ip ? 1 : 0);
    a.ip = ip;
    agents_version = tick();
  }

  std::string group_key(const FrameworkRec& fw, const TaskRec& t) const {
    if (t.label.empty())
      return {};
    if (t.app_path && fw.apps)
      return t.label + ".apps";
    if (fw.fragment.empty())
      return {};
    std::string key = t.label + "." + fw.fragment;
    return key.size() > name_chars_max - 16 ? std::string() : key;  // room for _x._tcp.
  }

  void leave_group(TaskRec& t) {
    if (!t.group)
      return;
    auto& g = t.group->second;
    auto it = std::find(g.members.begin(), g.members.end(), &t);
    if (it != g.members.end()) {
      *it = g.members.back();
      g.members.pop_back();
    }
    --listed;
    listed_ports -= t.ports.size();
    if (g.members.empty()) {
      groups.erase(t.group->first);
      names_version = tick();
    } else {
      g.version = tick();
    }
    t.group = nullptr;
  }

  void join_group(const FrameworkRec& fw, TaskRec& t) {
    if (!t.listed || t.group)
      return;
    auto key = group_key(fw, t);
    if (key.empty()) {
      ++unnamed;
      return;
    }
    auto [it, fresh] = groups.try_emplace(std::move(key));
    if (fresh)
      names_version = tick();
    it->second.members.push_back(&t);
    it->second.version = tick();
    t.group = &*it;
    ++listed;
    listed_ports += t.ports.size();
  }

  void drop_task(TaskRec& t) {
    leave_group(t);
    if (t.agent != no_agent) {
      --agents[t.agent].tasks;
      release_agent(t.agent);
    }
    --tasks;
  }

  void fill_group(const Group& g, uint16_t qtype, bool srv, Answer& out) const {
    for (const auto* t : g.members) {
      if (t->agent == no_agent)
        continue;
      const auto& a = agents[t->agent];
      if (srv) {
        if (a.label.empty())
          continue;
        for (auto port : t->ports)
          out.services.push_back({static_cast<uint16_t>(port), a.label + ".agents"});
        continue;
      }
      if (!a.ip || !family_wanted(qtype, a.ip->family))
        continue;
      if (std::find(out.addresses.begin(), out.addresses.end(), *a.ip) == out.addresses.end())
        out.addresses.push_back(*a.ip);
    }
  }
};

RecordTable::RecordTable(TableConfig config) : state_(std::make_unique<State>()) {
  state_->config = std::move(config);
}

RecordTable::~RecordTable() = default;

void RecordTable::apply(const std::function<void(Batch&)>& changes) {
  std::lock_guard lock(mu_);
  Batch b(*state_);
  changes(b);
}

std::unique_ptr<RecordTable> RecordTable::successor() const {
  std::lock_guard lock(mu_);
  auto next = std::make_unique<RecordTable>(state_->config);
  next->state_->clock = state_->clock;
  next->state_->names_version = next->state_->agents_version = next->state_->leader_version =
      next->state_->tick();
  return next;
}

void RecordTable::replace_with(RecordTable& next) {
  std::scoped_lock lock(mu_, next.mu_);
  std::swap(state_, next.state_);
  // Versions go on from whichever table went further.
  state_->clock = std::max(state_->clock, next.state_->clock);
  state_->names_version = state_->agents_version = state_->leader_version = state_->tick();
}

void RecordTable::Batch::reset() {
  auto config = s_.config;
  auto clock = s_.clock;
  s_ = State{};
  s_.config = std::move(config);
  s_.clock = clock;
  s_.names_version = s_.agents_version = s_.leader_version = s_.tick();
}

void RecordTable::Batch::set_leader(std::optional<Ip> ip, uint16_t port) {
  if (s_.leader == ip && s_.leader_port == port)
    return;
  s_.leader = ip;
  s_.leader_port = port;
  s_.leader_version = s_.tick();
  s_.names_version = s_.tick();
}

void RecordTable::Batch::upsert_agent(const std::string& id, std::string_view address,
                                      std::string_view hostname) {
  auto slot = s_.agent_slot(id);
  if (slot == no_agent)
    return;
  auto& a = s_.agents[slot];
  a.present = true;
  auto ip = Ip::parse(host_of(address));
  if (!ip)
    ip = Ip::parse(hostname);
  s_.set_agent_ip(a, ip);
}

void RecordTable::Batch::remove_agent(const std::string& id) {
  auto it = s_.agent_by_id.find(id);
  if (it == s_.agent_by_id.end())
    return;
  auto slot = it->second;
  auto& a = s_.agents[slot];
  a.present = false;
  s_.set_agent_ip(a, std::nullopt);
  s_.release_agent(slot);
}

void RecordTable::Batch::upsert_framework(const std::string& id, std::string_view name) {
  auto& fw = s_.frameworks[id];
  auto fragment = sanitize_labels(name);
  bool apps = !name.empty() && name == s_.config.apps_framework;
  if (fw.fragment == fragment && fw.apps == apps)
    return;
  // Renamed (or first named after its tasks came): every listed task moves.
  for (auto& [tid, t] : fw.tasks)
    s_.leave_group(t);
  fw.fragment = std::move(fragment);
  fw.apps = apps;
  for (auto& [tid, t] : fw.tasks)
    s_.join_group(fw, t);
}

void RecordTable::Batch::remove_framework(const std::string& id) {
  auto it = s_.frameworks.find(id);
  if (it == s_.frameworks.end())
    return;
  for (auto& [tid, t] : it->second.tasks)
    s_.drop_task(t);
  s_.frameworks.erase(it);
}

void RecordTable::Batch::upsert_task(const TaskFacts& in) {
  auto& fw = s_.frameworks[in.framework_id];
  auto it = fw.tasks.find(in.task_id);
  if (it == fw.tasks.end()) {
    if (s_.tasks >= s_.config.tasks_max) {
      ++s_.refused;
      return;
    }
    it = fw.tasks.emplace(in.task_id, TaskRec{}).first;
    ++s_.tasks;
  }
  auto& t = it->second;
  std::u16string ports(in.ports.begin(), in.ports.end());
  auto app = reversed_app_path(in.name);
  auto label = app ? *app : sanitize_label(in.name);
  uint32_t agent = t.agent;
  if (t.agent == no_agent || s_.agents[t.agent].id != in.agent_id)
    agent = in.agent_id.empty() ? no_agent : s_.agent_slot(in.agent_id);
  bool same = t.listed == in.listed && t.ports == ports && t.label == label &&
              t.app_path == app.has_value() && t.agent == agent;
  if (same)
    return;
  s_.leave_group(t);
  if (agent != t.agent) {
    if (agent != no_agent)
      ++s_.agents[agent].tasks;
    if (t.agent != no_agent) {
      --s_.agents[t.agent].tasks;
      s_.release_agent(t.agent);
    }
    t.agent = agent;
  }
  t.listed = in.listed;
  t.ports = std::move(ports);
  t.label = std::move(label);
  t.app_path = app.has_value();
  s_.join_group(fw, t);
}

void RecordTable::Batch::remove_task(const std::string& framework_id, const std::string& task_id) {
  auto fw = s_.frameworks.find(framework_id);
  if (fw == s_.frameworks.end())
    return;
  auto it = fw->second.tasks.find(task_id);
  if (it == fw->second.tasks.end())
    return;
  s_.drop_task(it->second);
  fw->second.tasks.erase(it);
}

Answer RecordTable::lookup(std::string_view name, uint16_t qtype, uint64_t known_version) const {
  std::lock_guard lock(mu_);
  const auto& s = *state_;
  Answer out;
  auto finish = [&](bool exists, uint64_t version) {
    out.exists = exists;
    out.version = version;
    out.filled = version != known_version;
    return out.filled;
  };
  if (name.empty()) {
    finish(true, s.names_version);
    return out;
  }
  if (name == "leader" || name == "master") {
    if (finish(s.leader.has_value(), s.leader_version) && s.leader &&
        family_wanted(qtype, s.leader->family))
      out.addresses.push_back(*s.leader);
    return out;
  }
  if (name == "_leader._tcp") {
    if (finish(s.leader.has_value(), s.leader_version) && s.leader &&
        (qtype == type_srv || qtype == type_any))
      out.services.push_back({s.leader_port, "leader"});
    return out;
  }
  constexpr std::string_view agents_suffix = ".agents";
  if (name.size() > agents_suffix.size() && name.ends_with(agents_suffix)) {
    auto label = name.substr(0, name.size() - agents_suffix.size());
    if (label.find('.') == std::string_view::npos) {
      auto it = s.agent_by_label.find(label);
      if (it == s.agent_by_label.end() || !s.agents[it->second].ip) {
        finish(false, s.names_version);
        return out;
      }
      const auto& ip = *s.agents[it->second].ip;
      if (finish(true, std::max(s.names_version, s.agents_version)) &&
          family_wanted(qtype, ip.family))
        out.addresses.push_back(ip);
      return out;
    }
  }
  std::string_view key = name;
  char buf[name_chars_max + 1];
  bool srv = false;
  if (name.front() == '_') {
    // _TASK._tcp.FRAMEWORK is the group TASK.FRAMEWORK.
    auto proto = name.find("._tcp.");
    if (proto == std::string_view::npos)
      proto = name.find("._udp.");
    if (proto == std::string_view::npos || proto < 2 || name.size() > name_chars_max) {
      finish(false, s.names_version);
      return out;
    }
    auto head = name.substr(1, proto - 1);
    auto tail = name.substr(proto + 5);  // ".FRAMEWORK"
    std::memcpy(buf, head.data(), head.size());
    std::memcpy(buf + head.size(), tail.data(), tail.size());
    key = std::string_view(buf, head.size() + tail.size());
    srv = true;
  }
  auto it = s.groups.find(key);
  if (it == s.groups.end()) {
    finish(false, s.names_version);
    return out;
  }
  const auto& g = it->second;
  if (!finish(true, std::max(g.version, s.agents_version)))
    return out;
  if (srv && (qtype == type_srv || qtype == type_any))
    s.fill_group(g, qtype, true, out);
  else if (!srv && qtype != type_srv)
    s.fill_group(g, qtype, false, out);
  return out;
}

RecordTable::Stats RecordTable::stats() const {
  std::lock_guard lock(mu_);
  const auto& s = *state_;
  Stats out;
  out.tasks = s.tasks;
  out.listed = s.listed;
  out.names = s.groups.size();
  out.records = s.listed + s.listed_ports + s.agents_with_ip;
  out.agents = s.agent_by_id.size();
  out.refused = s.refused;
  out.unnamed = s.unnamed;
  return out;
}

}  // namespace tessera::dns
