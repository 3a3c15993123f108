#pragma once
// Internal to the HTTP server: one accepted connection's state machine, and
// the objects the public handles (Responder, Stream) share with it.
//
// Ownership. A Connection is owned by the operations pending on it (each
// holds a shared_ptr); the server's table and every handle hold it weakly.
// When its socket closes, its operations complete and it is freed, whatever
// the application still holds.
//
// Threading. Connection and Core (but its counters) are touched only on the
// I/O thread. StreamState and ResponderState are shared with any thread; they
// reach the I/O thread only through the Gate.

#include "services/http/message.hpp"
#include "services/http/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessera::http::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

// The one way other threads reach the I/O thread. Server::stop() closes it
// before the io_context goes away; a post after that is dropped, so handles
// that outlive the server become no-ops instead of touching freed memory.
class Gate {
 public:
  explicit Gate(net::io_context& ioc) : ioc_(&ioc) {}

  template <class Fn>
  bool post(Fn&& fn) {
    std::lock_guard lock(mu_);
    if (ioc_ == nullptr)
      return false;
    net::post(*ioc_, std::forward<Fn>(fn));
    return true;
  }

  void close() {
    std::lock_guard lock(mu_);
    ioc_ = nullptr;
  }

 private:
  std::mutex mu_;
  net::io_context* ioc_;
};

// What the connections of one server share. Outlives the io_context's
// handlers (they hold it), so a connection freed at shutdown can still count.
struct Core {
  ServerConfig config;
  Handler handler;
  ServerCounters counters;
  std::shared_ptr<net::ssl::context> tls;  // null: plain HTTP
  std::shared_ptr<Gate> gate;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> live;  // for stop()
  std::atomic<bool> handler_threw{false};                           // logged once
};

