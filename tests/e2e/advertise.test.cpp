// --listen vs --advertise with real processes: a master and an agent bound to
// every interface, naming themselves by the loopback address they advertise,
// run a `tessera run` task to its end; bad values are one line and exit 2.

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

// A port free on 127.0.0.1 right now (the OS picks it; the socket closes).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  REQUIRE(ok);
  return ntohs(a.sin_port);
}

// What follows prefix in line, up to the next space.
std::string word_after(const std::string& line, const std::string& prefix) {
  auto at = line.find(prefix);
  REQUIRE(at != std::string::npos);
  at += prefix.size();
  return line.substr(at, line.find(' ', at) - at);
}

}  // namespace

TEST_CASE("master and agent listening on 0.0.0.0 advertise 127.0.0.1 and run a task",
          "[e2e][cli][advertise]") {
  TempDir dir;
  auto port = std::to_string(free_port());
  auto master = ChildProcess::start({TESSERA_BIN, "--log-level", "info", "master", "--listen",
                                     "0.0.0.0:" + port, "--advertise", "127.0.0.1:" + port,
                                     "--work-dir", (dir.path() / "master").string()});
  auto line = master->wait_line("listening on");
  INFO("master: " << master->out() << master->err());
  REQUIRE(line);
  CHECK(word_after(*line, "listening on ") == "master@127.0.0.1:" + port);
  CHECK(word_after(*line, "bound to ") == "0.0.0.0:" + port + ";");

  // The agent binds every interface on a port of the OS's choice and
  // advertises that port on 127.0.0.1.
  auto agent = ChildProcess::start({TESSERA_BIN, "agent", "--master", "127.0.0.1:" + port,
                                    "--listen", "0.0.0.0:0", "--advertise", "127.0.0.1:0",
                                    "--work-dir", (dir.path() / "agent").string(), "--resources",
                                    "cpus:1;mem:256", "--isolation", "posix"});
  auto agent_line = agent->wait_line("listening on");
  INFO("agent: " << agent->out() << agent->err());
  REQUIRE(agent_line);
  auto agent_address = word_after(*agent_line, "listening on ");
  agent_address.pop_back();  // the comma
  CHECK(agent_address.rfind("agent@127.0.0.1:", 0) == 0);
  CHECK(agent_address != "agent@127.0.0.1:0");

  auto run = ChildProcess::start(
      {TESSERA_BIN, "run", "--master", "127.0.0.1:" + port, "--", "sh", "-c", "echo advertised"});
  REQUIRE(run->wait_exit(60s));
  INFO("run: " << run->out() << run->err());
  CHECK(run->out() == "advertised\n");
  CHECK(run->exit_status()->exit_code == 0);
  CHECK(run->err().find("TASK_FINISHED") != std::string::npos);

  // The master knows the agent by the address it advertised, never 0.0.0.0.
  CHECK(master->err().find("registered agent") != std::string::npos);
  CHECK(master->err().find("at " + agent_address) != std::string::npos);
  CHECK(master->err().find("0.0.0.0") == std::string::npos);

  agent->kill(SIGTERM);
  CHECK(agent->wait_exit());
  master->kill(SIGTERM);
  CHECK(master->wait_exit());
  CHECK(master->exit_status()->exit_code == 0);
}

TEST_CASE("bad --listen and --advertise values are one line and exit code 2",
          "[e2e][cli][advertise]") {
  TempDir dir;
  auto work = dir.path().string();
  auto expect_refusal = [](std::vector<std::string> args, const std::string& says) {
    args.insert(args.begin(), TESSERA_BIN);
    auto p = ChildProcess::start(args);
    REQUIRE(p->wait_exit());
    auto err = p->err();
    INFO("args: " << args[1] << " " << args.back() << "\nstderr: " << err);
    CHECK(p->exit_status()->exit_code == 2);
    CHECK(err.rfind("tessera: ", 0) == 0);
    CHECK(err.find(says) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  };
  for (auto command : {"master", "cluster", "agent"}) {
    std::vector<std::string> base = {command, "--work-dir", work};
    if (std::string(command) == "agent")
      base.insert(base.end(), {"--master", "127.0.0.1:1"});
    auto with = [&](std::vector<std::string> extra) {
      auto args = base;
      args.insert(args.end(), extra.begin(), extra.end());
      return args;
    };
    expect_refusal(with({"--listen", "0.0.0.0"}), "--listen");
    expect_refusal(with({"--listen", "0.0.0.0:65536"}), "--listen");
    expect_refusal(with({"--listen", "0.0.0.0:0", "--advertise", "127.0.0.1"}), "--advertise");
    expect_refusal(with({"--listen", "0.0.0.0:0", "--advertise", "127.0.0.1:x"}), "--advertise");
    expect_refusal(with({"--listen", "0.0.0.0:0", "--advertise", ":5050"}), "--advertise");
    expect_refusal(with({"--listen", "0.0.0.0:0", "--advertise", "0.0.0.0:5050"}),
                   "no address others can reach");
    expect_refusal(with({"--listen", "0.0.0.0:0", "--advertise", "[::]:5050"}),
                   "no address others can reach");
  }
}
