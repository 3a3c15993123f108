#pragma once
// DNS messages in and out, through ldns (Debian libldns-dev): a query
// decoded into what the server needs, and answers encoded from the record
// table's Answer. Nothing here parses or writes DNS wire format by hand.
//
// Thread-safety: free functions on values; Zone is immutable once made.

#include "runtime/error.hpp"
#include "services/dns/record_table.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tessera::dns {

inline constexpr uint8_t rcode_noerror = 0;
inline constexpr uint8_t rcode_formerr = 1;
inline constexpr uint8_t rcode_servfail = 2;
inline constexpr uint8_t rcode_nxdomain = 3;
inline constexpr uint8_t rcode_notimp = 4;
inline constexpr uint8_t rcode_refused = 5;

inline constexpr size_t udp_plain_bytes_max = 512;  // without EDNS (RFC 1035)
inline constexpr size_t udp_edns_bytes_max = 4096;  // what we accept to send with EDNS
inline constexpr size_t tcp_message_bytes_max = 65535;

struct Query {
  uint16_t id = 0;
  bool rd = false;
  bool cd = false;
  bool edns = false;
  uint16_t edns_udp_bytes = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  std::string qname;  // lower case, with the trailing dot
  // Set when the query is understood but not served: FORMERR (no or
  // several questions), NOTIMP (not a QUERY). The answer is that rcode.
  uint8_t refuse_rcode = rcode_noerror;
  size_t question_bytes = 0;  // the question's size on the wire (after the header)

  // The largest UDP answer this client takes.
  size_t udp_limit_bytes() const;
};

// Decodes a query. Errors (Errc::malformed): not a DNS message, or a
// response (QR set): such packets are dropped, never answered.
expected<Query> decode_query(const uint8_t* data, size_t size);

// What the server answers for names of its domain.
class Zone {
 public:
  // domain: normalised ("tessera."); ttl_s: of every record.
  Zone(std::string domain, uint32_t ttl_s);
  ~Zone();
  Zone(const Zone&) = delete;
  Zone& operator=(const Zone&) = delete;

  const std::string& domain() const { return domain_; }
  uint32_t ttl_s() const { return ttl_s_; }
  // qname (lower case, trailing dot) relative to the domain, without the
  // dot before it ("web.shop.apps"; "" for the apex); nullopt if outside.
  std::optional<std::string_view> relative(std::string_view qname) const;

  // The answer to q: records from a (authoritative; NXDOMAIN when
  // !a.exists; no data with the SOA in authority when nothing matches the
  // type). When the message exceeds limit_bytes, only the header and the
  // question go, with TC set, and *truncated is set.
  std::string encode(const Query& q, const Answer& a, size_t limit_bytes, bool* truncated) const;

 private:
  struct Ldns;
  std::string domain_;
  uint32_t ttl_s_;
  std::unique_ptr<Ldns> ldns_;
};

// An answer of just a header, the question (if q has one) and rcode.
std::string encode_rcode(const Query& q, uint8_t rcode);

// A response from an upstream resolver: its id and whether it answers q's
// question (same name and type). Errors: it does not decode, or is a query.
struct UpstreamReply {
  uint16_t id = 0;
  bool matches = false;
};
expected<UpstreamReply> decode_upstream_reply(const uint8_t* data, size_t size, const Query& q);

}  // namespace tessera::dns
