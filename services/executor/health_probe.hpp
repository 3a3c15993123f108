#pragma once
// The network health checks (Mesos's HTTP and TCP checks), as plain blocking
// functions: the executor runs them on the node's blocking pool (its probe
// lane, Actor::blocking), never on its own thread. HTTP goes through
// cpp-httplib's client; TCP is a non-blocking connect bounded by poll().
//
// Only the loopback address is checked, as Mesos does: 127.0.0.1, or ::1
// for a task that listens on IPv6 (Mesos's protocol IPv6).
// Timing: a TCP check ends within about its timeout; an HTTP check's
// connect and its wait for the response are each bounded by the timeout,
// and a response that comes later than the timeout is a failure.
// Thread-safety: the functions share no state.

#include <chrono>
#include <cstdint>
#include <string>

namespace tessera {

enum class ProbeFamily { ipv4, ipv6 };

struct ProbeResult {
  bool healthy = false;
  std::string message;  // why it failed ("HTTP GET 127.0.0.1:8080/ returned 500"); or what passed
};

// Healthy when a TCP connection to 127.0.0.1:port (or [::1]:port) opens
// within timeout.
ProbeResult probe_tcp(uint16_t port, std::chrono::milliseconds timeout,
                      ProbeFamily family = ProbeFamily::ipv4);

// GET http://127.0.0.1:port<path> (or http://[::1]:port<path>); healthy when
// the response's status is 200-399 and it came within timeout. The body is
// not read.
ProbeResult probe_http(uint16_t port, const std::string& path, std::chrono::milliseconds timeout,
                       ProbeFamily family = ProbeFamily::ipv4);

}  // namespace tessera
