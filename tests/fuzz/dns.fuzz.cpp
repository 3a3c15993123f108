// The DNS server's packet path (services/dns): any datagram or TCP message
// a client sends goes through Responder::respond, as the server hands it
// over, against a table of a small cluster; what it answers must fit the
// transport's limit. A decoded query is also checked against the packet as
// an upstream resolver's reply would be.
//
// Input: one byte (bit 0: over TCP), then the DNS message.

#include "services/dns/packets.hpp"
#include "services/dns/record_table.hpp"
#include "services/dns/responder.hpp"
#include "tests/fuzz/fuzz_input.hpp"

#include <cstdlib>
#include <memory>

namespace {

using namespace tessera::dns;

std::shared_ptr<const RecordTable> cluster_table() {
  auto table = std::make_shared<RecordTable>();
  table->apply([](RecordTable::Batch& b) {
    b.set_leader(Ip::parse("127.0.0.1"), 5050);
    b.upsert_agent("s0", "agent@127.0.0.2:5051", "host-a");
    b.upsert_agent("s1", "agent@[::1]:5051", "host-b");
    b.upsert_framework("f0", "shop");
    b.upsert_task(TaskFacts{"f0", "web.1", "web", "s0", {31000, 31001}, true});
    b.upsert_task(TaskFacts{"f0", "web.2", "web", "s1", {31002}, true});
    b.upsert_task(TaskFacts{"f0", "db.1", "db", "s1", {}, false});
  });
  return table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Counters counters;
  static Responder responder(cluster_table(), "tessera.", 60, true, 1024, counters);
  tessera::fuzz::Input in(data, size);
  bool tcp = in.u8() & 1;
  auto packet = in.rest();
  auto bytes = reinterpret_cast<const uint8_t*>(packet.data());
  auto outcome = responder.respond(bytes, packet.size(), tcp);
  if (outcome.kind == Outcome::reply) {
    auto limit = tcp ? tcp_message_bytes_max : udp_edns_bytes_max;
    if (outcome.wire.size() > limit)
      std::abort();
  }
  if (auto q = decode_query(bytes, packet.size()))
    (void)decode_upstream_reply(bytes, packet.size(), *q);
  return 0;
}
