#include "services/http/client.hpp"

#include "services/http/tls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cctype>
#include <optional>

namespace tessera::http {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
constexpr auto as_result = net::as_tuple(net::use_awaitable);
constexpr size_t stream_piece_bytes = 64 * 1024;
constexpr size_t read_buffer_bytes = 64 * 1024;

struct HostPort {
  std::string host;
  std::string port;
};

// "host:port" or "[v6 address]:port".
std::optional<HostPort> split_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return HostPort{host, text.substr(colon + 1)};
}

bhttp::request<bhttp::string_body> make_request(const std::string& host_port,
                                                const std::string& method,
                                                const std::string& target, const std::string& body,
                                                const std::string& content_type,
                                                const Headers& headers) {
  bhttp::request<bhttp::string_body> req;
  auto verb = bhttp::string_to_verb(method);
  if (verb == bhttp::verb::unknown)
    req.method_string(method);
  else
    req.method(verb);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, host_port);
  req.set(bhttp::field::user_agent, "tessera");
  req.keep_alive(false);  // one request per connection
  for (const auto& [name, value] : headers)
    req.set(name, value);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, content_type);
    req.body() = body;
  }
  req.prepare_payload();
  return req;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::map<std::string, std::string> header_map(const bhttp::fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& field : fields) {
    auto name = lower({field.name_string().data(), field.name_string().size()});
    std::string value(field.value().data(), field.value().size());
    auto [it, inserted] = out.emplace(name, value);
    if (!inserted)
      it->second.append(", ").append(value);
  }
  return out;
}

// One call's connection (TCP, and TLS over it when asked) and deadline, and
// the translation of its failures into Tessera errors (once, here at the
// edge).
class Call {
 public:
  Call(net::io_context& ioc, std::string host_port, std::chrono::milliseconds timeout,
       const std::shared_ptr<const TlsContext>& tls)
      : stream(ioc),
        tls_context_(tls ? detail::asio_context(*tls) : nullptr),
        host_port_(std::move(host_port)),
        timeout_(timeout) {
    if (timeout.count() > 0)
      deadline_ = steady::now() + timeout;
    // Beast reads at most what the buffer has room for (512 bytes when it
    // is new): room for 64 KiB makes a large body a few hundred reads, not
    // a hundred thousand.
    buffer.reserve(read_buffer_bytes);
  }

  // Before each operation: the whole exchange shares one deadline.
  void arm() {
    if (deadline_)
      stream.expires_at(*deadline_);
    else
      stream.expires_never();
  }

  net::awaitable<caf::error> connect() {
    auto where = split_host_port(host_port_);
    if (!where)
      co_return make_error(Errc::invalid_argument, "not a host:port: '" + host_port_ + "'");
    tcp::resolver resolver(stream.get_executor());
    auto [rec, endpoints] = co_await resolver.async_resolve(where->host, where->port, as_result);
    if (rec)
      co_return unreachable(rec);
    arm();
    auto [cec, endpoint] = co_await stream.async_connect(endpoints, as_result);
    if (cec)
      co_return unreachable(cec);
    if (tls_context_)
      co_return co_await handshake(where->host);
    co_return caf::error{};
  }

  // The server must prove it is the host called (see client.hpp).
  net::awaitable<caf::error> handshake(const std::string& host) {
    tls.emplace(stream, *tls_context_);
    auto* ssl = tls->native_handle();
    boost::system::error_code parse_ec;
    net::ip::make_address(host, parse_ec);
    if (parse_ec)  // a DNS name: tell the server which (SNI)
      SSL_set_tlsext_host_name(ssl, host.c_str());
    arm();
    auto [ec] = co_await tls->async_handshake(net::ssl::stream_base::client, as_result);
    auto refused = [&](const std::string& why) {
      return make_error(Errc::connect_failed,
                        "TLS handshake with " + host_port_ + " failed: " + why);
    };
    if (ec == beast::error::timeout)
      co_return refused("no handshake within " + std::to_string(timeout_.count()) + " ms");
    if (ec)
      co_return refused(detail::tls_failure(ec, ssl));
    auto identity = detail::peer_identity_of(ssl);
    if (!identity || !*identity)
      co_return refused("the server's certificate names no Tessera identity");
    if (!(*identity)->serves_host(host))
      co_return refused("the certificate of " + (*identity)->to_string() +
                        " does not name the host called, " + host);
    co_return caf::error{};
  }

  caf::error failure(beast::error_code ec, const char* doing) {
    if (ec.category() == net::error::get_ssl_category() && ec != net::ssl::error::stream_truncated)
      return make_error(Errc::connect_failed,
                        "TLS with " + host_port_ + " failed " + doing + ": " +
                            detail::tls_failure(ec, tls ? tls->native_handle() : nullptr));
    if (ec == beast::error::timeout)
      return make_error(Errc::timeout, host_port_ + ": no answer within " +
                                           std::to_string(timeout_.count()) + " ms (" + doing +
                                           ")");
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
      return make_error(Errc::malformed, host_port_ + ": " + doing + ": " + ec.message());
    return make_error(Errc::peer_lost,
                      host_port_ + ": connection lost " + doing + ": " + ec.message());
  }

  bool timed_out(beast::error_code ec) const { return ec == beast::error::timeout; }

  beast::tcp_stream stream;
  std::optional<net::ssl::stream<beast::tcp_stream&>> tls;  // over stream, once connected
  beast::flat_buffer buffer;

