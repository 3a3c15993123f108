#pragma once
// Owned<T>: a Cap'n Proto struct copied out of a message so that it outlives
// the handler that received it (a task to launch later, an update to resend).
//
// Value type, move-only: it owns one small message builder holding the copy.

#include <capnp/message.h>

#include <memory>

namespace tessera {

template <class T>
class Owned {
 public:
  Owned() = default;
  explicit Owned(typename T::Reader from)
      : message_(std::make_unique<capnp::MallocMessageBuilder>()) {
    message_->setRoot(from);
  }

  explicit operator bool() const { return message_ != nullptr; }
  // Precondition: holds a value.
  typename T::Reader get() const { return message_->getRoot<T>().asReader(); }
  typename T::Builder edit() { return message_->getRoot<T>(); }

 private:
  std::unique_ptr<capnp::MallocMessageBuilder> message_;
};

}  // namespace tessera
