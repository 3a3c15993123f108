#pragma once
// Placement constraints of an app (Marathon's operators, app_spec.hpp's
// Constraint), evaluated against one candidate agent: may one more instance
// go there, given where the app's instances already are? A refusal says why,
// in words an operator reads in the queue's "why not running".
//
// A constraint looks at one field of an agent: "hostname", or the name of
// one of its attributes (text as given; a scalar as written by
// attribute_value; ranges as "[a-b,c-d]"). An agent without the field:
// refused by every operator but UNLIKE.
//
//   UNIQUE            no instance already has this value
//   CLUSTER v         the value is v
//   GROUP_BY [n]      spread over values: the candidate's value holds no more
//                     instances than the emptiest one (with n, n values are
//                     expected, so until n are used only a new value fits)
//   MAX_PER n         fewer than n instances have this value
//   LIKE re / UNLIKE re   the whole value matches / does not match re (POSIX ERE)
//   IS v              the value is v
//
// Thread-safety: a compiled check is immutable; any number of threads may
// use one.

#include "runtime/error.hpp"
#include "services/apps/app_spec.hpp"
#include "services/common/wire.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tessera::apps {

// The value of field on an agent; nullopt when it has no such field.
std::optional<std::string> field_value(const std::string& field, const std::string& hostname,
                                       const std::vector<Attribute>& attributes);

class ConstraintCheck {
 public:
  // Errc::invalid_argument for a LIKE/UNLIKE expression that does not
  // compile, or a count that is not a whole number above 0.
  static expected<ConstraintCheck> compile(const Constraint& c);

  // Why one more instance may not go on an agent whose value of the field
  // is candidate, when the app's instances are on agents with the values
  // placed (one entry per instance); nullopt when it may.
  std::optional<std::string> refuses(const std::optional<std::string>& candidate,
                                     const std::vector<std::optional<std::string>>& placed) const;

  const Constraint& constraint() const { return c_; }
  // "hostname:UNIQUE", "rack:GROUP_BY:3", as Marathon's CLI writes them.
  std::string describe() const;

 private:
  explicit ConstraintCheck(Constraint c) : c_(std::move(c)) {}
  Constraint c_;
  uint32_t count_ = 0;           // GROUP_BY (0: not given), MAX_PER
  std::shared_ptr<void> regex_;  // LIKE/UNLIKE: a compiled regex_t
};

}  // namespace tessera::apps
