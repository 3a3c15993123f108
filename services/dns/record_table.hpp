#pragma once
// RecordTable: what the DNS server answers, kept from the master's events.
//
// A plain class, tested without any actor or socket. The feed (dns_feed.hpp)
// writes to it as events arrive; the server's I/O thread reads it once per
// query. Names follow names.hpp; only listed tasks (RUNNING, and not
// reported unhealthy) have records. Several listed instances of one name
// give several records: one address per distinct agent, one SRV per port.
//
// Thread-safety: every public member may be called from any thread; one
// mutex guards the whole table. Writers hold it per call (the feed batches
// with apply(), one lock per batch of events); a query holds it for one
// hash lookup, plus a copy of the answer when the server's cached encoding
// of it is stale.
//
// Versions: every change takes the next value of one counter. lookup()
// returns, for the name asked, a version that changes whenever its answer
// may have (its group, any agent's address, the set of names, the leader):
// the server keys its encoded answers by it.
//
// Bounds: tasks_max and agents_max; a task or agent past them is counted
// (refused()) and has no record.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tessera::dns {

// An IPv4 (family 4) or IPv6 (family 6) address in network byte order.
struct Ip {
  uint8_t family = 0;
  uint8_t bytes[16] = {};
  // Parses a literal ("10.0.0.1", "::1", "[::1]"); nullopt for a host name.
  static std::optional<Ip> parse(std::string_view text);
  std::string to_string() const;
  friend bool operator==(const Ip& a, const Ip& b);
};

// DNS record types the table answers (RFC 1035, 3596, 2782).
inline constexpr uint16_t type_a = 1;
inline constexpr uint16_t type_aaaa = 28;
inline constexpr uint16_t type_srv = 33;
inline constexpr uint16_t type_any = 255;

struct TableConfig {
  std::string apps_framework = "tessera-apps";  // its app-path tasks are NAME.apps
  size_t tasks_max = 2'000'000;
  size_t agents_max = 200'000;
};

// A task as the master reports it, reduced to what names it.
struct TaskFacts {
  std::string framework_id;
  std::string task_id;
  std::string name;
  std::string agent_id;
  std::vector<uint16_t> ports;
  bool listed = false;  // RUNNING and not unhealthy
};

struct Srv {
  uint16_t port = 0;
  std::string target;  // relative to the domain: "s0.agents", "leader"
};

struct Answer {
  bool exists = false;  // false: NXDOMAIN
  uint64_t version = 0;
  bool filled = false;        // false: version was known, the lists are left empty
  std::vector<Ip> addresses;  // of the family asked (A or AAAA; both for ANY)
  std::vector<Srv> services;
};

class RecordTable {
 public:
  explicit RecordTable(TableConfig config = {});
  ~RecordTable();
  RecordTable(const RecordTable&) = delete;
  RecordTable& operator=(const RecordTable&) = delete;

  // The writer's side: each call is one change under the lock. A Batch
  // holds the lock for several.
  class Batch;
  void apply(const std::function<void(Batch&)>& changes);

  // For a snapshot built aside while this table keeps answering: an empty
  // table of the same config whose versions all come after this one's.
  std::unique_ptr<RecordTable> successor() const;
  // Takes the contents of next (a successor() filled since): one swap under
  // the lock, so queries see the old table or the new one, never a part.
  void replace_with(RecordTable& next);

  // name: lower case, relative to the domain, no trailing dot ("" is the
  // apex). known_version: the version of the caller's cached answer (0:
  // none); when it is still current, the answer is not copied.
  Answer lookup(std::string_view name, uint16_t qtype, uint64_t known_version = 0) const;

  struct Stats {
    size_t tasks = 0;    // known, listed or not
    size_t listed = 0;   // with records
    size_t names = 0;    // task names (groups)
    size_t records = 0;  // A/AAAA and SRV records of tasks and agents
    size_t agents = 0;
    uint64_t refused = 0;  // tasks or agents past their bound
    uint64_t unnamed = 0;  // tasks whose name sanitises to nothing
  };
  Stats stats() const;

 private:
  struct State;
  mutable std::mutex mu_;
  std::unique_ptr<State> state_;
};

// Changes, made under the table's lock (RecordTable::apply).
class RecordTable::Batch {
 public:
  void reset();  // forget everything (a new snapshot starts)
  void set_leader(std::optional<Ip> ip, uint16_t port);
  // address: the agent's "HOST" or "name@HOST:PORT"; a host that is not an
  // address literal gives the agent no record (hostname is tried too).
  void upsert_agent(const std::string& id, std::string_view address, std::string_view hostname);
  void remove_agent(const std::string& id);
  void upsert_framework(const std::string& id, std::string_view name);
  void remove_framework(const std::string& id);
  void upsert_task(const TaskFacts& task);
  void remove_task(const std::string& framework_id, const std::string& task_id);

 private:
  friend class RecordTable;
  explicit Batch(State& s) : s_(s) {}
  State& s_;
};

}  // namespace tessera::dns
