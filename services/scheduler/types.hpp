#pragma once
// The value types of the scheduler library (scheduler.hpp): what a framework
// says about itself, what it is offered, what it launches and what it hears
// back. Plain copyable C++ values; the library converts them to and from
// capnp/common.capnp and capnp/scheduler.capnp so framework code never builds
// or reads a Cap'n Proto message.

#include "runtime/address.hpp"
#include "runtime/clock.hpp"
#include "services/common/resources.hpp"
#include "services/common/wire.hpp"

#include <capnp/common.capnp.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera {

using TaskState = wire::TaskState;
using TaskReason = wire::TaskStatus::Reason;
using TaskSource = wire::TaskStatus::Source;
using FrameworkCapability = wire::FrameworkCapability;
using HealthCheckType = wire::HealthCheck::Type;

// Who a framework is (common.capnp FrameworkInfo).
struct FrameworkInfo {
  std::string name = "tessera-framework";
  std::string user;  // empty: the user this process runs as
  std::vector<std::string> roles = {"*"};
  std::string principal;
  // How long the master keeps the framework's tasks after it disconnects;
  // zero: they are killed as soon as it does.
  Duration failover_timeout = Duration::zero();
  std::vector<FrameworkCapability> capabilities;
  // Empty to register a new framework; an earlier id to fail over to it
  // (take over its tasks), as after a restart of the framework's process.
  std::string framework_id;
};

// Resources of one agent offered to this framework for one of its roles.
struct Offer {
  std::string id;
  std::string agent_id;
  std::string hostname;
  Address agent_address;  // where to read task sandboxes (read_sandbox_file)
  std::string role;       // the allocation role: which of the framework's roles
  Resources resources;
  std::vector<Attribute> attributes;
};

// A state change of one task (common.capnp TaskStatus).
struct TaskStatus {
  std::string task_id;
  TaskState state = TaskState::STAGING;
  TaskReason reason = TaskReason::NONE;
  TaskSource source = TaskSource::MASTER;
  std::string message;
  std::string agent_id;
  std::string executor_id;
  std::string uuid;  // bytes; non-empty: must be acknowledged
  std::optional<bool> healthy;
  int exit_code = -1;   // the command's exit code when it exited by itself
  int term_signal = 0;  // the signal that ended the command, if one did
  std::chrono::system_clock::time_point timestamp;

  bool terminal() const { return is_terminal(state); }
};

// A file the agent fetches into the task's sandbox before the task starts
// (common.capnp Uri; services/agent/fetcher.hpp says which sources work).
// If one cannot be fetched the task ends TASK_FAILED with reason
// FETCH_FAILED and a message naming the URI and the cause.
struct UriSpec {
  std::string value;        // http://host:port/path, file:///abs/path or /abs/path
  bool extract = true;      // unpack archives (.tar.gz, .tgz, .zip, ...) into the sandbox
  bool executable = false;  // chmod 0755 (and never extracted)
  bool cache = false;       // may be served from the agent's fetcher cache
};

// How the executor checks that a running task is healthy (common.capnp
// HealthCheck, after Mesos's). Each unset optional takes Mesos's default,
// carried by the schema: delay 15 s, interval 10 s, timeout 20 s,
// consecutive_failures 3, grace_period 10 s. A failed check within the
// grace period (from the task's start, until the first success) is not
// counted; consecutive_failures counted failures in a row kill the task,
// which ends TASK_FAILED with reason TASK_UNHEALTHY. Every change of the
// result arrives as a RUNNING update with TaskStatus::healthy set.
struct HealthCheckSpec {
  HealthCheckType type = HealthCheckType::COMMAND;
  std::string command;  // COMMAND: run with /bin/sh -c in the task's sandbox; exit 0 is healthy
  // HTTP and TCP: the port on 127.0.0.1, 1..65535 (wider than uint16_t so that
  // validate() can name a port out of range instead of wrapping it).
  uint32_t port = 0;
  std::string path = "/";            // HTTP: GET this path; status 200-399 is healthy
  bool ipv6 = false;                 // HTTP and TCP: check [::1] instead of 127.0.0.1
  std::optional<Duration> delay;     // from the task's start to the first check
  std::optional<Duration> interval;  // between checks
  std::optional<Duration> timeout;   // a check that takes longer has failed
  std::optional<uint32_t> consecutive_failures;
  std::optional<Duration> grace_period;
};

// A task to launch with accept(). Exactly one of shell and argv is set.
struct TaskSpec {
  std::string id;    // unique among the framework's tasks
  std::string name;  // for people; empty: the id
  // Empty: the agent of the accepted offers (the usual case).
  std::string agent_id;
  Resources resources;
  std::string shell;              // run with /bin/sh -c
  std::vector<std::string> argv;  // run directly; argv[0] looked up in PATH
  std::map<std::string, std::string> env;
  std::string user;  // empty: the framework's user
  // SIGTERM, then SIGKILL after this long; unset: the agent's default.
  std::optional<Duration> kill_grace;
  std::map<std::string, std::string> labels;
  // Fetched into the sandbox, in order, before the command starts.
  std::vector<UriSpec> uris;
  std::optional<HealthCheckSpec> health_check;
};

// A task named in reconcile() or kill(): its agent helps the master answer
// for tasks on agents it does not know.
struct TaskRef {
  std::string task_id;
  std::string agent_id;
};

// Bytes read from a task's sandbox and the file's whole size at the time.
struct SandboxData {
  std::string bytes;
  uint64_t file_size = 0;
};

// -- wire conversions (used by the library; exposed for tests and tools) ------

// An offer as the master sent it. Bad resources are an error value; a bad
// agent address leaves agent_address empty.
expected<Offer> from_wire(wire::Offer::Reader in);
TaskStatus from_wire(wire::TaskStatus::Reader in);
// Checks the spec: ids, exactly one command form, grace not negative, URIs
// not empty, and a health check's command (COMMAND) or port 1..65535 (HTTP,
// TCP), path, durations not negative and consecutive_failures at least 1.
caf::error validate(const TaskSpec& task);
void to_wire(const TaskSpec& task, wire::TaskInfo::Builder out);
void to_wire(const FrameworkInfo& info, wire::FrameworkInfo::Builder out);

// "TASK_FAILED" or "TASK_FAILED (Command exited with status 3)".
std::string describe(const TaskStatus& status);

}  // namespace tessera
