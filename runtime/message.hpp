#pragma once
// Building and reading Cap'n Proto messages.
//
//   auto msg = tessera::build<wire::testing::Ping>([&](auto b) { b.setSeq(7); });
//   ...
//   on<wire::testing::Ping>([this](const Received<wire::testing::Ping>& m) { m.body().getSeq(); });
//
// A Received<T> is only valid during the handler call: its reader points into
// the envelope's payload, which the runtime keeps alive for that long.

#include "runtime/envelope.hpp"

#include <capnp/generated-header-support.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>

#include <utility>

namespace tessera {

struct Outgoing {
  uint64_t type_id = 0;
  Payload payload;
};

// Most control messages are a few dozen words; Cap'n Proto's default first
// segment (1024 words, zeroed) would cost more than the message itself.
inline constexpr unsigned build_first_segment_words = 32;

template <class T, class Fill>
Outgoing build(Fill&& fill) {
  capnp::MallocMessageBuilder builder(build_first_segment_words);
  std::forward<Fill>(fill)(builder.initRoot<T>());
  return Outgoing{capnp::typeId<T>(), Payload(capnp::messageToFlatArray(builder))};
}

template <class T>
Outgoing build_default() {
  return build<T>([](typename T::Builder) {});
}

template <class T>
class Received {
 public:
  Received(const Envelope& env, typename T::Reader body) : env_(env), body_(body) {}
  typename T::Reader body() const { return body_; }
  const Address& sender() const { return env_.sender; }
  const Envelope& envelope() const { return env_; }
  // Who the sender proved to be (Envelope::principal); null on a plaintext
  // node.
  const PeerIdentity* principal() const { return env_.principal.get(); }

 private:
  const Envelope& env_;
  typename T::Reader body_;
};

}  // namespace tessera
