// DNS as operators run it: inside a `tessera cluster` process and as
// `tessera dns` of its own, asked by dig, with tasks of the apps framework
// (two ports, a health check) coming, turning unhealthy, and going.

#include "dns/dns_test_support.hpp"
#include "e2e/cluster_process.hpp"
#include "services/http/client.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

bool soon(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        if (pred())
          return true;
        std::this_thread::sleep_for(100ms);
        return false;
      },
      timeout);
}

// `tessera cluster` with its DNS on a free port, 2 agents (each offers the
// ports it detects, [31000-32000]).
std::pair<ClusterProcess, std::string> start_cluster(const TempDir& dir,
                                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> flags = {"--dns-address", "127.0.0.1:0"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  auto cluster = start_cluster_process(dir.path() / "cluster", 2, flags);
  auto line = cluster.process->wait_line("dns: ");
  INFO(cluster.process->out() << cluster.process->err());
  REQUIRE(line);
  auto dns = text_after(*line, "dns:          ", ' ');
  return {std::move(cluster), dns};
}

void send(const std::string& http, const std::string& method, const std::string& path,
          const json& body, int expect) {
  auto r = http::request(http, method, path, body.is_null() ? "" : body.dump());
  REQUIRE(r);
  INFO(method << " " << path << " -> " << r->status << " " << r->body);
  REQUIRE(r->status == expect);
}

// /shop/web: n instances, two ports each, healthy while `flag` does not exist.
json web_app(int n, const std::filesystem::path& flag) {
  return {{"id", "/shop/web"},
          {"cmd", "sleep 1000"},
          {"instances", n},
          {"cpus", 0.1},
          {"mem", 16},
          {"portDefinitions", {{{"port", 0}}, {{"port", 0}}}},
          {"healthChecks",
           {{{"protocol", "COMMAND"},
             {"command", {{"value", "test ! -e " + flag.string()}}},
             {"gracePeriodSeconds", 30},
             {"intervalSeconds", 2},
             {"timeoutSeconds", 1},
             {"delaySeconds", 0},
             {"maxConsecutiveFailures", 1000}}}}};
}

// The TTL of the first answer record dig prints (+noall +answer): its
// columns are NAME TTL CLASS TYPE DATA, aligned with tabs or spaces.
std::string first_ttl(const std::string& answer) {
  std::istringstream in(answer);
  std::string name, ttl;
  in >> name >> ttl;
  return ttl;
}

}  // namespace

TEST_CASE("dns e2e: a cluster's app is named, loses its records when unhealthy and when it ends") {
  TempDir dir;
  TinyUpstream upstream;
  auto [cluster, dns] = start_cluster(dir, {"--dns-upstream", upstream.address()});
  auto flag = dir.path() / "unhealthy";
  send(cluster.http, "POST", "/v2/apps", web_app(2, flag), 201);

  // Two instances, two ports each: four SRV records, and the agents'
  // address (both agents are 127.0.0.1) once.
  auto srv = [&] { return dig_short(dns, "_web.shop._tcp.apps.tessera.", "SRV"); };
  REQUIRE(soon([&] { return srv().size() == 4; }, 60s));
  CHECK(dig_short(dns, "web.shop.apps.tessera.") == std::set<std::string>{"127.0.0.1"});
  for (const auto& record : srv())
    CHECK(record.find(".agents.tessera.") != std::string::npos);
  auto target = srv().begin()->substr(srv().begin()->rfind(' ') + 1);
  CHECK(dig_short(dns, target) == std::set<std::string>{"127.0.0.1"});
  CHECK(dig_short(dns, "leader.tessera.") == std::set<std::string>{"127.0.0.1"});
  CHECK(dig_status(dns, "web.shop.apps.tessera.", "AAAA") == "NOERROR");
  CHECK(dig_status(dns, "nothing.apps.tessera.") == "NXDOMAIN");

  // Unhealthy (the health check fails from now on): the records go while
  // the tasks still run; healthy again, they come back.
  { std::ofstream(flag) << "x"; }
  CHECK(soon([&] { return dig_status(dns, "web.shop.apps.tessera.") == "NXDOMAIN"; }, 30s));
  std::filesystem::remove(flag);
  CHECK(soon([&] { return srv().size() == 4; }, 30s));

  // One instance fewer: its two ports go; the app removed: the name goes.
  send(cluster.http, "PUT", "/v2/apps/shop/web", web_app(1, flag), 200);
  CHECK(soon([&] { return srv().size() == 2; }, 30s));
  send(cluster.http, "DELETE", "/v2/apps/shop/web", nullptr, 200);
  CHECK(soon([&] { return dig_status(dns, "web.shop.apps.tessera.") == "NXDOMAIN"; }, 30s));

  // Other names go to the upstream the cluster was given.
  CHECK(dig_short(dns, "www.example.org.") == std::set<std::string>{"192.0.2.53"});
  CHECK(upstream.queries() == 1);
}

