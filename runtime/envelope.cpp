#include "runtime/envelope.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/sec.hpp>

#include <algorithm>
#include <cstring>

namespace tessera {

Payload::Payload(kj::Array<capnp::word> words) {
  size_t size_bytes = words.size() * sizeof(capnp::word);
  buf_ = std::make_shared<const Buffer>(Buffer{std::move(words), size_bytes});
}

Payload::Payload(kj::Array<capnp::word> words, size_t size_bytes) {
  buf_ = std::make_shared<const Buffer>(Buffer{std::move(words), size_bytes});
}

Payload Payload::copy_of(const void* data, size_t size_bytes) {
  auto words = kj::heapArray<capnp::word>((size_bytes + 7) / 8);
  if (size_bytes > 0) {
    std::memset(words.begin(), 0, words.size() * sizeof(capnp::word));
    std::memcpy(words.begin(), data, size_bytes);
  }
  return Payload(std::move(words), size_bytes);
}

Payload Payload::too_large(size_t size_bytes) {
  return Payload(kj::Array<capnp::word>{}, size_bytes);
}

kj::ArrayPtr<const capnp::word> Payload::words() const {
  if (!buf_)
    return {};
  return buf_->words.asPtr();
}

caf::error inspect(caf::serializer& f, Payload& x) {
  size_t n = x.materialised() ? x.size_bytes() : 0;
  if (auto err = f.begin_sequence(n))
    return err;
  if (n > 0)
    if (auto err = f.apply_raw(n, const_cast<capnp::word*>(x.data())))
      return err;
  return f.end_sequence();
}

caf::error inspect(caf::deserializer& f, Payload& x) {
  size_t n = 0;
  if (auto err = f.begin_sequence(n))
    return err;
  // A length the stream cannot hold is a lie: refuse it before allocating,
  // so a 60-byte message cannot make us allocate a gigabyte.
  if (auto* bin = dynamic_cast<caf::binary_deserializer*>(&f); bin && n > bin->remaining())
    return caf::make_error(caf::sec::end_of_stream);
  if (n > wire_payload_bytes_max) {
    // Consume and drop the bytes so the stream stays aligned; delivery counts
    // the message as oversized.
    char scratch[4096];
    for (size_t left = n; left > 0;) {
      size_t chunk = std::min(left, sizeof(scratch));
      if (auto err = f.apply_raw(chunk, scratch))
        return err;
      left -= chunk;
    }
    x = Payload::too_large(n);
    return f.end_sequence();
  }
  auto words = kj::heapArray<capnp::word>((n + 7) / 8);
  if (n % 8 != 0)
    std::memset(words.begin(), 0, words.size() * sizeof(capnp::word));
  if (n > 0)
    if (auto err = f.apply_raw(n, words.begin()))
      return err;
  x = Payload(std::move(words), n);
  return f.end_sequence();
}

}  // namespace tessera
