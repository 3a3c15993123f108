#pragma once
// A small blocking HTTP/1.1 client for the CLI (`tessera ...`) and the tests.
//
// Each call opens a fresh connection (no pooling), runs the exchange on an
// io_context of its own on the calling thread, and returns errors as values:
//   - Errc::connect_failed "cannot reach HOST:PORT: reason" (refused,
//     unreachable, unresolvable, or no connection within the deadline);
//   - Errc::timeout when the deadline passes after connecting;
//   - Errc::peer_lost when the connection drops before the answer is whole;
//   - Errc::malformed when the answer is not HTTP;
//   - Errc::invalid_argument for a host_port that does not parse;
//   - Errc::connect_failed "TLS handshake with HOST:PORT failed: reason"
//     when TLS was asked for and the server does not prove itself, and
//     "TLS with HOST:PORT failed ...: reason" when it refuses the client
//     (TLS 1.3 says so only after the client's side of the handshake).
//
// TLS: given a runtime TlsContext (TlsContext::load_client), a call speaks
// HTTPS. The server's certificate must chain to the context's CA and name
// the host called in a DNS or IP SAN (PeerIdentity::serves_host, as a node
// checks a node it dials); the context's own certificate, if it has one, is
// presented to the server (the guard takes its name as the principal).
// Thread-safety: calls are independent; any number may run concurrently.

#include "runtime/error.hpp"

#include <chrono>
#include <memory>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera {
class TlsContext;
}  // namespace tessera

namespace tessera::http {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

// Extra request headers (Authorization, ...); the same type as server.hpp's.
using Headers = std::vector<std::pair<std::string, std::string>>;

// The largest response body request() accepts.
inline constexpr size_t client_body_bytes_max = size_t{512} << 20;

// One request to host_port ("host:port", "[v6]:port"), with a deadline over
// the whole exchange; over TLS when tls is set.
expected<ClientResponse> request(const std::string& host_port, const std::string& method,
                                 const std::string& target, const std::string& body = "",
                                 const std::string& content_type = "application/json",
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                 const Headers& headers = {},
                                 const std::shared_ptr<const TlsContext>& tls = nullptr);

// A streaming request: on_chunk gets each piece of the body as it arrives
// (chunked transfer decoded; pieces need not match the server's chunks) until
// the server ends the body, on_chunk returns false, or the deadline passes
// (zero: none). Returns the response status in all three cases; an error if
// the head did not arrive, or the connection dropped mid-body.
expected<int> stream(const std::string& host_port, const std::string& method,
                     const std::string& target, const std::string& body,
                     const std::function<bool(std::string_view)>& on_chunk,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds::zero(),
                     const Headers& headers = {},
                     const std::shared_ptr<const TlsContext>& tls = nullptr);

}  // namespace tessera::http
