#include "services/dns/packets.hpp"

#include "services/dns/names.hpp"

#include <ldns/ldns.h>

#include <cstdlib>

namespace tessera::dns {

namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

struct CharFree {
  void operator()(char* p) const { std::free(p); }
};

// The question's owner as text, lower case, with the trailing dot.
std::string owner_text(const ldns_rdf* owner) {
  std::unique_ptr<char, CharFree> text(ldns_rdf2str(owner));
  std::string out = text ? text.get() : "";
  lower_ascii(out);
  return out;
}

ldns_pkt* new_reply(const Query& q, uint8_t rcode) {
  auto* p = ldns_pkt_new();
  ldns_pkt_set_id(p, q.id);
  ldns_pkt_set_qr(p, true);
  ldns_pkt_set_rd(p, q.rd);
  ldns_pkt_set_cd(p, q.cd);
  ldns_pkt_set_opcode(p, LDNS_PACKET_QUERY);
  ldns_pkt_set_rcode(p, rcode);
  if (!q.qname.empty()) {
    if (auto* owner = ldns_dname_new_frm_str(q.qname.c_str())) {
      auto* question = ldns_rr_new();
      ldns_rr_set_question(question, true);
      ldns_rr_set_owner(question, owner);
      ldns_rr_set_type(question, static_cast<ldns_rr_type>(q.qtype));
      ldns_rr_set_class(question, static_cast<ldns_rr_class>(q.qclass));
      ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, question);
    }
  }
  if (q.edns)
    ldns_pkt_set_edns_udp_size(p, static_cast<uint16_t>(udp_edns_bytes_max));
  return p;
}

std::string to_wire(const ldns_pkt* p) {
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, p, &size) != LDNS_STATUS_OK || !wire)
    return {};
  std::string out(reinterpret_cast<const char*>(wire), size);
  std::free(wire);
  return out;
}

}  // namespace

size_t Query::udp_limit_bytes() const {
  if (!edns)
    return udp_plain_bytes_max;
  return std::clamp<size_t>(edns_udp_bytes, udp_plain_bytes_max, udp_edns_bytes_max);
}

expected<Query> decode_query(const uint8_t* data, size_t size) {
  ldns_pkt* raw = nullptr;
  auto status = ldns_wire2pkt(&raw, data, size);
  PktPtr p(raw);
  if (status != LDNS_STATUS_OK || !p)
    return make_error(Errc::malformed, ldns_get_errorstr_by_id(status));
  if (ldns_pkt_qr(p.get()))
    return make_error(Errc::malformed, "a response, not a query");
  Query q;
  q.id = ldns_pkt_id(p.get());
  q.rd = ldns_pkt_rd(p.get());
  q.cd = ldns_pkt_cd(p.get());
  q.edns = ldns_pkt_edns(p.get());
  q.edns_udp_bytes = ldns_pkt_edns_udp_size(p.get());
  if (ldns_pkt_get_opcode(p.get()) != LDNS_PACKET_QUERY) {
    q.refuse_rcode = rcode_notimp;
    return q;
  }
  auto* questions = ldns_pkt_question(p.get());
  if (ldns_pkt_qdcount(p.get()) != 1 || !questions || ldns_rr_list_rr_count(questions) != 1) {
    q.refuse_rcode = rcode_formerr;
    return q;
  }
  auto* question = ldns_rr_list_rr(questions, 0);
  q.qname = owner_text(ldns_rr_owner(question));
  q.qtype = static_cast<uint16_t>(ldns_rr_get_type(question));
  q.qclass = static_cast<uint16_t>(ldns_rr_get_class(question));
  q.question_bytes = ldns_rdf_size(ldns_rr_owner(question)) + 4;
  if (q.qname.empty() || q.qname.back() != '.')
    q.refuse_rcode = rcode_formerr;
  return q;
}

std::string encode_rcode(const Query& q, uint8_t rcode) {
  PktPtr p(new_reply(q, rcode));
  ldns_pkt_set_ra(p.get(), false);
  return to_wire(p.get());
}

struct Zone::Ldns {
  ldns_rr* soa = nullptr;
  ~Ldns() {
    if (soa)
      ldns_rr_free(soa);
  }
};

