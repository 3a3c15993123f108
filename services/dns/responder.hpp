#pragma once
// Responder: one DNS query in, what to do with it out. The server's I/O
// thread calls it for every UDP datagram and TCP message; it holds no
// socket, so it is tested with bytes alone.
//
// Names of the zone are answered from the RecordTable; other names are to
// be forwarded (Outcome::forward) when upstreams exist, else REFUSED.
// Malformed input is dropped and counted; the rest of the answer logic is
// packets.hpp's.
//
// Encoded answers are cached per (name, type, EDNS, size limit) with the
// table's version of that name (record_table.hpp): a query whose answer has
// not changed costs a decode, one table lookup and a copy. The cache holds
// at most cache_entries_max answers; when full it is emptied.
//
// Thread-safety: one thread (the server's). Counters are atomics any
// thread may read.

#include "services/dns/packets.hpp"
#include "services/dns/record_table.hpp"

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

namespace tessera::dns {

struct Counters {
  std::atomic<uint64_t> queries{0};            // every message received
  std::atomic<uint64_t> answered{0};           // answered from the table (any rcode)
  std::atomic<uint64_t> nxdomain{0};           // of those, names that do not exist
  std::atomic<uint64_t> refused{0};            // outside the zone, nowhere to forward
  std::atomic<uint64_t> forwarded{0};          // sent to an upstream
  std::atomic<uint64_t> upstream_answers{0};   // relayed back from an upstream
  std::atomic<uint64_t> upstream_failures{0};  // SERVFAIL: timed out or too many pending
  std::atomic<uint64_t> malformed_dropped{0};  // not a DNS query: dropped
  std::atomic<uint64_t> truncated{0};          // too big for UDP: TC set
  std::atomic<uint64_t> tcp_queries{0};
  std::atomic<uint64_t> tcp_refused{0};  // connections past tcp_connections_max
  std::atomic<uint64_t> cache_hits{0};
};

// Counters as (name, value), for metrics and the CLI.
std::vector<std::pair<std::string, uint64_t>> counter_values(const Counters& c);

struct Outcome {
  enum Kind { drop, reply, forward } kind = drop;
  std::string wire;  // reply: the answer
  Query query;       // forward: the query (its id is the client's)
};

class Responder {
 public:
  Responder(std::shared_ptr<const RecordTable> table, std::string domain, uint32_t ttl_s,
            bool can_forward, size_t cache_entries_max, Counters& counters);

  // data: one DNS message; tcp: it came over TCP (answers up to 64 KiB).
  Outcome respond(const uint8_t* data, size_t size, bool tcp);

  const Zone& zone() const { return zone_; }
  size_t cache_entries() const { return cache_.size(); }

 private:
  struct Cached {
    uint64_t version = 0;
    bool truncated = false;
    std::string wire;
  };
  Outcome answer(const Query& q, std::string_view relative, const uint8_t* data, size_t size,
                 bool tcp);
  void malformed(const char* why, size_t size);

  std::shared_ptr<const RecordTable> table_;
  Zone zone_;
  bool can_forward_;
  size_t cache_entries_max_;
  Counters& counters_;
  std::unordered_map<std::string, Cached> cache_;
  std::string key_;  // reused for each lookup
  // Rate-limited logging of malformed input: one line per interval.
  int64_t malformed_logged_ns_ = 0;
  uint64_t malformed_unlogged_ = 0;
};

}  // namespace tessera::dns
