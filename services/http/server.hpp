#pragma once
// Tessera's HTTP edge: an event-driven HTTP/1.1 server (Boost.Beast).
//
// Threading. A Server owns one I/O thread (an asio io_context run by one
// std::thread); every socket, parser, timer and connection state lives on it
// and is touched by nothing else. There is no thread per connection: an idle
// keep-alive connection costs a socket and a pending read, an idle streaming
// response a socket and a zero-byte readiness wait, so thousands of event
// subscribers are cheap. The Handler runs on the I/O thread and must not block;
// it answers through a Responder, at once or later from any thread. Responders
// and Streams hop onto the I/O thread with asio::post; after stop() they are
// silent no-ops, never dangling.
//
// Limits (ServerConfig), each counted in ServerCounters and logged the first
// time it fires:
//   - connections_max open connections; more are accepted and closed at once;
//   - header_bytes_max per request head (431), request_body_bytes_max per body
//     (413), then the connection is closed; a request that does not parse: 400;
//   - idle_timeout_ms between requests, request_timeout_ms for a whole request
//     to arrive and for a plain response to be taken by the peer;
//   - stream_buffer_bytes_max unsent bytes per streaming response: a subscriber
//     that stops reading is evicted (closed) rather than buffered without bound.
// One request is served at a time per connection; pipelined requests wait in
// the buffer until the one before them is answered.
//
// TLS (ServerConfig::tls set): every connection starts with a TLS 1.3
// handshake, within request_timeout_ms, against the runtime's context
// (runtime/tls.hpp). A client certificate is asked for, not required
// (browsers and token users have none); one that is presented must chain to
// the context's CA, or the handshake fails. A failed handshake is counted
// (tls_handshake_failed) and closed; a plain HTTP request on the TLS port is
// answered 400 in plain text before the close, so its client can say why.
// The identity a client certificate names is on each Request it sends
// (peer_identity), for the guard (services/security/http_guard.hpp).
//
// Lifetimes. Connections are reference-counted by their pending operations;
// handles (Responder, Stream) hold them weakly, so a client that goes away
// frees its connection even while the application still holds its handles.

#include "runtime/error.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tessera {
class TlsContext;
struct PeerIdentity;
}  // namespace tessera

