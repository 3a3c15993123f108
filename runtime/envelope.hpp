#pragma once
// The runtime's only wire type. Every Tessera message is a Cap'n Proto struct
// carried as an immutable Payload inside an Envelope that names its schema type
// id, sender and receiver. Within a process an Envelope travels by reference to
// the same payload buffer (no copy, no re-encoding); across processes CAF's
// network layer writes it as bytes through the inspect() overloads below.

#include "runtime/address.hpp"

#include <caf/deserializer.hpp>
#include <caf/serializer.hpp>

#include <capnp/common.h>
#include <kj/array.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace tessera {

struct PeerIdentity;

// Payloads above this are never materialised when read off the network; the
// per-node limit (NodeConfig::message_bytes_max) is checked again at delivery.
inline constexpr size_t wire_payload_bytes_max = size_t{1} << 30;

class Payload {
 public:
  Payload() = default;
  explicit Payload(kj::Array<capnp::word> words);
  // size_bytes may be less than the buffer (a truncated message read off the wire).
  Payload(kj::Array<capnp::word> words, size_t size_bytes);

  // Copies raw bytes (tests, and bytes read from the network). A byte count that
  // is not a multiple of 8 is kept as such so delivery can reject it as truncated.
  static Payload copy_of(const void* data, size_t size_bytes);
  // A payload that was too large to read: only its claimed size is kept.
  static Payload too_large(size_t size_bytes);

  size_t size_bytes() const { return buf_ ? buf_->size_bytes : 0; }
  const capnp::word* data() const { return buf_ ? buf_->words.begin() : nullptr; }
  kj::ArrayPtr<const capnp::word> words() const;
  // False only for a payload too large to have been read off the network.
  bool materialised() const { return !buf_ || buf_->words.size() * 8 >= buf_->size_bytes; }

 private:
  struct Buffer {
    kj::Array<capnp::word> words;
    size_t size_bytes = 0;
  };
  std::shared_ptr<const Buffer> buf_;
};

caf::error inspect(caf::serializer& f, Payload& x);
caf::error inspect(caf::deserializer& f, Payload& x);
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Payload& x) {
  return f(caf::meta::type_name("tessera.payload"), x.size_bytes());
}

struct Envelope {
  uint64_t type_id = 0;  // capnp::typeId<T>() of the payload's root struct
  Address sender;        // empty for messages from outside any actor
  Address receiver;
  uint64_t request_id = 0;  // non-zero: the sender waits for a reply to this id
  uint64_t reply_to = 0;    // non-zero: this answers the receiver's request
  uint8_t error_code = 0;   // with reply_to: the request failed with this Errc
  Payload payload;

  // Local bookkeeping, never on the wire.
  bool counted = false;   // included in the node's in-flight count (settle)
  bool filtered = false;  // already passed the receiver's filters
  // Who the sender proved to be, set on delivery by a secure node (the
  // peer's certificate, or this node's own for a local sender); null on a
  // plaintext node. See peers.hpp.
  std::shared_ptr<const PeerIdentity> principal = nullptr;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Envelope& x) {
  return f(caf::meta::type_name("tessera.envelope"), x.type_id, x.sender, x.receiver, x.request_id,
           x.reply_to, x.error_code, x.payload);
}

// Several envelopes for one receiving actor: one mailbox enqueue in-process,
// one network write across processes.
struct EnvelopeBatch {
  std::vector<Envelope> items;
  bool counted = false;  // local bookkeeping, as in Envelope; never on the wire
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, EnvelopeBatch& x) {
  return f(caf::meta::type_name("tessera.envelope_batch"), x.items);
}

// A timer set through the runtime clock has fired.
struct TimerFired {
  uint64_t id = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, TimerFired& x) {
  return f(caf::meta::type_name("tessera.timer_fired"), x.id);
}

}  // namespace tessera