 private:
  caf::error unreachable(beast::error_code ec) const {
    auto reason = ec == beast::error::timeout ? std::string("connection timed out") : ec.message();
    return make_error(Errc::connect_failed, "cannot reach " + host_port_ + ": " + reason);
  }

  std::shared_ptr<net::ssl::context> tls_context_;  // null: plain HTTP
  std::string host_port_;
  std::chrono::milliseconds timeout_;
  std::optional<steady::time_point> deadline_;
};

// fn(stream): co_awaits fn on the call's TLS stream when it has one, else on
// its TCP stream.
template <class Fn>
net::awaitable<void> on_stream(Call& call, Fn fn) {
  if (call.tls)
    co_await fn(*call.tls);
  else
    co_await fn(call.stream);
}

template <class Stream>
net::awaitable<void> exchange_on(Call& call, Stream& stream,
                                 bhttp::request<bhttp::string_body>& req,
                                 expected<ClientResponse>& out) {
  call.arm();
  auto [wec, written] = co_await bhttp::async_write(stream, req, as_result);
  if (wec) {
    out = call.failure(wec, "sending the request");
    co_return;
  }
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(client_body_bytes_max);
  call.arm();
  auto [rec, read] = co_await bhttp::async_read(stream, call.buffer, parser, as_result);
  if (rec) {
    out = call.failure(rec, "reading the response");
    co_return;
  }
  auto response = parser.release();
  out = ClientResponse{static_cast<int>(response.result_int()), std::move(response.body()),
                       header_map(response.base())};
}

net::awaitable<void> exchange(Call& call, bhttp::request<bhttp::string_body> req,
                              expected<ClientResponse>& out) {
  if (auto err = co_await call.connect()) {
    out = std::move(err);
    co_return;
  }
  co_await on_stream(call, [&](auto& stream) { return exchange_on(call, stream, req, out); });
}

// Reads the body piece by piece, as it arrives. Returns false when the
// connection failed before the body ended (out holds the error).
template <class Stream>
net::awaitable<void> read_pieces(Call& call, Stream& stream,
                                 bhttp::response_parser<bhttp::buffer_body>& parser,
                                 const std::function<bool(std::string_view)>& on_chunk,
                                 expected<int>& out) {
  std::string piece(stream_piece_bytes, '\0');
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    call.arm();
    auto [ec, n] = co_await bhttp::async_read_some(stream, call.buffer, parser, as_result);
    size_t got = piece.size() - parser.get().body().size;
    if (got > 0 && !on_chunk(std::string_view(piece.data(), got)))
      co_return;
    if (ec == bhttp::error::need_buffer)
      continue;
    if (call.timed_out(ec))
      co_return;  // the deadline ends a stream normally
    if (ec) {
      out = call.failure(ec, "reading the stream");
      co_return;
    }
  }
}

template <class Stream>
net::awaitable<void> stream_exchange_on(Call& call, Stream& stream,
                                        bhttp::request<bhttp::string_body>& req,
                                        const std::function<bool(std::string_view)>& on_chunk,
                                        expected<int>& out) {
  call.arm();
  auto [wec, written] = co_await bhttp::async_write(stream, req, as_result);
  if (wec) {
    out = call.failure(wec, "sending the request");
    co_return;
  }
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);  // a stream has no end we could bound
  call.arm();
  auto [hec, head] = co_await bhttp::async_read_header(stream, call.buffer, parser, as_result);
  if (hec) {
    out = call.failure(hec, "reading the response head");
    co_return;
  }
  out = static_cast<int>(parser.get().result_int());
  co_await read_pieces(call, stream, parser, on_chunk, out);
}

net::awaitable<void> stream_exchange(Call& call, bhttp::request<bhttp::string_body> req,
                                     const std::function<bool(std::string_view)>& on_chunk,
                                     expected<int>& out) {
  if (auto err = co_await call.connect()) {
    out = std::move(err);
    co_return;
  }
  co_await on_stream(
      call, [&](auto& stream) { return stream_exchange_on(call, stream, req, on_chunk, out); });
}

// Runs one call's coroutine to completion on a private io_context, on this
// thread. The Call is destroyed before the io_context its socket belongs to.
template <class Body>
void run_call(const std::string& host_port, std::chrono::milliseconds timeout,
              const std::shared_ptr<const TlsContext>& tls, Body body) {
  net::io_context ioc{1};
  Call call(ioc, host_port, timeout, tls);
  net::co_spawn(ioc, body(call), net::detached);
  ioc.run();
}

}  // namespace

expected<ClientResponse> request(const std::string& host_port, const std::string& method,
                                 const std::string& target, const std::string& body,
                                 const std::string& content_type, std::chrono::milliseconds timeout,
                                 const Headers& headers,
                                 const std::shared_ptr<const TlsContext>& tls) {
  expected<ClientResponse> out = make_error(Errc::stopped, "http: request did not run");
  run_call(host_port, timeout, tls, [&](Call& call) {
    return exchange(call, make_request(host_port, method, target, body, content_type, headers),
                    out);
  });
  return out;
}

expected<int> stream(const std::string& host_port, const std::string& method,
                     const std::string& target, const std::string& body,
                     const std::function<bool(std::string_view)>& on_chunk,
                     std::chrono::milliseconds timeout, const Headers& headers,
                     const std::shared_ptr<const TlsContext>& tls) {
  expected<int> out = make_error(Errc::stopped, "http: stream did not run");
  run_call(host_port, timeout, tls, [&](Call& call) {
    return stream_exchange(
        call, make_request(host_port, method, target, body, "application/json", headers), on_chunk,
        out);
  });
  return out;
}

}  // namespace tessera::http
