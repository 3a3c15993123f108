#pragma once
// Internal to the HTTP server: what crosses the wire. Requests come in through
// Beast's parser and are turned into the plain Request the handler sees;
// responses go out as bytes written here, appended to a connection's output
// buffer, so a streaming response's chunks batch into one write.

#include "services/http/server.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>
#include <string_view>

namespace tessera::http::detail {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// A fresh parser with config's header and body limits, reading bodies
// eagerly: how every connection parses its requests.
void limit_parser(RequestParser& parser, const ServerConfig& config);

// %XX sequences decoded (a malformed one is kept as it is); '+' is a space
// when plus_is_space (query strings, not paths).
std::string percent_decode(std::string_view text, bool plus_is_space);

std::multimap<std::string, std::string> parse_query(std::string_view query);

Request make_request(BeastRequest&& message, std::string peer);

// How a response's body is delimited.
enum class Framing { length, chunked, until_close };

struct Head {
  int status = 200;
  std::string_view content_type;
  const Headers* headers = nullptr;
  Framing framing = Framing::length;
  size_t content_length = 0;  // for Framing::length
  bool keep_alive = true;
  bool http10 = false;  // the request was HTTP/1.0: keep-alive must be said
};

// The status line and headers, ending with the blank line. Headers with
// characters that could split the message (CR, LF, NUL, or a name that is not
// a token) are dropped; so are the framing headers the server owns.
void append_head(std::string& out, const Head& head);

// One chunk of a chunked body: "<hex size>\r\n<data>\r\n". data is not empty.
void append_chunk(std::string& out, std::string_view data);

inline constexpr std::string_view last_chunk = "0\r\n\r\n";

}  // namespace tessera::http::detail