namespace tessera::http {

struct ServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                                // 0: the OS picks a free port
  size_t connections_max = 10'000;                  // more: accepted and closed at once
  size_t request_body_bytes_max = size_t{1} << 20;  // larger: 413, connection closed
  size_t header_bytes_max = 16 * 1024;              // larger: 431, connection closed
  // Timeouts; zero means none.
  std::chrono::milliseconds idle_timeout_ms{60'000};     // keep-alive with no request in flight
  std::chrono::milliseconds request_timeout_ms{30'000};  // a request to arrive, a response to leave
  size_t stream_buffer_bytes_max = size_t{4} << 20;      // unsent bytes of one streaming response
  // Added to the I/O thread's nice value (Linux, per thread; 0 to 19): an
  // edge that yields the CPU to the actors it serves (the master's does, so
  // operators' reads cannot slow scheduling on a busy machine).
  int io_thread_nice = 0;
  // Set: HTTPS only (see the top of this file); null: plain HTTP.
  std::shared_ptr<const TlsContext> tls;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;
  std::string target;                             // as sent: path and query, still encoded
  std::string path;                               // decoded, without the query
  std::multimap<std::string, std::string> query;  // decoded
  std::map<std::string, std::string> headers;     // names lower-cased; repeats joined by ", "
  std::string body;
  std::string peer;  // "ip:port"
  // Who the connection's client certificate names (TLS only); null when the
  // client presented none.
  std::shared_ptr<const PeerIdentity> peer_identity;

  // The first value of key in the query, else fallback.
  std::string query_value(const std::string& key, const std::string& fallback = "") const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers; framing ones (Content-Length, ...) are the server's
  // When set, the body instead of `body`: written from this buffer without a
  // copy, so one large rendering (the master's GET_STATE) can answer many
  // requests at once. It must not change while any response holds it.
  std::shared_ptr<const std::string> shared_body;
  size_t body_size() const { return shared_body ? shared_body->size() : body.size(); }
};

namespace detail {
class Connection;
class StreamState;
struct ResponderState;
}  // namespace detail

// A chunked streaming response (event streams, log follow). Thread-safe.
// Dropping the last shared_ptr to a Stream that is still open closes it.
class Stream {
 public:
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Queues chunk for the I/O thread. False when the stream is closed, or when
  // bytes are still unsent and this chunk would take them past
  // stream_buffer_bytes_max: then the connection is closed and counted as
  // evicted. A chunk written when nothing is unsent is always taken, however
  // large (one snapshot record). An empty chunk sends nothing.
  bool write(std::string chunk);
  // Ends the chunked body after what was queued; the connection then serves
  // its next request (keep-alive) or closes.
  void close();
  // True once close() ran, the stream was evicted, or the connection ended.
  bool closed() const;
  // fn runs once, on the I/O thread, when the client goes away, the stream is
  // evicted, its end was sent, or the server stops; at once (on this thread)
  // if that already happened. fn must not block or call Server::stop().
  void on_close(std::function<void()> fn);

 private:
  friend class Responder;
  explicit Stream(std::shared_ptr<detail::StreamState> state);
  std::shared_ptr<detail::StreamState> state_;
};

// The answer to one request. A copyable, thread-safe handle: the first of
// respond() / open_stream() answers, later calls are ignored. If the last copy
// is destroyed unanswered, the server answers 500 "no response", so a handler
// that forgets cannot leak the connection. Once the connection has died, or
// the server stopped, answering is a silent no-op.
class Responder {
 public:
  Responder() = default;  // answers nothing; answered() is true
  explicit Responder(std::shared_ptr<detail::ResponderState> state);

  void respond(Response r) const;
  // Starts a chunked response (Transfer-Encoding: chunked). Answering twice,
  // or after the connection died, gives a stream that is already closed.
  std::shared_ptr<Stream> open_stream(int status, std::string content_type,
                                      Headers headers = {}) const;
  bool answered() const;

 private:
  std::shared_ptr<detail::ResponderState> state_;
};

// Runs on the I/O thread; must not block. Answer through the Responder.
using Handler = std::function<void(Request, Responder)>;

struct ServerCounters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_refused{0};  // beyond connections_max
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> requests{0};      // handed to the handler
  std::atomic<uint64_t> bad_requests{0};  // 400: did not parse
  std::atomic<uint64_t> too_large{0};     // 413 and 431
  std::atomic<uint64_t> timed_out{0};     // request or response write past request_timeout_ms
  std::atomic<uint64_t> idle_closed{0};   // keep-alive past idle_timeout_ms
  std::atomic<uint64_t> streams_open{0};
  std::atomic<uint64_t> streams_evicted{0};       // subscribers past stream_buffer_bytes_max
  std::atomic<uint64_t> tls_handshake_failed{0};  // no handshake in time, refused, or plain HTTP
};

// The counters as Prometheus samples (tessera_http_*), for an edge's
// /metrics; bad_requests_more adds the edge's own 400s to the server's.
std::vector<std::pair<std::string, double>> counter_metrics(const ServerCounters& c,
                                                            uint64_t bad_requests_more = 0);

class Server {
 public:
  // Binds host:port and starts the I/O thread. Fails (as a value) with
  // "http: cannot listen on HOST:PORT: reason".
  static expected<std::unique_ptr<Server>> start(ServerConfig config, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Idempotent. Closes the listener and every connection (open streams see
  // on_close), then joins the I/O thread; pending Responders become no-ops.
  // Not from the I/O thread (a handler or an on_close callback).
  void stop();

  uint16_t port() const;
  std::string address() const;  // "host:port" bound
  bool https() const;           // ServerConfig::tls was set
  // "https://host:port" or "http://host:port".
  std::string url() const;
  const ServerCounters& counters() const;

 private:
  struct Impl;
  Server();
  std::unique_ptr<Impl> impl_;
};

// A response of body, content type application/json.
Response json_response(int status, std::string body);
// {"error": message} (built with nlohmann::json, so message is escaped).
Response error_response(int status, const std::string& message);

}  // namespace tessera::http
