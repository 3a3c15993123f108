#include "services/agent/agent_http.hpp"

#include "services/agent/base64.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <set>
#include <stdexcept>

namespace tessera {

namespace {

using json = nlohmann::json;
using Refuse = std::function<void(http::Response)>;

const std::set<std::string> book_calls = {"GET_HEALTH",    "GET_VERSION", "GET_AGENT",
                                          "GET_STATE",     "GET_TASKS",   "GET_EXECUTORS",
                                          "GET_FRAMEWORKS"};

const http::Headers cors = {{"Access-Control-Allow-Origin", "*"}};

// Text with invalid UTF-8 replaced (U+FFFD), as JSON.
std::string dump_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A string field, or a Mesos-style {"value": "..."}; empty when absent.
std::string id_field(const json& obj, const char* name) {
  if (!obj.contains(name))
    return {};
  const auto& v = obj[name];
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_object() && v.contains("value") && v["value"].is_string())
    return v["value"].get<std::string>();
  throw std::invalid_argument(std::string("'") + name + "' must be a string or {\"value\": ...}");
}

int64_t integer_field(const json& obj, const char* name, int64_t fallback, int64_t min) {
  if (!obj.contains(name))
    return fallback;
  const auto& v = obj[name];
  bool fits =
      v.is_number_integer() && (!v.is_number_unsigned() ||
                                v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()));
  if (!fits || v.get<int64_t>() < min)
    throw std::invalid_argument(std::string("'") + name +
                                "' must be an integer >= " + std::to_string(min));
  return v.get<int64_t>();
}

AgentHttp::FileCall file_call(const json& call, const char* key) {
  if (!call.contains(key) || !call[key].is_object())
    throw std::invalid_argument(std::string("'") + key + "' must be an object");
  const auto& args = call[key];
  AgentHttp::FileCall out;
  out.framework_id = id_field(args, "framework_id");
  out.task_id = id_field(args, "task_id");
  if (out.task_id.empty())
    throw std::invalid_argument("'task_id' is required");
  if (args.contains("path") && !args["path"].is_string())
    throw std::invalid_argument("'path' must be a string");
  out.path = args.value("path", std::string());
  out.offset = integer_field(args, "offset", 0, -1);
  out.length = uint64_t(integer_field(args, "length", int64_t(sandbox_read_bytes_max), 0));
  if (args.contains("follow") && !args["follow"].is_boolean())
    throw std::invalid_argument("'follow' must be true or false");
  out.follow = args.value("follow", false);
  return out;
}

template <class T>
T query_number(const http::Request& r, const char* name, T fallback, T min) {
  auto text = r.query_value(name);
  if (text.empty())
    return fallback;
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min)
    throw std::invalid_argument(std::string("'") + name +
                                "' must be an integer >= " + std::to_string(min));
  return v;
}

AgentHttp::FileCall file_call(const http::Request& r) {
  AgentHttp::FileCall out;
  out.framework_id = r.query_value("framework_id");
  out.task_id = r.query_value("task_id");
  if (out.task_id.empty())
    throw std::invalid_argument("'task_id' is required");
  out.path = r.query_value("path");
  out.offset = query_number<int64_t>(r, "offset", 0, -1);
  out.length = query_number<uint64_t>(r, "length", sandbox_read_bytes_max, 0);
  return out;
}

// ls -l's mode text: "drwxr-xr-x".
std::string mode_text(uint32_t mode) {
  std::string out = S_ISDIR(mode) ? "d" : S_ISLNK(mode) ? "l" : "-";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i)
    out.push_back(mode & (0400u >> i) ? rwx[i] : '-');
  return out;
}