Zone::Zone(std::string domain, uint32_t ttl_s)
    : domain_(std::move(domain)), ttl_s_(ttl_s), ldns_(std::make_unique<Ldns>()) {
  // The SOA of negative answers: its minimum is how long resolvers may
  // remember that a name does not exist (RFC 2308), the same TTL.
  auto text = domain_ + " " + std::to_string(ttl_s_) + " IN SOA ns." + domain_ + " hostmaster." +
              domain_ + " 1 60 30 86400 " + std::to_string(ttl_s_);
  if (ldns_rr_new_frm_str(&ldns_->soa, text.c_str(), ttl_s_, nullptr, nullptr) != LDNS_STATUS_OK)
    ldns_->soa = nullptr;
}

Zone::~Zone() = default;

std::optional<std::string_view> Zone::relative(std::string_view qname) const {
  if (qname == domain_)
    return std::string_view();
  if (qname.size() <= domain_.size() + 1 || !qname.ends_with(domain_) ||
      qname[qname.size() - domain_.size() - 1] != '.')
    return std::nullopt;
  return qname.substr(0, qname.size() - domain_.size() - 1);
}

std::string Zone::encode(const Query& q, const Answer& a, size_t limit_bytes,
                         bool* truncated) const {
  PktPtr p(new_reply(q, a.exists ? rcode_noerror : rcode_nxdomain));
  ldns_pkt_set_aa(p.get(), true);
  auto* owner = ldns_dname_new_frm_str(q.qname.c_str());
  auto new_rr = [&](ldns_rr_type type) {
    auto* rr = ldns_rr_new();
    ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
    ldns_rr_set_type(rr, type);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, ttl_s_);
    return rr;
  };
  size_t answers = 0;
  for (const auto& ip : a.addresses) {
    bool v4 = ip.family == 4;
    auto* rr = new_rr(v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
    ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                               v4 ? 4 : 16, ip.bytes));
    ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, rr);
    ++answers;
  }
  for (const auto& s : a.services) {
    auto target = s.target + "." + domain_;
    auto* target_rdf = ldns_dname_new_frm_str(target.c_str());
    if (!target_rdf)
      continue;
    auto* rr = new_rr(LDNS_RR_TYPE_SRV);
    ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 0));  // priority
    ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 1));  // weight
    ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, s.port));
    ldns_rr_push_rdf(rr, target_rdf);
    ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, rr);
    ++answers;
  }
  bool apex = q.qname == domain_;
  if (apex && (q.qtype == LDNS_RR_TYPE_SOA || q.qtype == LDNS_RR_TYPE_ANY) && ldns_->soa) {
    ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_->soa));
    ++answers;
  }
  if (answers == 0 && ldns_->soa)
    ldns_pkt_push_rr(p.get(), LDNS_SECTION_AUTHORITY, ldns_rr_clone(ldns_->soa));
  ldns_rdf_deep_free(owner);
  auto wire = to_wire(p.get());
  *truncated = wire.size() > limit_bytes;
  if (!*truncated)
    return wire;
  // Too big for this transport: the header and question only, TC set,
  // and the client asks again over TCP (RFC 7766).
  PktPtr small(new_reply(q, rcode_noerror));
  ldns_pkt_set_aa(small.get(), true);
  ldns_pkt_set_tc(small.get(), true);
  return to_wire(small.get());
}

expected<UpstreamReply> decode_upstream_reply(const uint8_t* data, size_t size, const Query& q) {
  ldns_pkt* raw = nullptr;
  auto status = ldns_wire2pkt(&raw, data, size);
  PktPtr p(raw);
  if (status != LDNS_STATUS_OK || !p)
    return make_error(Errc::malformed, ldns_get_errorstr_by_id(status));
  if (!ldns_pkt_qr(p.get()))
    return make_error(Errc::malformed, "a query, not a response");
  UpstreamReply out;
  out.id = ldns_pkt_id(p.get());
  auto* questions = ldns_pkt_question(p.get());
  if (questions && ldns_rr_list_rr_count(questions) == 1) {
    auto* question = ldns_rr_list_rr(questions, 0);
    out.matches = owner_text(ldns_rr_owner(question)) == q.qname &&
                  static_cast<uint16_t>(ldns_rr_get_type(question)) == q.qtype;
  }
  return out;
}

}  // namespace tessera::dns
