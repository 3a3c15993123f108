// The fetcher against real files and a real HTTP server on 127.0.0.1: what
// lands in the sandbox, the errors, the limits, and the cache.

#include "services/agent/fetcher.hpp"
#include "support/test_support.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

using namespace tessera;
using tessera::testing::read_file;
using tessera::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// An httplib::Server on 127.0.0.1, a free port, its own thread; counts the
// requests it answers. The destructor stops it and joins the thread.
class TestServer {
 public:
  explicit TestServer(const std::function<void(httplib::Server&)>& routes) {
    server_.set_pre_routing_handler([this](const httplib::Request&, httplib::Response&) {
      ++requests_;
      return httplib::Server::HandlerResponse::Unhandled;
    });
    routes(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");  // listening from here on
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib 0.11's stop() does nothing until the accept loop has started,
    // and the loop would then never end: wait for it.
    REQUIRE(tessera::testing::wait_until([this] { return server_.is_running(); }));
  }
  ~TestServer() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const { return requests_.load(); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

struct Entry {
  std::string path;
  std::string content;
  int mode = 0644;
};

// Writes a gzip-compressed tar with libarchive, which, unlike tar(1), keeps
// hostile paths as given.
void make_tar_gz(const fs::path& out, const std::vector<Entry>& entries) {
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  for (const auto& e : entries) {
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, static_cast<mode_t>(e.mode));
    REQUIRE(archive_write_header(a, entry) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, e.content.data(), e.content.size()) ==
            static_cast<la_ssize_t>(e.content.size()));
    archive_entry_free(entry);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
}

// Runs a shell command; returns its stdout.
std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe))
    out.append(buf, n);
  ::pclose(pipe);
  return out;
}

bool failed_with(const expected<FetchReport>& r, Errc code) {
  return !r && is(r.error(), code);
}

std::string error_text(const expected<FetchReport>& r) {
  REQUIRE_FALSE(r);
  return what(r.error());
}

// Serves each path's bytes as application/octet-stream.
std::function<void(httplib::Server&)> serve(std::map<std::string, std::string> files) {
  return [files = std::move(files)](httplib::Server& s) {
    for (const auto& [path, body] : files)
      s.Get(path, [body = body](const httplib::Request&, httplib::Response& res) {
        res.set_content(body, "application/octet-stream");
      });
  };
}

// Local sources from any test directory (TempDirs are made there); the
// allowed-paths tests set their own.
FetcherConfig quick_config() {
  FetcherConfig c;
  c.allowed_paths = {std::filesystem::temp_directory_path()};
  c.connect_timeout_ms = std::chrono::milliseconds(5000);
  c.read_timeout_ms = std::chrono::milliseconds(5000);
  return c;
}

// An agent's default: no local source at all.
FetcherConfig quick_config_without_local() {
  auto c = quick_config();
  c.allowed_paths.clear();
  return c;
}

}  // namespace

TEST_CASE("an http archive is downloaded, extracted and its script runs", "[fetcher]") {
  TempDir dir;
  auto archive = dir.path() / "app.tar.gz";
  make_tar_gz(archive, {{"app/run.sh", "#!/bin/sh\necho hello-from-the-archive\n", 0755},
                        {"app/conf/settings.txt", "x=1\n"}});
  TestServer server(serve({{"/dist/app.tar.gz", read_file(archive)}}));
  auto sandbox = dir.path() / "sandbox";
  fs::create_directory(sandbox);

  Fetcher fetcher(quick_config());
  auto report = fetcher.fetch({{server.url("/dist/app.tar.gz?v=2")}}, sandbox);
  REQUIRE(report);
  REQUIRE(report->files.size() == 1);
  const auto& f = report->files[0];
  CHECK(f.path == fs::canonical(sandbox) / "app.tar.gz");
  CHECK(f.bytes == fs::file_size(archive));
  CHECK(f.extracted);
  CHECK(f.entries == 2);
  CHECK_FALSE(f.from_cache);
  CHECK(read_file(sandbox / "app/conf/settings.txt") == "x=1\n");
  CHECK(run((sandbox / "app/run.sh").string()) == "hello-from-the-archive\n");
  CHECK(server.requests() == 1);
}

