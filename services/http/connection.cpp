#include "services/http/connection.hpp"

#include "services/http/tls.hpp"

#include "runtime/log.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <array>
#include <cassert>
#include <limits>
#include <utility>

namespace tessera::http::detail {

namespace bhttp = beast::http;
using steady = std::chrono::steady_clock;

namespace {

// The first read of a request is small, so an idle keep-alive connection
// holds little memory; once a request is arriving, reads are larger.
constexpr size_t idle_read_bytes = 1024;
constexpr size_t request_read_bytes = 16 * 1024;
constexpr size_t pipelined_read_bytes = 4 * 1024;
// Output buffers beyond this are freed after use instead of kept.
constexpr size_t out_capacity_kept = 16 * 1024;
// After a final response the peer gets this long to stop sending.
constexpr std::chrono::milliseconds linger_ms{2'000};
constexpr size_t linger_bytes_max = size_t{4} << 20;

std::string endpoint_text(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  auto host = address.to_string();
  if (address.is_v6())
    host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

// Zero (or less) means no limit, as in the runtime's transport limits.
bool unlimited(std::chrono::milliseconds timeout) {
  return timeout.count() <= 0;
}

void release_if_large(std::string& buffer) {
  if (buffer.capacity() > out_capacity_kept)
    std::string().swap(buffer);
  else
    buffer.clear();
}

}  // namespace

Connection::Connection(std::shared_ptr<Core> core, tcp::socket socket)
    : core_(std::move(core)), stream_(std::move(socket)) {
}

void Connection::start() {
  beast::error_code ec;
  auto& socket = stream_.socket();
  auto remote = socket.remote_endpoint(ec);
  peer_ = ec ? std::string("unknown") : endpoint_text(remote);
  // Event chunks are small and latency matters more than packet count.
  socket.set_option(tcp::no_delay(true), ec);
  // An idle subscriber whose machine vanished sends no FIN; the kernel's
  // probes eventually tell us.
  socket.set_option(net::socket_base::keep_alive(true), ec);
  // take_pipelined() reads what a readiness wait announced, never blocking.
  socket.non_blocking(true, ec);
  core_->live.emplace(this, weak_from_this());
  core_->counters.connections_open.fetch_add(1, std::memory_order_relaxed);
  if (core_->tls)
    return handshake();
  read_request();
}

// ---- TLS ----------------------------------------------------------------------

void Connection::handshake() {
  tls_.emplace(stream_, *core_->tls);
  // Asks for a client certificate without demanding one (the context would).
  tls_->set_verify_mode(net::ssl::verify_peer);
  expire_in(core_->config.request_timeout_ms);
  reading_ = true;
  tls_->async_handshake(
      net::ssl::stream_base::server,
      [self = shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
}

void Connection::on_handshake(beast::error_code ec) {
  reading_ = false;
  if (phase_ == Phase::closed)
    return;
  std::string why;
  if (!ec) {
    auto identity = peer_identity_of(tls_->native_handle());
    if (identity) {
      peer_identity_ = std::move(*identity);
      return read_request();
    }
    why = "its certificate is refused: " + what(identity.error());
  } else if (ec == beast::error::timeout) {
    why = "no handshake within " + std::to_string(core_->config.request_timeout_ms.count()) + " ms";
  } else {
    why = tls_failure(ec, tls_->native_handle());
  }
  if (bump(core_->counters.tls_handshake_failed) == 1)
    log().warn("http: TLS handshake with {} failed: {} (logged once; see tls_handshake_failed)",
               peer_, why);
  if (!plain_http_sent(ec))
    return close();
  tls_.reset();
  keep_alive_ = false;
  send_response(error_response(
      400,
      "this port speaks HTTPS only: the request was sent in plain HTTP (use https://; "
      "`tessera` needs --tls-ca)"));
}

// ---- reading a request ------------------------------------------------------

void Connection::read_request() {
  if (buffer_.size() > 0) {
    if (phase_ == Phase::idle) {
      phase_ = Phase::reading;
      request_deadline_ = steady::now() + core_->config.request_timeout_ms;
    }
    switch (parse_buffered()) {
      case Parse::done:
        return dispatch();
      case Parse::failed:
        return;
      case Parse::need_more:
        break;
    }
  }
  read_more();
}

void Connection::read_more() {
  assert(!reading_ && !watching_);  // one read at a time: buffer_ is its target
  const auto& config = core_->config;
  if (phase_ == Phase::idle)
    expire_in(config.idle_timeout_ms);
  else if (unlimited(config.request_timeout_ms))
    stream_.expires_never();
  else
    stream_.expires_at(request_deadline_);
  reading_ = true;
  auto space = buffer_.prepare(phase_ == Phase::idle ? idle_read_bytes : request_read_bytes);
  with_stream([&](auto& stream) {
    stream.async_read_some(space, [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->on_read(ec, n);
    });
  });
}

void Connection::on_read(beast::error_code ec, size_t bytes) {
  reading_ = false;
  if (phase_ == Phase::closed)
    return;
  if (!ec) {
    buffer_.commit(bytes);
    return read_request();
  }
  if (ec == beast::error::timeout) {
    auto& c = core_->counters;
    if (phase_ == Phase::idle)
      bump(c.idle_closed);
    else if (bump(c.timed_out) == 1)
      log().warn("http: {} did not send a whole request within {} ms; closed (logged once)", peer_,
                 core_->config.request_timeout_ms.count());
  }
  close();  // timeouts, the peer closing, resets: nothing to answer
}

Connection::Parse Connection::parse_buffered() {
  if (!parser_) {
    parser_.emplace();
    limit_parser(*parser_, core_->config);
    continue_sent_ = false;
  }
  while (buffer_.size() > 0 && !parser_->is_done()) {
    beast::error_code ec;
    auto used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == bhttp::error::need_more || (!ec && used == 0))
      break;
    if (ec) {
      reject(ec);
      return Parse::failed;
    }
  }
  if (parser_->is_done())
    return Parse::done;
  maybe_continue();
  return Parse::need_more;
}

// A client that sent "Expect: 100-continue" waits for a go-ahead before its body.
void Connection::maybe_continue() {
  if (continue_sent_ || !parser_->is_header_done())
    return;
  auto expect = parser_->get()[bhttp::field::expect];
  if (!beast::iequals(expect, "100-continue"))
    return;
  continue_sent_ = true;
  out_ += "HTTP/1.1 100 Continue\r\n\r\n";
  flush();
}

void Connection::reject(beast::error_code ec) {
  auto& c = core_->counters;
  int status = 400;
  std::string message = "bad request: " + ec.message();
  if (ec == bhttp::error::header_limit) {
    status = 431;
    message = "request header fields too large";
  } else if (ec == bhttp::error::body_limit) {
    status = 413;
    message = "request body too large";
  }
  if (status == 400 && bump(c.bad_requests) == 1)
    log().warn("http: a request from {} does not parse ({}); answered 400 (logged once)", peer_,
               ec.message());
  if (status != 400 && bump(c.too_large) == 1)
    log().warn(
        "http: a request from {} is too large ({}; at most {} header bytes, {} body bytes); "
        "answered {} (logged once)",
        peer_, ec.message(), core_->config.header_bytes_max, core_->config.request_body_bytes_max,
        status);
  parser_.reset();
  keep_alive_ = false;
  head_only_ = false;
  send_response(error_response(status, message));
}

void Connection::dispatch() {
  auto message = parser_->release();
  parser_.reset();
  keep_alive_ = message.keep_alive();
  http10_ = message.version() < 11;
  chunked_ = !http10_;
  head_only_ = message.method() == bhttp::verb::head;
  phase_ = Phase::busy;
  ++seq_;
  bump(core_->counters.requests);
  if (buffer_.size() == 0)
    buffer_.shrink_to_fit();  // an idle subscriber should hold no read buffer
  watch_peer();
  auto request = make_request(std::move(message), peer_);
  request.peer_identity = peer_identity_;
  call_handler(std::move(request));
}

void Connection::call_handler(Request request) {
  auto state = std::make_shared<ResponderState>();
  state->connection = weak_from_this();
  state->gate = core_->gate;
  state->request_seq = seq_;
  state->stream_buffer_bytes_max = core_->config.stream_buffer_bytes_max;
  try {
    core_->handler(std::move(request), Responder(std::move(state)));
  } catch (const std::exception& e) {
    // Its Responder is gone by now: unanswered, the client gets 500 "no response".
    if (!core_->handler_threw.exchange(true))
      log().error("http: a handler threw: {} (logged once)", e.what());
  } catch (...) {
    if (!core_->handler_threw.exchange(true))
      log().error("http: a handler threw a non-exception (logged once)");
  }
}

// ---- watching the peer while a request is answered ---------------------------

// A zero-byte readiness wait: tells a subscriber that went away (its streams
// must end) at the cost of no buffer, and keeps pipelined requests for later.
// Bytes beyond header_bytes_max are left in the kernel until this request is
// answered (and a peer that floods has its disconnect noticed on a write).
void Connection::watch_peer() {
  assert(!reading_);
  if (watching_ || phase_ == Phase::closed || buffer_.size() >= core_->config.header_bytes_max)
    return;
  watching_ = true;
  stream_.socket().async_wait(
      tcp::socket::wait_read,
      [self = shared_from_this()](beast::error_code ec) { self->on_peer_readable(ec); });
}

void Connection::on_peer_readable(beast::error_code ec) {
  watching_ = false;
  if (phase_ == Phase::closed)
    return;
  if (ec == net::error::operation_aborted) {
    // Cancelled by finish_response / lingering_close to change how we read,
    // or the socket was closed under a timed-out write (its handler counts it).
    if (phase_ == Phase::idle)
      return read_request();
    if (phase_ == Phase::lingering)
      return linger_read();
    return;
  }
  if (ec)
    return close();
  if (tls_ && writing_) {
    peer_readable_later_ = true;  // on_written reads
    return;
  }
  peer_readable();
}

// Treats a half-close like a disconnect: a subscriber that shuts its side
// down is gone, and few HTTP clients half-close while awaiting an answer.
void Connection::peer_readable() {
  if (!take_pipelined())
    return close();
  if (phase_ == Phase::lingering)
    return linger_read();
  watch_peer();
}

bool Connection::take_pipelined() {
  beast::error_code ec;
  size_t n = 0;
  with_stream(
      [&](auto& stream) { n = stream.read_some(buffer_.prepare(pipelined_read_bytes), ec); });
  if (ec == net::error::would_block || ec == net::error::try_again)
    return true;
  if (ec)
    return false;  // eof or a reset: the peer has gone
  buffer_.commit(n);
  return true;
}

// ---- answering ---------------------------------------------------------------

void Connection::respond(uint64_t seq, Response response) {
  if (phase_ != Phase::busy || seq != seq_)
    return;
  send_response(response);
}

void Connection::send_response(const Response& response) {
  phase_ = Phase::writing;
  append_head(out_, Head{.status = response.status,
                         .content_type = response.content_type,
                         .headers = &response.headers,
                         .framing = Framing::length,
                         .content_length = response.body_size(),
                         .keep_alive = keep_alive_,
                         .http10 = http10_});
  if (!head_only_) {
    if (response.shared_body && !out_shared_)
      out_shared_ = response.shared_body;  // written after the head, uncopied
    else if (response.shared_body)
      out_ += *response.shared_body;
    else
      out_ += response.body;
  }
  flush();
}

// One write in flight; what is queued meanwhile goes out with the next one.
void Connection::flush() {
  if (writing_ || (out_.empty() && !out_shared_) || phase_ == Phase::closed)
    return;
  in_flight_.swap(out_);
  out_.clear();
  in_flight_stream_bytes_ = out_stream_bytes_;
  out_stream_bytes_ = 0;
  // An open stream may wait on its subscriber for as long as its buffer
  // allows (eviction bounds it); everything else must be taken in time.
  if (phase_ == Phase::streaming && !stream_end_queued_)
    stream_.expires_never();
  else
    expire_in(core_->config.request_timeout_ms);
  writing_ = true;
  in_flight_shared_ = std::move(out_shared_);
  out_shared_.reset();
  auto done = [self = shared_from_this()](beast::error_code ec, size_t) { self->on_written(ec); };
  with_stream([&](auto& stream) {
    if (in_flight_shared_)
      net::async_write(stream,
                       std::array<net::const_buffer, 2>{net::buffer(in_flight_),
                                                        net::buffer(*in_flight_shared_)},
                       std::move(done));
    else
      net::async_write(stream, net::buffer(in_flight_), std::move(done));
  });
}

void Connection::on_written(beast::error_code ec) {
  writing_ = false;
  if (phase_ == Phase::closed)
    return;
  if (ec) {
    if (ec == beast::error::timeout && bump(core_->counters.timed_out) == 1)
      log().warn("http: {} did not take a response within {} ms; closed (logged once)", peer_,
                 core_->config.request_timeout_ms.count());
    return close();
  }
  if (stream_state_ && in_flight_stream_bytes_ > 0)
    stream_state_->sent(in_flight_stream_bytes_);
  in_flight_stream_bytes_ = 0;
  in_flight_shared_.reset();
  release_if_large(in_flight_);
  if (std::exchange(peer_readable_later_, false)) {
    peer_readable();
    if (phase_ == Phase::closed || phase_ == Phase::lingering)
      return;
  }
  if (!out_.empty() || out_shared_)
    return flush();
  if (phase_ == Phase::writing)
    return finish_response();
  if (phase_ == Phase::streaming && stream_end_queued_) {
    end_stream();
    return finish_response();
  }
}

void Connection::finish_response() {
  if (!keep_alive_)
    return lingering_close();
  phase_ = Phase::idle;
  if (watching_) {
    // on_peer_readable resumes reading, now under the idle timeout.
    beast::error_code ec;
    stream_.socket().cancel(ec);
    return;
  }
  read_request();
}

// ---- streaming ---------------------------------------------------------------

void Connection::start_stream(uint64_t seq, std::shared_ptr<StreamState> stream, int status,
                              std::string content_type, Headers headers) {
  if (phase_ != Phase::busy || seq != seq_)
    return stream->finish();
  phase_ = Phase::streaming;
  stream_state_ = std::move(stream);
  core_->counters.streams_open.fetch_add(1, std::memory_order_relaxed);
  if (!chunked_)
    keep_alive_ = false;  // an HTTP/1.0 peer learns of the end by the close
  append_head(out_, Head{.status = status,
                         .content_type = content_type,
                         .headers = &headers,
                         .framing = chunked_ ? Framing::chunked : Framing::until_close,
                         .content_length = 0,
                         .keep_alive = keep_alive_,
                         .http10 = http10_});
  // A HEAD request gets the head only: the stream ends once it is sent.
  stream_end_queued_ = head_only_;
  flush();
  pump_stream(stream_state_.get());
}

void Connection::pump_stream(const StreamState* stream) {
  if (phase_ != Phase::streaming || stream_state_.get() != stream || stream_end_queued_)
    return;
  bool end = stream_state_->drain(chunks_);
  for (const auto& chunk : chunks_) {
    if (chunked_)
      append_chunk(out_, chunk);
    else
      out_ += chunk;
    out_stream_bytes_ += chunk.size();
  }
  chunks_.clear();
  if (end) {
    if (chunked_)
      out_ += last_chunk;
    stream_end_queued_ = true;
  }
  flush();
  if (stream_end_queued_ && !writing_) {
    // Nothing left to send (an HTTP/1.0 stream closed with nothing queued).
    end_stream();
    finish_response();
  }
}

void Connection::evict_stream(const StreamState* stream) {
  if (stream_state_ == nullptr || stream_state_.get() != stream)
    return;  // that stream already ended
  if (bump(core_->counters.streams_evicted) == 1)
    log().warn(
        "http: evicted a streaming response to {}: more than {} bytes unsent (logged once; see "
        "streams_evicted)",
        peer_, core_->config.stream_buffer_bytes_max);
  close();
}

void Connection::end_stream() {
  if (!stream_state_)
    return;
  auto stream = std::move(stream_state_);
  stream_state_.reset();
  core_->counters.streams_open.fetch_sub(1, std::memory_order_relaxed);
  stream->finish();
}

// Sets the deadline of the next operation on stream_ (of both kinds, but for
// one already pending).
void Connection::expire_in(std::chrono::milliseconds timeout) {
  if (unlimited(timeout))
    stream_.expires_never();
  else
    stream_.expires_after(timeout);
}

// ---- closing -----------------------------------------------------------------

// Half-closes, then discards what the peer still sends for a moment: closing
// a socket with unread input makes the kernel answer with a reset, which can
// destroy the response before the peer has read it (a 413 to a client still
// sending its body).
void Connection::lingering_close() {
  phase_ = Phase::lingering;
  beast::error_code ec;
  if (!tls_)
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);  // TLS: close_notify instead
  if (ec)
    return close();
  auto request_timeout = core_->config.request_timeout_ms;
  linger_deadline_ =
      steady::now() +
      (unlimited(request_timeout) ? linger_ms : std::min(linger_ms, request_timeout));
  if (watching_) {
    stream_.socket().cancel(ec);  // on_peer_readable continues with linger_read
    return;
  }
  linger_read();
}

void Connection::linger_read() {
  assert(!reading_ && !watching_);
  buffer_.consume(buffer_.size());
  if (linger_bytes_ > linger_bytes_max)
    return close();
  stream_.expires_at(linger_deadline_);
  reading_ = true;
  if (tls_) {
    // Sends close_notify and waits (within the deadline) for the peer's.
    tls_->async_shutdown([self = shared_from_this()](beast::error_code) {
      self->reading_ = false;
      self->close();
    });
    return;
  }
  stream_.async_read_some(buffer_.prepare(pipelined_read_bytes),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->reading_ = false;
                            if (self->phase_ == Phase::closed)
                              return;
                            if (ec)
                              return self->close();  // the peer's FIN, or the deadline
                            self->linger_bytes_ += n;
                            self->buffer_.commit(n);
                            self->linger_read();
                          });
}

void Connection::close() {
  if (phase_ == Phase::closed)
    return;
  phase_ = Phase::closed;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();  // pending operations complete with an error and let go of us
  parser_.reset();
  end_stream();
  core_->live.erase(this);
  core_->counters.connections_open.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace tessera::http::detail