json file_info(const SandboxFile& f, bool v1) {
  json out = {{"path", f.path}, {"size", f.size_bytes},     {"nlink", f.nlink},    {"uid", f.uid},
              {"gid", f.gid},   {"directory", f.directory}, {"symlink", f.symlink}};
  if (v1) {
    out["mtime"] = {{"nanoseconds", f.mtime_s * 1'000'000'000}};
    out["mode"] = f.mode;
  } else {
    out["mtime"] = double(f.mtime_s);
    out["mode"] = mode_text(f.mode);
  }
  return out;
}

http::Response with_cors(http::Response r, bool add) {
  if (add)
    r.headers.insert(r.headers.end(), cors.begin(), cors.end());
  return r;
}

}  // namespace

http::Response sandbox_error_response(const caf::error& error, SandboxFileError kind) {
  int status = 500;
  switch (kind) {
    case SandboxFileError::not_found:
      status = 404;
      break;
    case SandboxFileError::outside_sandbox:
      status = 403;
      break;
    case SandboxFileError::invalid_path:
    case SandboxFileError::not_a_directory:
    case SandboxFileError::not_a_file:
      status = 400;
      break;
    case SandboxFileError::none:
    case SandboxFileError::io:
      break;
  }
  return http::error_response(status, describe(error));
}

expected<std::unique_ptr<AgentHttp>> AgentHttp::start(
    http::ServerConfig config, std::shared_ptr<AgentHttpHandle> agent,
    std::shared_ptr<const security::HttpGuard> guard) {
  if (!guard)
    guard = std::make_shared<const security::HttpGuard>();
  std::unique_ptr<AgentHttp> edge(new AgentHttp(std::move(agent), std::move(guard)));
  auto* self = edge.get();
  auto server = http::Server::start(std::move(config), [self](http::Request r, http::Responder d) {
    self->handle(std::move(r), std::move(d));
  });
  if (!server)
    return server.error();
  edge->server_ = std::move(*server);
  return edge;
}

AgentHttp::~AgentHttp() {
  stop();
}

void AgentHttp::stop() {
  if (server_)
    server_->stop();
}

std::string AgentHttp::advertised_address(const std::string& advertise_host) const {
  auto bound = server_->address();
  auto colon = bound.rfind(':');
  auto host = bound.substr(0, colon);
  if (host != "0.0.0.0" && host != "::" && host != "[::]" && !host.empty())
    return bound;
  bool v6 = advertise_host.find(':') != std::string::npos;
  return (v6 ? "[" + advertise_host + "]" : advertise_host) + bound.substr(colon);
}

std::vector<std::pair<std::string, double>> AgentHttp::metrics() const {
  auto out = guard_->metrics();
  auto edge = http::counter_metrics(server_->counters(), bad_calls_.load());
  edge.push_back({"tessera_http_overloaded_total", double(overloaded_.load())});
  edge.push_back({"tessera_agent_api_bad_calls_total", double(bad_calls_.load())});
  edge.push_back({"tessera_agent_api_inbox_queued", double(agent_->queued())});
  out.insert(out.begin(), edge.begin(), edge.end());
  return out;
}

Agent::SandboxAccess AgentHttp::sandbox_access(const std::string& principal,
                                               std::function<void(http::Response)> refuse) const {
  if (!guard_->authorizer()->enabled())
    return nullptr;
  return [guard = guard_, principal,
          refuse = std::move(refuse)](const std::vector<std::string>& roles) {
    std::vector<security::Object> objects(roles.begin(), roles.end());
    if (objects.empty())
      objects.push_back(std::nullopt);  // an unknown framework: every role's right
    for (const auto& object : objects)
      if (auto d = guard->check(principal, security::Action::access_sandboxes, object); !d) {
        refuse(security::HttpGuard::forbidden(d.reason));
        return false;
      }
    return true;
  };
}

void AgentHttp::on_agent(const std::function<void(http::Response)>& refuse,
                         std::function<void(Agent&)> fn) {
  if (agent_->post(std::move(fn)))
    return;
  ++overloaded_;
  refuse(http::error_response(503, "the agent is busy or gone"));
}

void AgentHttp::bad_call(const http::Responder& responder, const std::string& why) {
  ++bad_calls_;
  responder.respond(http::error_response(400, why));
}

void AgentHttp::handle(http::Request request, http::Responder responder) {
  const auto& path = request.path;
  auto refuse = [responder](http::Response r) { responder.respond(std::move(r)); };
  bool file_route = path == "/files/read" || path == "/files/browse";
  if (path == "/health" && (request.method == "GET" || request.method == "HEAD"))
    return responder.respond(http::json_response(200, "{\"healthy\":true}"));
  if (file_route && request.method == "OPTIONS") {  // a browser's CORS preflight
    http::Response r{204, "text/plain", "", cors, nullptr};
    r.headers.push_back({"Access-Control-Allow-Methods", "GET, HEAD"});
    r.headers.push_back({"Access-Control-Allow-Headers", "Authorization"});
    r.headers.push_back({"Access-Control-Max-Age", "600"});
    return responder.respond(std::move(r));
  }
  auto principal = guard_->principal_of(request);
  if (!principal)
    return responder.respond(
        with_cors(security::HttpGuard::unauthorized(what(principal.error())), file_route));
  if (path == "/api/v1" || path == "/api/v1/") {
    if (request.method != "POST") {
      http::Response r = http::error_response(405, "use POST for /api/v1");
      r.headers.push_back({"Allow", "POST"});
      return responder.respond(std::move(r));
    }
    return api(request, responder, *principal);
  }
  if (request.method != "GET" && request.method != "HEAD") {
    http::Response r = http::error_response(405, "use GET for " + path);
    r.headers.push_back({"Allow", "GET, HEAD"});
    return responder.respond(std::move(r));
  }
  if (file_route)
    return files(request, responder, *principal);
  if (path == "/metrics" || path == "/metrics/snapshot") {
    if (!guard_->authorize(*principal, security::Action::view_cluster, std::nullopt, responder))
      return;
    return on_agent(refuse, [responder, prometheus = path == "/metrics", edge = metrics()](
                                Agent& a) { a.api_metrics(prometheus, edge, responder); });
  }
  responder.respond(http::error_response(404, "no such endpoint: " + path));
}

void AgentHttp::api(const http::Request& request, const http::Responder& responder,
                    const std::string& principal) {
  json call;
  try {
    call = json::parse(request.body);
  } catch (const json::exception& e) {
    return bad_call(responder, std::string("bad JSON: ") + e.what());
  }
  if (!call.is_object() || !call.contains("type") || !call["type"].is_string())
    return bad_call(responder, "a call is a JSON object with a \"type\" string");
  auto type = call["type"].get<std::string>();
  auto refuse = [responder](http::Response r) { responder.respond(std::move(r)); };
  using security::Action;
  auto may = [&](Action action) {
    return guard_->authorize(principal, action, std::nullopt, responder);
  };
  if (type == "GET_AGENT" || type == "GET_CONTAINERS") {
    if (!may(Action::view_cluster))
      return;
  } else if (book_calls.count(type) && type != "GET_HEALTH" && type != "GET_VERSION") {
    if (!may(Action::view_frameworks) || !may(Action::view_tasks))
      return;
  }
  if (book_calls.count(type))
    return on_agent(refuse, [type, responder](Agent& a) { a.api_read(type, responder); });
  if (type == "GET_CONTAINERS")
    return on_agent(refuse, [responder](Agent& a) { a.api_containers(responder); });
  if (type != "LIST_FILES" && type != "READ_FILE")
    return bad_call(responder, "unknown call type '" + type + "'");
  FileCall args;
  try {
    args = file_call(call, type == "LIST_FILES" ? "list_files" : "read_file");
  } catch (const std::exception& e) {
    return bad_call(responder, "bad " + type + " call: " + e.what());
  }
  if (type == "LIST_FILES")
    return list_files(args, true, responder, principal);
  read_file(args, true, responder, principal);
}

void AgentHttp::files(const http::Request& request, const http::Responder& responder,
                      const std::string& principal) {
  FileCall args;
  try {
    args = file_call(request);
  } catch (const std::exception& e) {
    ++bad_calls_;
    return responder.respond(with_cors(http::error_response(400, e.what()), true));
  }
  if (request.path == "/files/browse")
    return list_files(args, false, responder, principal);
  read_file(args, false, responder, principal);
}

void AgentHttp::list_files(const FileCall& call, bool v1, const http::Responder& responder,
                           const std::string& principal) {
  Refuse refuse = [responder, v1](http::Response r) {
    responder.respond(with_cors(std::move(r), !v1));
  };
  auto job = [call, v1, responder, refuse](const std::string& sandbox) {
    SandboxFileError why = SandboxFileError::none;
    auto files = list_sandbox_files(sandbox, call.path, sandbox_entries_max_default, &why);
    if (!files)
      return refuse(sandbox_error_response(files.error(), why));
    auto list = json::array();
    for (const auto& f : *files)
      list.push_back(file_info(f, v1));
    json body = v1 ? json{{"type", "LIST_FILES"}, {"list_files", {{"file_infos", list}}}} : list;
    responder.respond(with_cors(http::json_response(200, dump_text(body)), !v1));
  };
  on_agent(refuse, [call, job, refuse, access = sandbox_access(principal, refuse)](Agent& a) {
    a.api_sandbox(call.framework_id, call.task_id, job, refuse, access);
  });
}

void AgentHttp::read_file(const FileCall& call, bool v1, const http::Responder& responder,
                          const std::string& principal) {
  Refuse refuse = [responder, v1](http::Response r) {
    responder.respond(with_cors(std::move(r), !v1));
  };
  if (call.follow) {
    SandboxFollow follow{call.framework_id, call.task_id, call.path, call.offset};
    return on_agent(refuse, [follow, responder, access = sandbox_access(principal, refuse)](
                                Agent& a) { a.api_follow(follow, responder, access); });
  }
  auto job = [call, v1, responder, refuse](const std::string& sandbox) {
    SandboxFileError why = SandboxFileError::none;
    auto offset = uint64_t(std::max<int64_t>(call.offset, 0));
    auto length = call.offset < 0 ? 0 : call.length;  // -1: the size only
    auto chunk = read_sandbox_file(sandbox, call.path, offset, length, &why);
    if (!chunk)
      return refuse(sandbox_error_response(chunk.error(), why));
    auto size = chunk->file_size_bytes;
    json body = v1 ? json{{"type", "READ_FILE"},
                          {"read_file", {{"size", size}, {"data", base64_encode(chunk->data)}}}}
                   : json{{"data", chunk->data},
                          {"offset", call.offset < 0 ? size : offset},
                          {"size", size}};
    responder.respond(with_cors(http::json_response(200, dump_text(body)), !v1));
  };
  on_agent(refuse, [call, job, refuse, access = sandbox_access(principal, refuse)](Agent& a) {
    a.api_sandbox(call.framework_id, call.task_id, job, refuse, access);
  });
}

}  // namespace tessera
