// The HTTP edge's request path, as far as it goes without a socket: bytes
// through Beast's parser with the server's limits, into the Request a
// handler sees (percent-decoding, query parsing), then into the JSON APIs'
// readers the path leads to - the apps framework's app definitions
// (/v2/apps) and the jobs framework's job and schedule definitions
// (/v1/jobs). A definition that parses prints to JSON that parses to the
// same definition. The operator API's calls are fuzzed with a master behind
// them (operator_api.fuzz.cpp).
//
// Input: the bytes a client sends on a connection (several requests may
// follow each other, as pipelined requests do).

#include "services/apps/app_spec.hpp"
#include "services/http/message.hpp"
#include "services/jobs/job_spec.hpp"

#include <boost/asio/buffer.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>

namespace {

namespace bhttp = boost::beast::http;
using namespace tessera;

void check(bool ok) {
  if (!ok)
    std::abort();
}

void app_definition(const nlohmann::json& j) {
  auto parsed = apps::parse_app(j);
  if (!parsed.ok())
    return;
  auto printed = apps::to_json(parsed.app);
  auto again = apps::parse_app(printed);
  check(again.ok() && apps::to_json(again.app) == printed);
}

void job_definition(const nlohmann::json& j) {
  auto parsed = jobs::parse_job(j);
  if (parsed.ok()) {
    auto printed = jobs::to_json(parsed.job);
    auto again = jobs::parse_job(printed);
    check(again.ok() && jobs::to_json(again.job) == printed);
  }
  (void)jobs::parse_schedule(j);
}

void route(const http::Request& request) {
  auto j = nlohmann::json::parse(request.body, nullptr, false);
  if (j.is_discarded())
    return;
  if (request.path.rfind("/v2/apps", 0) == 0)
    app_definition(j);
  else if (request.path.rfind("/v1/jobs", 0) == 0)
    job_definition(j);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::ServerConfig config;
  config.request_body_bytes_max = 64 * 1024;
  boost::asio::const_buffer rest(data, size);
  for (int requests = 0; requests < 8 && rest.size() > 0; ++requests) {
    http::detail::RequestParser parser;
    http::detail::limit_parser(parser, config);
    boost::beast::error_code ec;
    while (rest.size() > 0 && !parser.is_done()) {
      auto used = parser.put(rest, ec);
      rest += used;
      if (ec == bhttp::error::need_more || (!ec && used == 0))
        break;
      if (ec)
        return 0;  // answered 400, 413 or 431 by the server
    }
    if (!parser.is_done())
      return 0;  // the server would wait for more
    auto request = http::detail::make_request(parser.release(), "127.0.0.1:1");
    route(request);
  }
  return 0;
}
