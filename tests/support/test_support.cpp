#include "support/test_support.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef TESSERA_TEST_PEER
#define TESSERA_TEST_PEER "tessera_test_peer"
#endif

namespace tessera::testing {

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tessera-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data()))
    throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<PeerProcess> PeerProcess::start(const std::vector<std::string>& args) {
  std::unique_ptr<PeerProcess> peer(new PeerProcess());
  ProcessSpec spec;
  spec.argv.push_back(TESSERA_TEST_PEER);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.stdout_path = (peer->dir_.path() / "stdout").string();
  spec.stderr_path = (peer->dir_.path() / "stderr").string();
  auto exited = peer->exited_;
  auto status = peer->status_;
  auto pid = peer->launcher_.spawn(spec, [exited, status](const ProcessExit& e) {
    *status = e;
    exited->store(true);
  });
  if (!pid)
    throw std::runtime_error("cannot start peer: " + describe(pid.error()));
  peer->pid_ = *pid;
  auto ready = [&] {
    auto out = read_file(peer->dir_.path() / "stdout");
    auto pos = out.find("READY ");
    if (pos == std::string::npos || out.find('\n', pos) == std::string::npos)
      return false;
    peer->port_ = static_cast<uint16_t>(std::stoi(out.substr(pos + 6)));
    return true;
  };
  if (!wait_until([&] { return ready() || exited->load(); }) || !peer->port_)
    throw std::runtime_error("peer did not become ready: " + peer->output());
  return peer;
}

PeerProcess::~PeerProcess() {
  if (!exited_->load()) {
    static_cast<void>(launcher_.kill(pid_, SIGKILL));
    wait_exit();
  }
}

void PeerProcess::kill(int sig) {
  static_cast<void>(launcher_.kill(pid_, sig));
}

bool PeerProcess::wait_exit(std::chrono::milliseconds timeout) {
  return wait_until([this] { return exited_->load(); }, timeout);
}

std::optional<ProcessExit> PeerProcess::exit_status() const {
  if (!exited_->load())
    return std::nullopt;
  return *status_;
}

std::string PeerProcess::output() const {
  return read_file(dir_.path() / "stdout") + read_file(dir_.path() / "stderr");
}

size_t kill_processes_under(const std::filesystem::path& dir) {
  auto root = std::filesystem::weakly_canonical(dir).string();
  size_t n = 0;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto cwd = std::filesystem::read_symlink(entry.path() / "cwd", ec);
    if (ec || cwd.string().rfind(root, 0) != 0)
      continue;
    if (::kill(std::stoi(name), SIGKILL) == 0)
      ++n;
  }
  return n;
}

std::unique_ptr<ChildProcess> ChildProcess::start(std::vector<std::string> argv,
                                                  std::vector<std::string> env) {
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = std::move(env);
  spec.stdout_path = (child->dir_.path() / "stdout").string();
  spec.stderr_path = (child->dir_.path() / "stderr").string();
  auto exited = child->exited_;
  auto status = child->status_;
  auto pid = child->launcher_.spawn(spec, [exited, status](const ProcessExit& e) {
    *status = e;
    exited->store(true);
  });
  if (!pid)
    throw std::runtime_error("cannot start " + spec.argv.front() + ": " + describe(pid.error()));
  child->pid_ = *pid;
  return child;
}

ChildProcess::~ChildProcess() {
  if (!exited_->load()) {
    static_cast<void>(launcher_.kill(pid_, SIGKILL, true));
    wait_exit();
  }
}

void ChildProcess::kill(int sig) {
  static_cast<void>(launcher_.kill(pid_, sig));
}

std::optional<std::string> ChildProcess::wait_line(const std::string& text,
                                                   std::chrono::milliseconds timeout) {
  std::optional<std::string> found;
  wait_until(
      [&] {
        auto s = out();
        auto pos = s.find(text);
        if (pos == std::string::npos)
          return exited_->load();
        auto begin = s.rfind('\n', pos);
        begin = begin == std::string::npos ? 0 : begin + 1;
        auto end = s.find('\n', pos);
        if (end == std::string::npos)
          return exited_->load();
        found = s.substr(begin, end - begin);
        return true;
      },
      timeout);
  return found;
}

bool ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  return wait_until([this] { return exited_->load(); }, timeout);
}

std::optional<ProcessExit> ChildProcess::exit_status() const {
  if (!exited_->load())
    return std::nullopt;
  return *status_;
}

std::string ChildProcess::out() const {
  return read_file(dir_.path() / "stdout");
}
std::string ChildProcess::err() const {
  return read_file(dir_.path() / "stderr");
}

namespace {

bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string run_command(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof(buf), p))
      out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

std::string zk_script() {
  return std::string(TESSERA_SOURCE_DIR) + "/tools/zk.sh";
}

}  // namespace

ZkServers::ZkServers(int servers, const std::string& host, const std::string& netns) {
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 3 && spec.empty(); ++attempt) {
    int port = 20000 + static_cast<int>(rng() % 20000);
    bool free = true;
    for (int i = 0; i < servers && netns.empty(); ++i)
      free = free && port_free(port + i) && port_free(port + 101 + i) && port_free(port + 201 + i);
    if (!free)
      continue;
    auto where =
        (host.empty() ? "" : " --host " + host) + (netns.empty() ? "" : " --netns " + netns);
    auto out =
        run_command(zk_script() + " start " + dir_.path().string() + " --servers " +
                    std::to_string(servers) + " --port " + std::to_string(port) + where + " 2>&1");
    if (out.rfind("zk://", 0) == 0)
      spec = out;
    else
      why = out;
  }
}

ZkServers::~ZkServers() {
  run_command(zk_script() + " stop " + dir_.path().string());
}

void ZkServers::kill(int server) {
  run_command(zk_script() + " kill " + dir_.path().string() + " " + std::to_string(server));
}

namespace {

std::string netns_script() {
  return std::string(TESSERA_SOURCE_DIR) + "/tools/netns.sh";
}

}  // namespace

NetnsLab::NetnsLab(int hosts) {
  // A prefix and a /24 of this process's own, so that tests running at
  // once never share a namespace or an address.
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 5 && prefix_.empty(); ++attempt) {
    auto prefix = "tl" + std::to_string(::getpid() % 100000) + std::to_string(attempt);
    auto subnet = "10.213." + std::to_string(1 + rng() % 250);
    auto out = run_command(netns_script() + " up " + prefix + " " + std::to_string(hosts) +
                           " --subnet " + subnet + " 2>&1");
    if (out.rfind("h1 ", 0) == 0) {
      prefix_ = prefix;
      subnet_ = subnet;
    } else {
      why = out;
    }
  }
}

NetnsLab::~NetnsLab() {
  if (up())
    run_command(netns_script() + " down " + prefix_ + " 2>&1");
}

void NetnsLab::cut(int host) {
  run_command(netns_script() + " cut " + prefix_ + " " + std::to_string(host));
}

void NetnsLab::heal(int host) {
  run_command(netns_script() + " heal " + prefix_ + " " + std::to_string(host));
}

void NetnsLab::block(int a, int b) {
  run_command(netns_script() + " block " + prefix_ + " " + std::to_string(a) + " " +
              std::to_string(b));
}

void NetnsLab::unblock(int a, int b) {
  run_command(netns_script() + " unblock " + prefix_ + " " + std::to_string(a) + " " +
              std::to_string(b));
}

}  // namespace tessera::testing