TEST_CASE("file:// and plain paths are copied, executable sets 0755 and skips extraction",
          "[fetcher]") {
  TempDir dir;
  auto tool = dir.path() / "tool.sh";
  write_file(tool, "#!/bin/sh\necho tool-ran\n");
  fs::permissions(tool, fs::perms::owner_read | fs::perms::owner_write);
  auto archive = dir.path() / "kept.tgz";
  make_tar_gz(archive, {{"inside.txt", "in"}});
  auto sandbox = dir.path() / "sandbox";
  fs::create_directory(sandbox);

  Fetcher fetcher(quick_config());
  FetchUri exe{"file://" + tool.string()};
  exe.executable = true;
  FetchUri kept{archive.string()};
  kept.executable = true;  // executable wins over extract, as in Mesos
  auto report = fetcher.fetch({exe, kept}, sandbox);
  REQUIRE(report);
  REQUIRE(report->files.size() == 2);
  CHECK(report->files[0].bytes == fs::file_size(tool));
  CHECK((fs::status(sandbox / "tool.sh").permissions() & fs::perms::all) ==
        (fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
         fs::perms::others_read | fs::perms::others_exec));
  CHECK(run((sandbox / "tool.sh").string()) == "tool-ran\n");
  CHECK_FALSE(report->files[1].extracted);
  CHECK_FALSE(fs::exists(sandbox / "inside.txt"));
  CHECK(fs::exists(sandbox / "kept.tgz"));
}

TEST_CASE("fetch errors name the URI and the cause", "[fetcher]") {
  TempDir dir;
  Fetcher fetcher(quick_config());
  TestServer server([](httplib::Server& s) {
    s.Get("/gone", [](const httplib::Request&, httplib::Response& res) { res.status = 410; });
  });

  SECTION("HTTP 404") {
    auto uri = server.url("/missing.tgz");
    CHECK(error_text(fetcher.fetch({{uri}}, dir.path())) == "fetch " + uri + ": HTTP 404");
    CHECK(server.requests() == 1);
  }
  SECTION("another status") {
    auto uri = server.url("/gone");
    CHECK(error_text(fetcher.fetch({{uri}}, dir.path())) == "fetch " + uri + ": HTTP 410");
  }
  SECTION("a missing file (under the allowed paths: elsewhere it is only refused)") {
    auto uri = "file://" + (dir.path() / "nope" / "x").string();
    CHECK(error_text(fetcher.fetch({{uri}}, dir.path())) ==
          "fetch " + uri + ": No such file or directory");
  }
  SECTION("connection refused") {
    // A bound socket that does not listen: connects to it are refused, and
    // no other process can take the port meanwhile.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    auto uri = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.tgz";
    auto r = fetcher.fetch({{uri}}, dir.path());
    ::close(fd);
    CHECK(failed_with(r, Errc::connect_failed));
    CHECK_THAT(error_text(r), Catch::StartsWith("fetch " + uri + ": cannot connect"));
  }
  SECTION("unsupported schemes and unusable names") {
    for (std::string uri : {"ftp://h/x", "relative/x", "file://h/x", "http://127.0.0.1/",
                            "http://127.0.0.1/a/..", "/tmp/.", "http://[::1/x", "http://u@h/x",
                            "http://h:99999/x", "http:///x", "file:///tmp/%00x"}) {
      auto r = fetcher.fetch({{uri}}, dir.path());
      INFO(uri);
      CHECK(failed_with(r, Errc::invalid_argument));
      CHECK_THAT(error_text(r), Catch::StartsWith("fetch " + uri + ": "));
    }
  }
  // Nothing half-written is left behind.
  for (const auto& e : fs::directory_iterator(dir.path()))
    CHECK(e.path().filename().string().rfind(".tmp-", 0) != 0);
}

