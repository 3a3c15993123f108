#pragma once
// The network health checks (Mesos's HTTP and TCP checks), as plain blocking
// functions on POSIX sockets: the executor runs them on the node's blocking
// pool (Actor::blocking), never on its own thread.
//
// Every call ends within about its timeout: each wait is a poll() bounded by
// what is left of it. Only 127.0.0.1 is checked, as Mesos does.
// Thread-safety: the functions share no state.

#include <chrono>
#include <cstdint>
#include <string>

namespace tessera {

struct ProbeResult {
  bool healthy = false;
  std::string message;  // why it failed ("HTTP GET 127.0.0.1:8080/ returned 500"); or what passed
};

// Healthy when a TCP connection to 127.0.0.1:port opens within timeout.
ProbeResult probe_tcp(uint16_t port, std::chrono::milliseconds timeout);

// GET http://127.0.0.1:port<path> with HTTP/1.0; healthy when the status
// line arrives within timeout and its code is 200-399.
ProbeResult probe_http(uint16_t port, const std::string& path, std::chrono::milliseconds timeout);

}  // namespace tessera
