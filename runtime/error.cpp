#include "runtime/error.hpp"

#include <caf/message.hpp>
#include <caf/make_message.hpp>

#include <cstring>

namespace tessera {

const char* to_string(Errc code) {
  switch (code) {
    case Errc::ok:
      return "ok";
    case Errc::timeout:
      return "timeout";
    case Errc::peer_lost:
      return "peer_lost";
    case Errc::unknown_actor:
      return "unknown_actor";
    case Errc::bad_address:
      return "bad_address";
    case Errc::name_taken:
      return "name_taken";
    case Errc::connect_failed:
      return "connect_failed";
    case Errc::malformed:
      return "malformed";
    case Errc::truncated:
      return "truncated";
    case Errc::oversized:
      return "oversized";
    case Errc::traversal_limit:
      return "traversal_limit";
    case Errc::unhandled_type:
      return "unhandled_type";
    case Errc::spawn_failed:
      return "spawn_failed";
    case Errc::os_error:
      return "os_error";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::stopped:
      return "stopped";
    case Errc::overloaded:
      return "overloaded";
    case Errc::conflict:
      return "conflict";
    case Errc::unauthenticated:
      return "unauthenticated";
    case Errc::forbidden:
      return "forbidden";
  }
  return "unknown";
}

caf::error make_error(Errc code, std::string context) {
  if (context.empty())
    return caf::error{static_cast<uint8_t>(code), error_category};
  return caf::error{static_cast<uint8_t>(code), error_category,
                    caf::make_message(std::move(context))};
}

caf::error make_os_error(int errno_value, const std::string& what) {
  return make_error(Errc::os_error, what + ": " + std::strerror(errno_value));
}

bool is(const caf::error& err, Errc code) {
  return err.category() == error_category && err.code() == static_cast<uint8_t>(code);
}

std::string describe(const caf::error& err) {
  if (!err)
    return "ok";
  if (err.category() != error_category)
    return caf::to_string(err);
  std::string out = to_string(static_cast<Errc>(err.code()));
  if (!err.context().empty() && err.context().match_elements<std::string>())
    out += ": " + err.context().get_as<std::string>(0);
  return out;
}

}  // namespace tessera

namespace tessera {

std::string what(const caf::error& err) {
  if (err && err.category() == error_category && !err.context().empty() &&
      err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return describe(err);
}

}  // namespace tessera