TEST_CASE("archive entries that would leave the sandbox are refused", "[fetcher]") {
  TempDir dir;
  auto sandbox = dir.path() / "sandbox";
  fs::create_directory(sandbox);
  Fetcher fetcher(quick_config());
  // "/abs": an absolute path into the test's directory, outside the sandbox.
  std::string hostile =
      GENERATE(as<std::string>{}, "../escaped.txt", "a/../../escaped.txt", "/abs");
  if (hostile == "/abs")
    hostile = (dir.path() / "escaped.txt").string();
  auto archive = dir.path() / "evil.tar.gz";
  make_tar_gz(archive, {{"fine.txt", "ok"}, {hostile, "gotcha"}});

  auto r = fetcher.fetch({{archive.string()}}, sandbox);
  INFO(hostile);
  CHECK(failed_with(r, Errc::invalid_argument));
  CHECK_THAT(error_text(r), Catch::StartsWith("extract evil.tar.gz: entry '" + hostile + "'"));
  CHECK_FALSE(fs::exists(dir.path() / "escaped.txt"));
}

TEST_CASE("downloads over download_bytes_max fail and leave nothing", "[fetcher]") {
  TempDir dir;
  std::string big(256 * 1024, 'x');
  TestServer server([&](httplib::Server& s) {
    s.Get("/big.bin", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(big, "application/octet-stream");
    });
    // No Content-Length: only counting the bytes can stop it.
    s.Get("/stream.bin", [&](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("application/octet-stream",
                                       [&](size_t, httplib::DataSink& sink) {
                                         sink.write(big.data(), big.size());
                                         sink.done();
                                         return true;
                                       });
    });
  });
  auto config = quick_config();
  config.download_bytes_max = 64 * 1024;
  Fetcher fetcher(config);
  auto path = GENERATE(std::string("/big.bin"), std::string("/stream.bin"));
  auto r = fetcher.fetch({{server.url(path)}}, dir.path());
  INFO(path);
  CHECK(failed_with(r, Errc::oversized));
  CHECK_THAT(error_text(r), Catch::Contains("download_bytes_max 65536"));
  CHECK(fs::is_empty(dir.path()));

  config.download_bytes_max = big.size();
  auto fits = Fetcher(config).fetch({{server.url(path)}}, dir.path());
  REQUIRE(fits);
  CHECK(fits->files[0].bytes == big.size());
}