TEST_CASE("dns e2e: tessera dns follows a cluster's master through the operator API") {
  TempDir dir;
  auto [cluster, in_cluster] = start_cluster(dir);
  auto p = ChildProcess::start({TESSERA_BIN, "dns", "--master", cluster.http, "--address",
                                "127.0.0.1:0", "--domain", "Example.Test", "--ttl", "7"});
  auto line = p->wait_line("answering on ");
  INFO(p->out() << p->err());
  REQUIRE(line);
  auto dns = text_after(*line, "answering on ", ' ');
  REQUIRE(p->wait_line("following "));
  send(cluster.http, "POST", "/v2/apps", web_app(2, dir.path() / "never"), 201);
  auto srv = [&] { return dig_short(dns, "_web.shop._tcp.apps.example.test.", "SRV"); };
  REQUIRE(soon([&] { return srv().size() == 4; }, 60s));
  auto out = dig(dns, {"web.shop.apps.example.test.", "+noall", "+answer"});
  INFO(out);
  CHECK(first_ttl(out) == "7");
  CHECK(out.find("127.0.0.1") != std::string::npos);
  // The same answers as the server inside the cluster.
  CHECK(dig_short(in_cluster, "_web.shop._tcp.apps.tessera.", "SRV").size() == 4);
  // No upstream: names outside its domain are refused.
  CHECK(dig_status(dns, "www.example.org.") == "REFUSED");
  send(cluster.http, "DELETE", "/v2/apps/shop/web", nullptr, 200);
  CHECK(soon([&] { return srv().empty(); }, 30s));
  p->kill(SIGTERM);
  REQUIRE(p->wait_exit(10s));
  CHECK(p->out().find("stopped on signal") != std::string::npos);
}

TEST_CASE("dns e2e: tessera master --dns names the master it runs beside") {
  TempDir dir;
  auto p = ChildProcess::start({TESSERA_BIN, "master", "--listen", "127.0.0.1:0", "--http",
                                "127.0.0.1:0", "--work-dir", (dir.path() / "m").string(), "--dns",
                                "--dns-address", "127.0.0.1:0", "--dns-domain", "dc1.test",
                                "--dns-ttl", "3"});
  auto dns_line = p->wait_line("DNS on ");
  auto master_line = p->wait_line("listening on ");
  INFO(p->out() << p->err());
  REQUIRE(dns_line);
  REQUIRE(master_line);
  auto dns = text_after(*dns_line, "DNS on ", ' ');
  auto master = text_after(*master_line, "listening on master@", ' ');
  auto port = master.substr(master.rfind(':') + 1);
  REQUIRE(soon([&] { return dig_short(dns, "leader.dc1.test.").size() == 1; }, 30s));
  CHECK(dig_short(dns, "master.dc1.test.") == std::set<std::string>{"127.0.0.1"});
  CHECK(dig_short(dns, "_leader._tcp.dc1.test.", "SRV") ==
        std::set<std::string>{"0 1 " + port + " leader.dc1.test."});
  CHECK(first_ttl(dig(dns, {"leader.dc1.test.", "+noall", "+answer"})) == "3");
  // Its counters are on the master's /metrics.
  auto http_line = p->wait_line("web UI on http://");
  REQUIRE(http_line);
  auto metrics =
      http::request(text_after(*http_line, "http://", '/'), "GET", "/metrics", "", "", 10s);
  REQUIRE(metrics);
  INFO(metrics->body.substr(0, 2000));
  CHECK(metrics->body.find("tessera_dns_queries_total") != std::string::npos);
  CHECK(metrics->body.find("tessera_dns_records ") != std::string::npos);
  p->kill(SIGTERM);
  CHECK(p->wait_exit(20s));
}

TEST_CASE("dns e2e: bad DNS flags are refused with one line and exit code 2") {
  TempDir dir;
  auto bad = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {
        TESSERA_BIN, "cluster",     "--listen",   "127.0.0.1:0",
        "--http",    "127.0.0.1:0", "--work-dir", (dir.path() / "c").string()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto p = ChildProcess::start(argv);
    REQUIRE(p->wait_exit(30s));
    INFO(p->out() << p->err());
    CHECK(p->exit_status()->exit_code == 2);
    CHECK(p->err().find("tessera: ") == 0);
  };
  bad({"--dns-domain", "bad_domain"});
  bad({"--dns-address", "localhost:53x"});
  bad({"--dns-upstream", "resolver.example:53"});
}
