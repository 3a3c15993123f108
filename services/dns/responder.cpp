#include "services/dns/responder.hpp"

#include "runtime/log.hpp"

#include <chrono>
#include <cstring>

namespace tessera::dns {

namespace {

constexpr uint16_t class_in = 1;
constexpr uint16_t class_any = 255;
constexpr uint16_t type_ixfr = 251;
constexpr uint16_t type_axfr = 252;
constexpr size_t header_bytes = 12;
constexpr int64_t malformed_log_interval_ns = 10'000'000'000;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Gives a cached answer the asking query's id, RD and CD bits, and its
// question as it spelled it (resolvers check the case they sent, RFC
// draft 0x20). The cached question is the same name in lower case, so the
// bytes line up; when they do not (a compressed question), it stays as is.
void personalise(std::string& wire, const uint8_t* query, size_t size, const Query& q) {
  wire[0] = static_cast<char>(query[0]);
  wire[1] = static_cast<char>(query[1]);
  wire[2] = static_cast<char>((wire[2] & ~0x01) | (query[2] & 0x01));
  wire[3] = static_cast<char>((wire[3] & ~0x10) | (query[3] & 0x10));
  auto end = header_bytes + q.question_bytes;
  if (size < end || wire.size() < end)
    return;
  for (size_t i = header_bytes; i < end; ++i)
    if (lower(static_cast<char>(query[i])) != wire[i])
      return;
  std::memcpy(wire.data() + header_bytes, query + header_bytes, q.question_bytes);
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::vector<std::pair<std::string, uint64_t>> counter_values(const Counters& c) {
  return {{"queries", c.queries.load()},
          {"answered", c.answered.load()},
          {"nxdomain", c.nxdomain.load()},
          {"refused", c.refused.load()},
          {"forwarded", c.forwarded.load()},
          {"upstream_answers", c.upstream_answers.load()},
          {"upstream_failures", c.upstream_failures.load()},
          {"malformed_dropped", c.malformed_dropped.load()},
          {"truncated", c.truncated.load()},
          {"tcp_queries", c.tcp_queries.load()},
          {"tcp_refused", c.tcp_refused.load()},
          {"cache_hits", c.cache_hits.load()}};
}

Responder::Responder(std::shared_ptr<const RecordTable> table, std::string domain, uint32_t ttl_s,
                     bool can_forward, size_t cache_entries_max, Counters& counters)
    : table_(std::move(table)),
      zone_(std::move(domain), ttl_s),
      can_forward_(can_forward),
      cache_entries_max_(cache_entries_max),
      counters_(counters) {
}

void Responder::malformed(const char* why, size_t size) {
  ++counters_.malformed_dropped;
  auto now = now_ns();
  if (now - malformed_logged_ns_ < malformed_log_interval_ns) {
    ++malformed_unlogged_;
    return;
  }
  log().warn("dns: dropped a malformed message of {} bytes: {} ({} more since the last line)", size,
             why, malformed_unlogged_);
  malformed_logged_ns_ = now;
  malformed_unlogged_ = 0;
}

Outcome Responder::respond(const uint8_t* data, size_t size, bool tcp) {
  ++counters_.queries;
  if (tcp)
    ++counters_.tcp_queries;
  Outcome out;
  if (size < header_bytes) {
    malformed("shorter than a DNS header", size);
    return out;
  }
  auto q = decode_query(data, size);
  if (!q) {
    malformed(describe(q.error()).c_str(), size);
    return out;
  }
  out.kind = Outcome::reply;
  if (q->refuse_rcode != rcode_noerror) {
    ++counters_.answered;
    out.wire = encode_rcode(*q, q->refuse_rcode);
    return out;
  }
  auto relative = zone_.relative(q->qname);
  if (!relative) {
    if (can_forward_) {
      out.kind = Outcome::forward;
      out.query = std::move(*q);
      return out;
    }
    ++counters_.refused;
    out.wire = encode_rcode(*q, rcode_refused);
    return out;
  }
  if ((q->qclass != class_in && q->qclass != class_any) || q->qtype == type_axfr ||
      q->qtype == type_ixfr) {
    ++counters_.refused;
    out.wire = encode_rcode(*q, rcode_refused);
    return out;
  }
  return answer(*q, *relative, data, size, tcp);
}

Outcome Responder::answer(const Query& q, std::string_view relative, const uint8_t* data,
                          size_t size, bool tcp) {
  Outcome out;
  out.kind = Outcome::reply;
  auto limit = tcp ? tcp_message_bytes_max : q.udp_limit_bytes();
  key_.assign(q.qname);
  key_.push_back('\0');
  key_.push_back(static_cast<char>(q.qtype >> 8));
  key_.push_back(static_cast<char>(q.qtype & 0xff));
  key_.push_back(q.edns ? 'e' : '-');
  key_.push_back(static_cast<char>(limit >> 8));
  key_.push_back(static_cast<char>(limit & 0xff));
  auto it = cache_.find(key_);
  auto a = table_->lookup(relative, q.qtype, it == cache_.end() ? 0 : it->second.version);
  ++counters_.answered;
  if (!a.exists)
    ++counters_.nxdomain;
  if (!a.filled && it != cache_.end()) {
    ++counters_.cache_hits;
    if (it->second.truncated)
      ++counters_.truncated;
    out.wire = it->second.wire;
    personalise(out.wire, data, size, q);
    return out;
  }
  Cached c;
  c.version = a.version;
  c.wire = zone_.encode(q, a, limit, &c.truncated);
  if (c.truncated)
    ++counters_.truncated;
  out.wire = c.wire;
  personalise(out.wire, data, size, q);
  if (it != cache_.end()) {
    it->second = std::move(c);
  } else {
    if (cache_.size() >= cache_entries_max_)
      cache_.clear();
    cache_.emplace(key_, std::move(c));
  }
  return out;
}

}  // namespace tessera::dns