TEST_CASE("redirects are followed up to redirects_max", "[fetcher]") {
  TempDir dir;
  TestServer server([](httplib::Server& s) {
    s.Get("/real/data.txt", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("payload", "text/plain");
    });
    s.Get("/hop1/data.txt",
          [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/hop2/x"); });
    s.Get("/hop2/x",
          [](const httplib::Request&, httplib::Response& res) { res.set_redirect("y"); });
    s.Get("/hop2/y", [](const httplib::Request& req, httplib::Response& res) {
      res.set_redirect("http://" + req.get_header_value("Host") + "/real/data.txt");
    });
    s.Get("/loop.txt",
          [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/loop.txt"); });
  });
  auto config = quick_config();
  config.redirects_max = 3;
  Fetcher fetcher(config);

  auto r = fetcher.fetch({{server.url("/hop1/data.txt")}}, dir.path());
  REQUIRE(r);
  CHECK(read_file(dir.path() / "data.txt") == "payload");  // named after the URI as given

  auto loop = fetcher.fetch({{server.url("/loop.txt")}}, dir.path());
  CHECK(failed_with(loop, Errc::oversized));
  CHECK_THAT(error_text(loop), Catch::Contains("redirects_max 3"));
}

TEST_CASE("a cached URI is served from the cache the second time", "[fetcher][cache]") {
  TempDir dir;
  TestServer server(serve({{"/data.txt", "cached bytes"}}));
  auto cache = FetcherCache::open(dir.path() / "cache", 1 << 20);
  REQUIRE(cache);
  Fetcher fetcher(quick_config(), cache->get());
  FetchUri uri{server.url("/data.txt")};
  uri.cache = true;

  for (const char* name : {"s1", "s2"})
    fs::create_directory(dir.path() / name);
  auto first = fetcher.fetch({uri}, dir.path() / "s1");
  REQUIRE(first);
  CHECK_FALSE(first->files[0].from_cache);
  auto second = fetcher.fetch({uri}, dir.path() / "s2");
  REQUIRE(second);
  CHECK(second->files[0].from_cache);
  CHECK(second->files[0].bytes == 12);
  CHECK(read_file(dir.path() / "s2/data.txt") == "cached bytes");
  CHECK(server.requests() == 1);
  auto stats = (*cache)->stats();
  CHECK(stats.hits == 1);
  CHECK(stats.misses == 1);
  CHECK(stats.entries == 1);
  CHECK(stats.bytes == 12);
  CHECK(fs::exists(dir.path() / "cache" / FetcherCache::key(uri.value)));
}

TEST_CASE("the cache evicts the least recently used entry and rebuilds from disk",
          "[fetcher][cache]") {
  TempDir dir;
  auto src = dir.path() / "src";
  auto sandbox = dir.path() / "sandbox";
  fs::create_directories(src);
  fs::create_directories(sandbox);
  auto uri_of = [&](const std::string& name) {
    write_file(src / name, std::string(100, name[0]));
    FetchUri u{"file://" + (src / name).string()};
    u.cache = true;
    return u;
  };
  auto a = uri_of("a.bin"), b = uri_of("b.bin"), c = uri_of("c.bin");
  auto cache_dir = dir.path() / "cache";
  {
    auto cache = FetcherCache::open(cache_dir, 250);
    REQUIRE(cache);
    Fetcher fetcher(quick_config(), cache->get());
    REQUIRE(fetcher.fetch({a, b}, sandbox));
    REQUIRE(fetcher.fetch({a}, sandbox)->files[0].from_cache);  // a is now the newest
    REQUIRE(fetcher.fetch({c}, sandbox));                       // 300 > 250: b goes
    CHECK((*cache)->contains(a.value));
    CHECK_FALSE((*cache)->contains(b.value));
    CHECK((*cache)->contains(c.value));
    CHECK((*cache)->stats().evictions == 1);
    CHECK((*cache)->stats().bytes == 200);
  }
  // A crash mid-insert leaves a temporary file; it never counts as an entry.
  write_file(cache_dir / ".tmp-abcdef", std::string(10, 'z'));

  auto reopened = FetcherCache::open(cache_dir, 250);
  REQUIRE(reopened);
  auto stats = (*reopened)->stats();
  CHECK(stats.entries == 2);
  CHECK(stats.bytes == 200);
  CHECK_FALSE(fs::exists(cache_dir / ".tmp-abcdef"));
  // Recency survived: a (used before c was inserted) is now the oldest.
  Fetcher fetcher(quick_config(), reopened->get());
  REQUIRE(fetcher.fetch({b}, sandbox));
  CHECK_FALSE((*reopened)->contains(a.value));
  CHECK((*reopened)->contains(b.value));
  CHECK((*reopened)->contains(c.value));
  // The entry really came from the cache: the source is gone.
  fs::remove(src / "c.bin");
  auto hit = fetcher.fetch({c}, sandbox);
  REQUIRE(hit);
  CHECK(hit->files[0].from_cache);
  CHECK(read_file(sandbox / "c.bin") == std::string(100, 'c'));

  // A cache smaller than what is already there evicts on open.
  auto shrunk = FetcherCache::open(cache_dir, 150);
  REQUIRE(shrunk);
  CHECK((*shrunk)->stats().entries == 1);
  CHECK((*shrunk)->contains(c.value));  // the most recently used
}

TEST_CASE("a file larger than the cache is fetched but not cached", "[fetcher][cache]") {
  TempDir dir;
  auto big = dir.path() / "big.bin";
  write_file(big, std::string(4096, 'b'));
  auto cache = FetcherCache::open(dir.path() / "cache", 1024);
  REQUIRE(cache);
  auto sandbox = dir.path() / "sandbox";
  fs::create_directory(sandbox);
  FetchUri uri{big.string()};
  uri.cache = true;
  auto r = Fetcher(quick_config(), cache->get()).fetch({uri}, sandbox);
  REQUIRE(r);
  CHECK(r->files[0].bytes == 4096);
  CHECK((*cache)->stats().entries == 0);
  CHECK(fs::is_empty(dir.path() / "cache"));
}

TEST_CASE("URIs may name IPv6 hosts in brackets and any case of scheme", "[fetcher]") {
  TempDir dir;
  httplib::Server server;
  server.Get("/v6.txt", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("over ipv6", "text/plain");
  });
  int port = server.bind_to_any_port("::1");
  if (port <= 0) {
    WARN("skipped: cannot listen on [::1] here (no IPv6 loopback)");
    return;
  }
  std::thread serving([&] { server.listen_after_bind(); });
  REQUIRE(tessera::testing::wait_until([&] { return server.is_running(); }));
  Fetcher fetcher(quick_config());
  auto r = fetcher.fetch({{"HTTP://[::1]:" + std::to_string(port) + "/v6.txt#frag"}}, dir.path());
  server.stop();
  serving.join();
  REQUIRE(r);
  CHECK(read_file(dir.path() / "v6.txt") == "over ipv6");
}

TEST_CASE("file URIs are decoded as URIs", "[fetcher]") {
  TempDir dir;
  auto src = dir.path() / "src";
  fs::create_directory(src);
  { std::ofstream(src / "a b.txt") << "spaced"; }
  auto sandbox = dir.path() / "sandbox";
  fs::create_directory(sandbox);
  Fetcher fetcher(quick_config());
  auto r = fetcher.fetch({{"file://" + src.string() + "/a%20b.txt"}}, sandbox);
  INFO((r ? std::string() : describe(r.error())));
  REQUIRE(r);
  CHECK(read_file(sandbox / "a b.txt") == "spaced");
}

// A self-signed certificate for 127.0.0.1, made with openssl(1); empty
// when it cannot be made here (the caller skips, saying why).
static std::string make_certificate(const fs::path& dir) {
  auto cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout '" +
      (dir / "key.pem").string() + "' -out '" + (dir / "cert.pem").string() + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return "openssl req failed";
  return {};
}

#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
TEST_CASE("https URIs are downloaded from a server whose certificate is trusted", "[fetcher]") {
  TempDir dir;
  if (auto why = make_certificate(dir.path()); !why.empty()) {
    WARN("skipped: no test certificate: " << why);
    return;
  }
  httplib::SSLServer server((dir.path() / "cert.pem").c_str(), (dir.path() / "key.pem").c_str());
  REQUIRE(server.is_valid());
  server.Get("/secret.txt", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("over tls", "text/plain");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { server.listen_after_bind(); });
  REQUIRE(tessera::testing::wait_until([&] { return server.is_running(); }));
  auto uri = "https://127.0.0.1:" + std::to_string(port) + "/secret.txt";
  auto sandbox = dir.path() / "sandbox";
  fs::create_directory(sandbox);

  // Not trusted (self-signed, not among the system's CAs): refused, saying why.
  Fetcher strict(quick_config());
  auto refused = strict.fetch({{uri}}, sandbox);
  // Trusted through ca_file.
  auto config = quick_config();
  config.ca_file = dir.path() / "cert.pem";
  Fetcher trusting(config);
  auto fetched = trusting.fetch({{uri}}, sandbox);
  server.stop();
  serving.join();

  CHECK(failed_with(refused, Errc::connect_failed));
  CHECK_THAT(error_text(refused), Catch::Contains("could not be verified"));
  INFO((fetched ? std::string() : describe(fetched.error())));
  REQUIRE(fetched);
  CHECK(read_file(sandbox / "secret.txt") == "over tls");
}
#else
TEST_CASE("without TLS in cpp-httplib an https URI fails saying so", "[fetcher]") {
  WARN("cpp-httplib was built without CPPHTTPLIB_OPENSSL_SUPPORT: testing the refusal");
  TempDir dir;
  Fetcher fetcher(quick_config());
  auto r = fetcher.fetch({{"https://127.0.0.1:1/x.txt"}}, dir.path());
  CHECK(failed_with(r, Errc::invalid_argument));
  CHECK_THAT(error_text(r), Catch::Contains("https:// is not supported"));
}
#endif

TEST_CASE("local sources are fetched only from under the allowed paths", "[fetcher][allowed]") {
  TempDir dir;
  auto allowed = dir.path() / "allowed";
  auto outside = dir.path() / "outside";
  fs::create_directories(allowed / "sub");
  fs::create_directory(outside);
  { std::ofstream(allowed / "sub" / "in.txt") << "inside"; }
  { std::ofstream(outside / "secret.txt") << "secret"; }
  fs::create_symlink(outside / "secret.txt", allowed / "escape.txt");
  fs::create_symlink(allowed / "sub" / "in.txt", allowed / "alias.txt");
  auto sandbox = dir.path() / "sandbox";
  fs::create_directory(sandbox);
  auto config = quick_config();
  config.allowed_paths = {allowed};
  Fetcher fetcher(config);
  auto refused_outside = [&](const std::string& uri) {
    INFO(uri);
    auto r = fetcher.fetch({{uri}}, sandbox);
    CHECK(failed_with(r, Errc::invalid_argument));
    CHECK_THAT(error_text(r), Catch::Contains("outside the agent's --fetcher-allowed-paths"));
  };

  SECTION("a file under an allowed directory, as a file URI or a path") {
    REQUIRE(fetcher.fetch({{"file://" + (allowed / "sub" / "in.txt").string()}}, sandbox));
    CHECK(read_file(sandbox / "in.txt") == "inside");
    REQUIRE(fetcher.fetch({{(allowed / "alias.txt").string()}}, sandbox));
    CHECK(read_file(sandbox / "alias.txt") == "inside");
  }
  SECTION("a file outside them, directly, through '..' or through a symlink") {
    refused_outside("file://" + (outside / "secret.txt").string());
    refused_outside((outside / "secret.txt").string());
    refused_outside((allowed / ".." / "outside" / "secret.txt").string());
    refused_outside("file://" + (allowed / "escape.txt").string());
    CHECK_FALSE(fs::exists(sandbox / "secret.txt"));
    CHECK_FALSE(fs::exists(sandbox / "escape.txt"));
  }
  SECTION("a missing file says so only where it would be allowed") {
    auto missing = fetcher.fetch({{(allowed / "missing.txt").string()}}, sandbox);
    CHECK(failed_with(missing, Errc::os_error));
    CHECK_THAT(error_text(missing), Catch::Contains("No such file"));
    refused_outside((outside / "missing.txt").string());
  }
  SECTION("none at all without allowed paths") {
    Fetcher strict(quick_config_without_local());
    auto r = strict.fetch({{"file://" + (allowed / "sub" / "in.txt").string()}}, sandbox);
    CHECK(failed_with(r, Errc::invalid_argument));
    CHECK_THAT(error_text(r), Catch::Contains("no --fetcher-allowed-paths"));
  }
  SECTION("a cached copy is not served once its path is no longer allowed") {
    auto cache = FetcherCache::open(dir.path() / "cache", 1 << 20);
    REQUIRE(cache);
    FetchUri uri{"file://" + (allowed / "sub" / "in.txt").string(), true, false, true};
    REQUIRE(Fetcher(config, cache->get()).fetch({uri}, sandbox));
    REQUIRE((*cache)->contains(uri.value));
    auto narrower = config;
    narrower.allowed_paths = {outside};
    auto r = Fetcher(narrower, cache->get()).fetch({uri}, sandbox);
    CHECK(failed_with(r, Errc::invalid_argument));
  }
}