// Adds one to a counter and returns the new value: 1 means "log it".
inline uint64_t bump(std::atomic<uint64_t>& counter) {
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// The shared half of a Stream. Invariants: once closed_, nothing more is
// queued; finished_ (on_close callbacks ran) implies closed_; unsent_bytes_
// counts bytes accepted by write() and not yet taken by the socket.
class StreamState : public std::enable_shared_from_this<StreamState> {
 public:
  StreamState(std::weak_ptr<Connection> connection, std::shared_ptr<Gate> gate,
              size_t unsent_bytes_max);

  // Any thread.
  bool write(std::string chunk);
  void close();
  bool closed() const;
  void on_close(std::function<void()> fn);

  // I/O thread: moves the queued chunks into out; true when close() asked to
  // end the body after them.
  bool drain(std::vector<std::string>& out);
  void sent(size_t bytes);
  // The stream is over: runs the on_close callbacks once. On the I/O thread,
  // or on the answering thread for a stream that never reached a connection.
  void finish();

 private:
  void post_pump();
  void post_evict();

  std::weak_ptr<Connection> connection_;
  std::shared_ptr<Gate> gate_;
  const size_t unsent_bytes_max_;

  mutable std::mutex mu_;
  std::vector<std::string> queue_;
  size_t unsent_bytes_ = 0;
  bool closed_ = false;
  bool end_requested_ = false;
  bool pump_pending_ = false;  // a pump is posted and has not drained yet
  bool finished_ = false;
  std::vector<std::function<void()>> on_close_;
};

// The shared half of a Responder: one request on one connection.
struct ResponderState {
  std::weak_ptr<Connection> connection;
  std::shared_ptr<Gate> gate;
  uint64_t request_seq = 0;
  size_t stream_buffer_bytes_max = 0;
  std::atomic<bool> answered{false};
  // Set (instead of a connection and gate): answers go to this function,
  // on the thread that answers; a stream's chunks are dropped. For callers
  // in-process that have no socket (the operator API's fuzz target).
  std::function<void(Response)> sink;

  // The last copy went away unanswered: answer 500 "no response".
  ~ResponderState();
};

// A Responder whose answer (a stream's status and headers) goes to sink.
Responder sink_responder(std::function<void(Response)> sink);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Core> core, tcp::socket socket);
  void start();

  // I/O thread, posted by the handles. seq names the request they answer.
  void respond(uint64_t seq, Response response);
  void start_stream(uint64_t seq, std::shared_ptr<StreamState> stream, int status,
                    std::string content_type, Headers headers);
  void pump_stream(const StreamState* stream);
  void evict_stream(const StreamState* stream);
  // Closes at once (aborts pending operations, ends the stream): errors, stop().
  void close();

 private:
  // idle: between requests (idle timeout); reading: a request is arriving
  // (request timeout); busy: the handler has it; writing: its response goes
  // out; streaming: a chunked response is open; lingering: the response went
  // out, the socket is half-closed, what the peer still sends is discarded.
  enum class Phase { idle, reading, busy, writing, streaming, lingering, closed };
  enum class Parse { done, need_more, failed };

  void handshake();
  void on_handshake(beast::error_code ec);
  // fn(stream): the TLS stream when the connection has one, else the TCP one.
  template <class Fn>
  void with_stream(Fn&& fn) {
    if (tls_)
      fn(*tls_);
    else
      fn(stream_);
  }

  void read_request();
  void read_more();
  void on_read(beast::error_code ec, size_t bytes);
  Parse parse_buffered();
  void maybe_continue();
  void reject(beast::error_code ec);
  void dispatch();
  void call_handler(Request request);

  void watch_peer();
  void on_peer_readable(beast::error_code ec);
  void peer_readable();
  bool take_pipelined();

  void send_response(const Response& response);
  void flush();
  void on_written(beast::error_code ec);
  void finish_response();
  void end_stream();
  void expire_in(std::chrono::milliseconds timeout);
  void lingering_close();
  void linger_read();

  std::shared_ptr<Core> core_;
  beast::tcp_stream stream_;  // the TCP layer: its timeouts bound TLS operations too
  // With TLS: over stream_. Reset when the handshake found plain HTTP, whose
  // 400 then goes out in plain text.
  std::optional<net::ssl::stream<beast::tcp_stream&>> tls_;
  std::shared_ptr<const PeerIdentity> peer_identity_;  // the client certificate's, if any
  std::string peer_;
  Phase phase_ = Phase::idle;

  beast::flat_buffer buffer_;  // received, not yet parsed (pipelined bytes too)
  std::optional<beast::http::request_parser<beast::http::string_body>> parser_;
  std::chrono::steady_clock::time_point request_deadline_;
  bool reading_ = false;   // an async_read_some on stream_ is pending
  bool watching_ = false;  // a readiness wait on the socket is pending (busy, streaming)
  // TLS: the peer became readable while a write was in flight; its bytes are
  // read once the write is done (an SSL read may write, which must not
  // interleave with the write in flight).
  bool peer_readable_later_ = false;
  bool continue_sent_ = false;

  uint64_t seq_ = 0;  // of the request being answered
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_only_ = false;

  std::string out_;        // queued, not yet handed to the socket
  std::string in_flight_;  // the one write in progress
  // A response's shared body: written right after out_ (its head), without
  // a copy. Only a plain response sets it, and nothing is queued behind it
  // until it is written.
  std::shared_ptr<const std::string> out_shared_, in_flight_shared_;
  bool writing_ = false;
  size_t out_stream_bytes_ = 0;        // stream payload bytes in out_ / in_flight_, for
  size_t in_flight_stream_bytes_ = 0;  // the stream's unsent-byte count

  std::shared_ptr<StreamState> stream_state_;
  std::vector<std::string> chunks_;  // drained from stream_state_, reused
  bool stream_end_queued_ = false;
  bool chunked_ = true;  // false for HTTP/1.0 peers: the body ends with the connection

  std::chrono::steady_clock::time_point linger_deadline_;
  size_t linger_bytes_ = 0;
};

}  // namespace tessera::http::detail
