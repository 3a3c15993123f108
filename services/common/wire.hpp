#pragma once
// Conversions between Tessera's C++ value types and their wire form
// (capnp/common.capnp), plus small helpers every role needs when it reads or
// writes the protocols: task-state names, terminal states, update uuids and
// ids, and the agent --attributes text form.
//
// Readers come from messages the runtime has already validated; conversions
// still check what Cap'n Proto cannot (a negative quantity, a bad role) and
// return an error value rather than trusting a peer.

#include "runtime/error.hpp"
#include "runtime/node.hpp"
#include "services/common/resources.hpp"

#include <capnp/common.capnp.h>
#include <capnp/message.h>

#include <memory>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

// Resources <-> List(Resource).
void to_wire(const Resources& r, capnp::List<wire::Resource>::Builder out);
// The number of wire entries to_wire writes (init the list with it).
unsigned wire_size(const Resources& r);
expected<Resources> from_wire(capnp::List<wire::Resource>::Reader in);

// Agent attributes, text form "rack:r1;zone:a;level:3;ids:[1-4]": text,
// scalar (a number) or ranges values, as Mesos.
struct Attribute {
  std::string name;
  std::string text;  // set when the value is text
  bool is_scalar = false;
  double scalar = 0;
  std::vector<Range> ranges;  // set when the value is ranges
  friend bool operator==(const Attribute&, const Attribute&) = default;
};
expected<std::vector<Attribute>> parse_attributes(std::string_view text);
std::string to_string(const std::vector<Attribute>& attributes);
void to_wire(const std::vector<Attribute>& a, capnp::List<wire::Attribute>::Builder out);
std::vector<Attribute> from_wire(capnp::List<wire::Attribute>::Reader in);

// "TASK_RUNNING" etc., as operators know them from Mesos.
const char* to_string(wire::TaskState s);
const char* to_string(wire::TaskStatus::Reason r);  // "REASON_COMMAND_EXITED"
bool is_terminal(wire::TaskState s);

// A status timestamp: nanoseconds since the Unix epoch, or virtual time in
// a Simulation (so equal seeds still give equal traces).
int64_t timestamp_ns(Node& node);

// 16 random bytes: the uuid of one status update.
std::string new_uuid_bytes(std::mt19937_64& rng);
std::string hex(std::string_view bytes);

// Text fields as std::string.
inline std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}
inline std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}
inline capnp::Data::Reader data(const std::string& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}

// A copy of a received struct that outlives its handler (a handler that
// goes on once a registry write is durable). Copies share the message.
template <class T>
class Kept {
 public:
  explicit Kept(typename T::Reader from)
      : message_(std::make_shared<capnp::MallocMessageBuilder>()) {
    message_->setRoot(from);
  }
  typename T::Reader get() const { return message_->getRoot<T>().asReader(); }

 private:
  std::shared_ptr<capnp::MallocMessageBuilder> message_;
};

}  // namespace tessera
