#pragma once
// Agent: one machine's share of the cluster (Mesos's slave). It registers its
// resources with the master, runs the tasks the master sends under executors,
// and owns every status update of those tasks until the master acknowledges it.
//
// Contracts (capnp/agent.capnp master <-> agent, capnp/executor.capnp agent <-> executor):
//  - Registration: RegisterAgent (no id yet) or ReregisterAgent (with its tasks)
//    is retried with jittered exponential backoff until AgentRegistered /
//    AgentReregistered arrives. Each carries the agent's boot id (and a
//    reregistration its episode number), so the master answers every retry
//    of one registration with the same id and never reconciles tasks twice
//    for one episode. Losing the master (its actor or connection, or
//    no Ping for ping_timeout_intervals pings) starts reregistration.
//  - Master messages are obeyed only from the configured master address;
//    anything else is counted (AgentMetrics), logged and dropped.
//  - A command task runs under its own CommandExecutor (executor id = task
//    id), in this node or in a `tessera executor` process (ExecutorMode).
//  - Each executor run is a container (isolator.hpp): its processes (the
//    executor process, or the task processes of an in-process executor) start
//    inside it, limited to the tasks' cpus and mem (plus a headroom for the
//    executor) and container_pids_max. When a run ends, its container is
//    destroyed, so nothing it started outlives it. A container that hits its
//    memory limit (the kernel's OOM killer, or the agent's polling under
//    posix isolation) ends its tasks as TASK_FAILED with reason
//    CONTAINER_LIMITATION_MEMORY (agent_containers.cpp).
//
// Invariants:
//  1. Status updates: an executor's update is stored, then acknowledged to the
//     executor, then forwarded. Per task only the oldest unacknowledged update
//     is in flight, resent with backoff until the master acknowledges its
//     uuid; they are sent only while registered and all resent on
//     (re)registration. None is dropped while the agent lives.
//  2. A task is forgotten only once its terminal update is acknowledged and
//     its executor has exited; its sandbox stays readable for the last
//     completed_tasks_max such tasks, until sandbox GC removes it (GC wins).
//  3. Every table is bounded (the *_max constants); bad input from any peer is
//     counted, logged at most at powers of two, and refused; the agent keeps serving.
//  4. Sandbox GC (agent_gc.cpp, sandbox_gc.hpp) removes only runs whose
//     executor has ended, off the actor's thread, at most
//     gc_removals_per_scan_max per gc_interval_ms.
//  5. The HTTP API (agent_http.hpp, agent_api.cpp) reads the agent's books
//     on its thread, through an Inbox (AgentHttpHandle); every file it reads
//     is read on the blocking pool, never on the actor's thread.
// Threading: an actor; handlers run one at a time. AgentMetrics may be read
// from any thread.

#include "runtime/actor.hpp"
#include "runtime/backoff.hpp"
#include "services/agent/checkpoint_writer.hpp"
#include "services/agent/fetcher.hpp"
#include "services/agent/isolator.hpp"
#include "services/agent/status_update_stream.hpp"
#include "services/common/resources.hpp"
#include "services/common/wire.hpp"
#include "services/election/detector.hpp"
#include "services/executor/owned.hpp"
#include "services/executor/simulated_tasks.hpp"
#include "services/http/server.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/executor.capnp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tessera {

namespace checkpoint {
struct RecoveredFramework;
}

enum class ExecutorMode : uint8_t {
  in_process,  // CommandExecutor actors on the agent's own node
  process,     // `<executor_binary> executor` child processes
};

// What the agent counts; tests and metrics read it from any thread.
struct AgentMetrics {
  std::atomic<uint64_t> registration_attempts{0};
  std::atomic<uint64_t> registrations{0};  // Registered + Reregistered accepted
  std::atomic<uint64_t> master_lost{0};
  std::atomic<uint64_t> leader_changes{0};          // the detector named another master
  std::atomic<uint64_t> not_leader_answers{0};      // a standby master named the leader
  std::atomic<uint64_t> refused_not_master{0};      // master-only message from elsewhere
  std::atomic<uint64_t> refused_executor_calls{0};  // unknown executor, wrong sender, ...
  std::atomic<uint64_t> refused_invalid{0};         // bad ids, duplicate task, limits
  // Launches sent for an earlier registration of this agent (they crossed a
  // reregistration), or of tasks an audit told the master never arrived.
  std::atomic<uint64_t> refused_stale_launches{0};
  std::atomic<uint64_t> registration_answers_stale{0};  // for an earlier episode or boot
  std::atomic<uint64_t> unknown_tasks{0};               // kill/ack/read of a task it does not know
  std::atomic<uint64_t> updates_received{0};            // fresh updates stored (executor + agent)
  std::atomic<uint64_t> updates_duplicate{0};
  std::atomic<uint64_t> updates_forwarded{0};  // StatusUpdate sends, retries included
  std::atomic<uint64_t> updates_retried{0};
  std::atomic<uint64_t> acks_unexpected{0};  // StatusUpdateAck for no waiting update
  std::atomic<uint64_t> tasks_launched{0};
  std::atomic<uint64_t> executors_exited{0};
  std::atomic<uint64_t> containers_destroyed{0};
  std::atomic<uint64_t> container_limitations{0};        // memory limits hit
  std::atomic<uint64_t> container_errors{0};             // prepare/destroy failures
  std::atomic<uint64_t> container_destroys_deferred{0};  // the pool was full: retried later
  std::atomic<uint64_t> usage_requests_refused{0};       // GetContainerUsage with the pool full
  std::atomic<uint64_t> fetches{0};                      // executor runs whose URIs were fetched
  std::atomic<uint64_t> fetch_failures{0};
  std::atomic<uint64_t> checkpoint_failures{0};
  std::atomic<uint64_t> checkpoint_refusals{0};  // task records the full writer queue refused
  std::atomic<uint64_t> gc_scans{0};
  std::atomic<uint64_t> gc_sandboxes_removed{0};  // executor run directories
  std::atomic<uint64_t> gc_failures{0};           // file system errors met by scans
};

class Agent;
class AgentStopper;
class AgentHttpHandle;

struct AgentConfig {
  Address master;  // master@host:port; with a detector, where to start until it names one
  // Follows the leading master (`--master zk://...`): on a change of leader
  // the agent reregisters with the new one. Null: `master` is the master.
  std::shared_ptr<MasterDetector> detector;
  std::filesystem::path work_dir;
  Resources resources;
  std::vector<Attribute> attributes;
  std::string hostname;  // empty: the node's host
  ExecutorMode executor_mode = ExecutorMode::in_process;
  std::string executor_binary;  // process mode: the `tessera` binary

  std::chrono::milliseconds registration_backoff_min_ms{50};
  std::chrono::milliseconds registration_backoff_max_ms{5000};
  std::chrono::milliseconds status_update_backoff_min_ms{2000};
  std::chrono::milliseconds status_update_backoff_max_ms{60000};
  // Between SIGTERM and SIGKILL when a kill names no grace period.
  std::chrono::milliseconds kill_grace_ms{3000};
  // An executor that has not subscribed by then fails its tasks and is killed.
  std::chrono::milliseconds executor_registration_timeout_ms{60000};
  // After a shutdown event (or losing an executor process's actor), how long
  // an executor has to end before it is killed.
  std::chrono::milliseconds executor_shutdown_grace_ms{5000};
  // How long an executor tries to resubscribe to this agent once lost.
  std::chrono::milliseconds executor_recovery_timeout_ms{15000};
  // After an executor process exits with tasks not yet ended, how long its
  // last updates (still in flight on its connection) may take to arrive.
  std::chrono::milliseconds executor_exit_drain_ms{1000};
  // A shutdown that forgets the checkpoints (a drain) first waits this long
  // at most for the master to acknowledge the last updates: once the
  // checkpoints are gone nothing would resend them.
  std::chrono::milliseconds shutdown_ack_wait_ms{1000};
  // The master counts as lost after this many ping intervals without a Ping.
  uint32_t ping_timeout_intervals = 5;
  uint64_t seed = 0;  // backoff jitter and update uuids; 0: std::random_device
  // Names this agent process in every (re)registration, so the master tells
  // a retry from a restart. Empty: made at start (random; with a seed, from
  // the seed and the runtime clock, so a simulation replays it).
  std::string boot_id;

  // Containers. Null isolator: posix isolation scoped by work_dir.
  std::shared_ptr<Isolator> isolator;
  bool pid_namespace = false;  // each task is pid 1 of its own PID namespace
  // Added to a container's memory limit for the executor itself: a
  // `tessera executor` process (CAF, Cap'n Proto, its node) reaches about
  // 30 MiB resident under load, and with 32 MiB a task asking for 1 MiB was
  // killed for the executor's own memory (seen in the 200-client test).
  uint64_t executor_mem_headroom_bytes = uint64_t{64} << 20;
  uint32_t container_pids_max = 4096;
  // How often usage is read to notice OOM kills and posix memory overuse.
  std::chrono::milliseconds container_monitor_interval_ms{1000};

  // Checkpoint to <work_dir>/meta and recover from it on start
  // (agent_recovery.cpp). A recovered executor process that has not
  // resubscribed within this is killed.
  bool checkpoint = true;
  // Where checkpoints go; null: the real file system. The chaos simulation
  // gives each agent a MemoryDisk that outlives its crashes.
  std::shared_ptr<Disk> disk;
  std::chrono::milliseconds executor_reregistration_timeout_ms{10000};
  // A corrupt checkpoint record stops the agent as it starts (Mesos's
  // --strict); false: it is skipped with a warning (`--no-strict`).
  bool strict_recovery = true;
  // After a checkpoint write fails, the agent takes no new task and writes
  // its records again this often until a write succeeds.
  std::chrono::milliseconds checkpoint_retry_ms{1000};

  // Tasks run as their user (agent_users.cpp): the task's CommandInfo.user,
  // else its framework's FrameworkInfo.user, else the agent's own. The
  // task's process switches to that user before it execs (its executor
  // stays the agent's: root), its sandbox and what the agent puts in it are
  // the user's, and a user this machine does not know fails the task
  // (TASK_FAILED, CONTAINER_LAUNCH_FAILED) before anything runs. Takes
  // effect only while the agent runs as root; `tessera agent` turns it on
  // (--switch-user). Off: every task runs as the agent's user and the user
  // a task names is ignored (logged), as Mesos's --switch_user=false.
  bool switch_user = false;
  // Executors and tasks never get the agent's environment: only PATH (the
  // agent's, else a default), the agent's TESSERA_LOG_LEVEL for a process
  // executor's own log, and the agent's variables named here, when set
  // (`--executor-env-allow`). A task adds its own (CommandInfo.environment).
  std::vector<std::string> executor_env_allow{"LANG", "LC_ALL", "TZ"};

  // Task URIs are fetched into the sandbox before the executor starts;
  // cached ones in <work_dir>/fetcher-cache, at most this many bytes.
  FetcherConfig fetcher;
  uint64_t fetcher_cache_bytes_max = uint64_t{2} << 30;

  // Sandbox GC (sandbox_gc.hpp): an ended run's sandbox stays
  // gc_delay_ms * max(0, 1 - gc_disk_headroom - disk used fraction).
  std::chrono::milliseconds gc_delay_ms{std::chrono::hours(24 * 7)};
  double gc_disk_headroom = 0.1;                    // in [0, 1)
  std::chrono::milliseconds gc_interval_ms{60000};  // 0: no GC

  // In-process executors run their tasks as simulated processes (the chaos
  // simulation, services/sim); null: real processes.
  std::shared_ptr<SimulatedTasks> simulated_tasks;

  std::shared_ptr<AgentMetrics> metrics = std::make_shared<AgentMetrics>();
  // Called on the agent's thread each time it (re)registers; must not block.
  std::function<void(const std::string& agent_id)> on_registered;
  // Called once as the agent ends (ShutdownAgent, node stop); must not block.
  std::function<void()> on_stopped;
  // Called on the agent's thread when it stops because it cannot go on (a
  // corrupt checkpoint under strict_recovery), before on_stopped.
  std::function<void(const std::string& why)> on_fatal;
  // Set: the agent makes it able to stop it from outside (AgentStopper).
  std::shared_ptr<AgentStopper> stopper;

  // The HTTP API (agent_http.hpp). http_address is HOST:PORT of this agent's
  // AgentHttp, sent in every (re)registration's AgentInfo; empty: none. Set
  // http: the agent attaches an inbox of http_inbox_capacity items to it,
  // through which the edge's requests run on the agent's thread.
  std::string http_address;
  std::shared_ptr<AgentHttpHandle> http;
  size_t http_inbox_capacity = 10'000;
  // READ_FILE "follow" streams: at most followers_max at once, each file's
  // size polled every follow_poll_ms.
  size_t followers_max = 1000;
  std::chrono::milliseconds follow_poll_ms{250};
};

// How the HTTP edge reaches an Agent: made before the agent (the edge starts
// first, so that its address goes into the registration), attached by the
// agent as it is made. post() refuses until then, once the agent is gone, and
// while its inbox is full. Thread-safe.
class AgentHttpHandle {
 public:
  // Runs fn on the agent's thread with the agent; false (fn dropped) when it
  // cannot be queued.
  bool post(std::function<void(Agent&)> fn);
  // Items waiting in the agent's inbox (0 before it is attached).
  size_t queued() const;
  // For the agent's constructor.
  void attach(std::shared_ptr<Inbox> inbox, Agent* agent);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Inbox> inbox_;  // guarded by mu_
  // Only dereferenced inside posted items, which run on the agent's thread
  // while it lives (an exited actor's inbox drops them unrun).
  Agent* agent_ = nullptr;
};

// A READ_FILE call with "follow" (framework_id may be empty: then the only
// task of that id on the agent).
struct SandboxFollow {
  std::string framework_id;
  std::string task_id;
  std::string path;    // relative to the sandbox
  int64_t offset = 0;  // where the stream starts; negative: at the file's end
};

// Stops an agent from any thread (`tessera agent` on a signal).
//  - stop(false) keeps the work: the agent ends but its executor processes
//    run on and its checkpoints stay, for the next agent on the same work
//    dir to take them back (an upgrade, `systemctl restart`).
//  - stop(true) drains: every executor is shut down (its tasks killed), the
//    checkpoints are removed, and the next start is a new agent.
// False when the agent has not started yet.
class AgentStopper {
 public:
  bool stop(bool drain);

 private:
  friend class Agent;
  std::mutex mu_;
  std::function<void()> keep_;
  std::function<void()> drain_;
};

// This machine's resources: cpus (hardware threads), mem (RAM in MiB minus
// min(1 GiB, half)), disk (work_dir's file system in MiB minus min(5 GiB,
// half)), ports [31000-32000].
expected<Resources> detect_resources(const std::filesystem::path& work_dir);
// given, plus every detected resource whose name given does not mention.
Resources merge_resources(const Resources& given, const Resources& detected);

// A stable isolation scope for the agent that uses work_dir: "agent-<hash>".
std::string isolation_scope(const std::filesystem::path& work_dir);

class Agent : public Actor {
 public:
  static constexpr size_t tasks_max = 10000;
  static constexpr size_t executors_max = 10000;
  static constexpr size_t completed_tasks_max = 1000;
  static constexpr size_t gc_removals_per_scan_max = 100;
  static constexpr size_t never_launch_max = 10000;
  static constexpr const char* version = "tessera 0.1.0";

  Agent(caf::actor_config& cfg, ActorInit init, AgentConfig config);

  // -- the HTTP API (agent_api.cpp, agent_follow.cpp) -------------------------
  // Run on this actor's thread, posted by AgentHttp through config.http. Each
  // answers through the Responder (thread-safe), at once or from the
  // blocking pool; nothing here reads a file on this thread.
  //
  // GET_HEALTH, GET_VERSION, GET_AGENT, GET_STATE, GET_TASKS, GET_EXECUTORS,
  // GET_FRAMEWORKS: from the agent's own books.
  void api_read(const std::string& type, const http::Responder& responder) const;
  // GET_CONTAINERS: limits, and usage read on the blocking pool's usage lane.
  void api_containers(const http::Responder& responder);
  // GET /metrics (Prometheus text) or /metrics/snapshot (Mesos keys), with
  // the edge's own gauges and counters added.
  void api_metrics(bool prometheus, std::vector<std::pair<std::string, double>> edge,
                   const http::Responder& responder);
  // Runs job with the named task's sandbox directory on the blocking pool;
  // else refuse gets, at once, 404 (no such task, or no sandbox yet), 400
  // (framework_id omitted and the task id is not unique here) or 503 (the
  // pool is full).
  using SandboxJob = std::function<void(const std::string& sandbox)>;
  // Asked with the roles of the task's framework (empty: the framework is
  // no longer known here) before its sandbox is touched; false: it has
  // answered the refusal itself (the ACLs' access_sandboxes). Null: allowed.
  using SandboxAccess = std::function<bool(const std::vector<std::string>& roles)>;
  void api_sandbox(const std::string& framework_id, const std::string& task_id, SandboxJob job,
                   const std::function<void(http::Response)>& refuse,
                   const SandboxAccess& access = nullptr);
  // READ_FILE with follow: a RecordIO stream of the file's new bytes until
  // the task has ended and all was sent, or the client goes away.
  void api_follow(const SandboxFollow& follow, const http::Responder& responder,
                  const SandboxAccess& access = nullptr);

 private:
  using Key = std::pair<std::string, std::string>;  // (framework id, task or executor id)
  using Reason = wire::TaskStatus::Reason;

  struct Task {
    std::string framework_id;
    std::string task_id;
    std::string executor_id;  // empty: it never got one
    std::filesystem::path sandbox;
    Owned<wire::TaskInfo> info;
    StatusUpdateStream stream;
    TimerId retry_timer = 0;
    Backoff retry_backoff{BackoffPolicy{}};
    bool kill_requested = false;
    // The user its executor runs it as (in the launch's CommandInfo.user);
    // empty: the executor's own, the agent's.
    std::string run_as;
    bool record_durable = false;  // a write of its checkpoint record succeeded
    // Updates taken so far, and how many of them are on disk: an update is
    // forwarded to the master only once durable (as Mesos's status update
    // manager), so a crash can never make the agent contradict what the
    // framework heard. The front update's index is added - pending. A task
    // whose record never reached the disk is exempt: nothing of it ran, a
    // restarted agent does not know it, so nothing can contradict its update
    // (a launch that failed for want of disk is reported at once).
    uint64_t updates_added = 0;
    uint64_t updates_durable = 0;
    bool front_durable() const {
      return !record_durable || updates_added - stream.pending() < updates_durable;
    }
    // Executor updates taken and not yet on disk: acknowledged to the
    // executor once their checkpoint is written.
    std::vector<std::string> ack_after_write;
  };
  // An executor run's container, while it exists.
  struct Container {
    bool active = false;  // prepared and not yet destroyed
    ContainerLimits limits;
    uint32_t oom_kills = 0;            // as last read
    Reason limitation = Reason::NONE;  // set once a limit was hit
    std::string limitation_message;
  };
  // A directory of a run handed to a task's user before its executor
  // starts: its owner, and with recursive, what was fetched into it.
  struct SandboxOwner {
    std::filesystem::path dir;
    uint32_t uid = 0;
    uint32_t gid = 0;
    bool recursive = true;
  };
  struct Executor {
    std::string framework_id;
    std::string executor_id;
    std::string run_id;
    std::filesystem::path sandbox;
    std::string actor_name;       // in-process mode
    Address address;              // in-process: from spawn; process: its subscribe
    int pid = 0;                  // process mode, until it exits
    uint64_t pid_start_time = 0;  // process_start_time(pid), checkpointed beside it
    bool recovered = false;       // taken back from a checkpoint by this agent
    bool starting = false;        // its record is being written; no process yet
    bool subscribed = false;
    bool shutdown_requested = false;
    bool destroyed = false;            // killed by the agent, not ended by itself
    bool group = false;                // its tasks go out in one launchGroup
    bool fetching = false;             // its tasks' URIs are being fetched
    Placement placement;               // of its container
    std::vector<SandboxOwner> owners;  // in order; empty: the sandbox stays the agent's
    std::vector<std::string> tasks;    // ids of every task it was given
    std::vector<std::string> queued;   // launched once it subscribes
    TimerId registration_timer = 0;
    TimerId kill_timer = 0;
    Container container;
  };
  struct Completed {
    Key task;
    std::filesystem::path sandbox;
    // For the HTTP API's completed_tasks.
    std::string executor_id;
    wire::TaskState state = wire::TaskState::STAGING;
    Owned<wire::TaskInfo> info;
    // Its framework's principal (FrameworkInfo.principal), for sandbox reads
    // after the framework itself is forgotten.
    std::string principal;
  };
  // A READ_FILE follow stream (agent_follow.cpp).
  struct Follower {
    Key task;
    std::string sandbox;
    std::string path;
    uint64_t offset = 0;  // of the next byte to send
    std::shared_ptr<http::Stream> stream;
    bool busy = false;  // a read of it is on the blocking pool
  };
  struct FollowStep;

  void on_start() override;
  // Drops the failure report armed in checkpoint_health_: a continuation,
  // it holds a strong handle to this actor (found by LeakSanitizer: every
  // agent of a chaos-simulation seed leaked).
  void on_stopping() override;
  void install_master_handlers();
  void install_executor_handlers();
  void on_peer_lost(const Address& peer, const caf::error& why);

  // The master link (agent.cpp).
  bool from_master(const Address& sender, const char* what);
  void try_register();
  Outgoing registration() const;
  std::string make_boot_id() const;
  void fill_agent_info(wire::AgentInfo::Builder b) const;
  void on_registered(const std::string& agent_id, int64_t ping_interval_ns, const std::string& boot,
                     uint64_t seq);
  // Answers the master's liveness check and its audit of STAGING tasks.
  void on_ping(const Received<wire::Ping>& m);
  void never_launch(const Key& key);
  // Whether a launch stamped with this registration may run here.
  bool launch_allowed(const std::string& boot, uint64_t seq, const std::string& what);
  void on_master_lost(const std::string& why);
  // Reads the detector's view and goes to a new leader; armed again each time.
  void follow_leader();
  // A standby master named the leader (no detector: --master HOST:PORT).
  void on_not_leader(const std::string& leader);
  void arm_ping_timer();
  void shutdown_agent(const std::string& reason);
  void remember_framework(wire::FrameworkInfo::Reader info);
  void maybe_forget_framework(const std::string& framework_id);
  void refuse(std::atomic<uint64_t>& counter, const std::string& what);

  // Tasks and executors (agent_executors.cpp).
  void run_task(const Received<wire::RunTask>& m);
  void run_task_group(const Received<wire::RunTaskGroup>& m);
  Task* add_task(const std::string& framework_id, wire::TaskInfo::Reader info);
  void launch_command_task(Task& task);
  void launch_executor(const std::string& framework_id, const std::string& executor_id,
                       const std::vector<Task*>& tasks, bool group);
  bool fetch_uris(Executor& e);
  void on_fetched(const Key& key, const std::string& run_id, const caf::error& error,
                  Reason reason = Reason::FETCH_FAILED);
  void start_run(const Key& key);
  void on_run_checkpointed(const Key& key, const std::string& run_id, const caf::error& error);
  void launch_run(const Key& key);
  expected<void> start_executor(Executor& e, const Placement& placement);
  bool refuse_launch(const std::vector<Task*>& tasks);
  std::string in_work_dir(std::string text) const;
  void drop_unlaunched(Task& task, Reason reason, const std::string& why);
  void kill_task(const Received<wire::KillTask>& m);
  void shutdown_executor(const Key& key);
  void destroy_executor(const Key& key);
  std::function<void(const ProcessExit&)> executor_exit_hook(const Key& key,
                                                             const std::string& run_id);
  void executor_exited(const Key& key, int status);
  void executor_terminated(const Key& key, int status);
  void on_executor_call(const Received<wire::ExecutorCall>& m);
  void on_executor_subscribe(Executor& e, const Address& sender,
                             wire::ExecutorCall::Subscribe::Reader sub);
  void on_executor_update(Executor& e, wire::TaskStatus::Reader status);
  void acknowledge_executor(const Executor& e, const std::string& task_id,
                            const std::vector<std::string>& uuids);
  void on_executor_lost(const Key& key);
  Outgoing executor_event(const std::function<void(wire::ExecutorEvent::Builder)>& fill) const;

  // Users and environments (agent_users.cpp).
  void choose_switch_user();
  expected<std::optional<UserIdentity>> task_user(const Task& task) const;
  caf::error choose_users(Executor& e, const std::vector<Task*>& tasks);
  static caf::error hand_over(const std::vector<SandboxOwner>& owners);
  void set_run_as(wire::TaskInfo::Builder info, const Task& task) const;
  std::vector<std::string> executor_environment(const Executor& e,
                                                const Placement& placement) const;

  // Containers (agent_containers.cpp).
  expected<Placement> prepare_container(Executor& e, const Resources& resources);
  bool check_limitation(Executor& e, const ContainerStats* known = nullptr);
  void destroy_container(Executor& e);
  // Destroys a container by id on the container lane of the blocking pool;
  // when that lane is full, later (destroy_backlog_), never on this thread.
  void destroy_container_id(const std::string& id);
  void retry_destroys();
  void arm_container_monitor();
  void monitor_containers();
  void on_container_usage(const std::map<std::string, ContainerStats>& usage);
  void on_get_usage(const Received<wire::GetContainerUsage>& m);
  // Containers not yet destroyed, shared with the destroy jobs and the exit hook.
  struct ContainerBook {
    std::mutex mu;
    std::set<std::string> ids;
  };
  static void destroy_containers(const std::shared_ptr<Isolator>& isolator, ContainerBook& book);

  // Checkpoints and recovery (agent_recovery.cpp).
  CheckpointWriter::Done on_written(std::function<void(const caf::error&)> then);
  void arm_checkpoint_failure_report();
  void on_checkpoint_failure();
  void retry_checkpoints();
  void checkpoint_failed(const caf::error& err);
  void checkpoint_agent();
  void checkpoint_framework(const std::string& framework_id);
  void checkpoint_run(const Executor& e, CheckpointWriter::Done done = {});
  void checkpoint_task_later(const Key& key);
  void flush_checkpoints();
  // The writer's queue was full: the task's record is written later.
  void checkpoint_task_retry(const Key& key);
  // A removal in order with the writes; a full queue is reported as a failure.
  void run_checkpoint_op(std::function<caf::error()> op);
  void forget_checkpointed_task(const Key& key);
  void forget_checkpointed_run(const Executor& e);
  void forget_checkpointed_framework(const std::string& framework_id);
  void forget_all_checkpoints();
  bool recover();
  std::pair<int, uint64_t> running_process(wire::ExecutorRunRecord::Reader run,
                                           const std::string& framework_id);
  void recover_framework(const std::string& framework_id, checkpoint::RecoveredFramework& fw,
                         std::set<std::string>& claimed);
  void on_recovered_subscribe(const Key& key);
  void start_over(const std::string& reason);
  void finish_shutdown();
  void stop_keeping_work();
  void fail_to_start(const std::string& why);

  // Status updates and sandboxes (agent_updates.cpp).
  StatusUpdateStream::Added ingest(Task& task, wire::TaskStatus::Reader status);
  void agent_update(Task& task, wire::TaskState state, Reason reason, const std::string& message);
  void forward(Task& task);
  void forward_all();
  void on_ack(const Received<wire::StatusUpdateAck>& m);
  void maybe_forget(const Key& key);
  void on_read_sandbox(const Received<wire::ReadSandboxFile>& m);
  const std::filesystem::path* sandbox_of(const Key& task) const;
  // The status update retries' backoff a task starts with.
  Backoff status_update_backoff() const;

  // The HTTP API's helpers (agent_api.cpp, agent_follow.cpp).
  // The task a call names, or nothing after answering 404 / 400.
  std::optional<Key> api_task(const std::string& framework_id, const std::string& task_id,
                              const std::function<void(http::Response)>& refuse) const;
  bool task_ended(const Key& key) const;
  // The roles of a task's framework, as this agent knows them.
  std::vector<std::string> framework_roles(const std::string& framework_id) const;
  std::string api_state_json(const std::string& type) const;
  std::string prometheus_text(const std::vector<std::pair<std::string, double>>& edge);
  std::vector<std::pair<std::string, double>> snapshot_values(
      const std::vector<std::pair<std::string, double>>& edge);
  void start_follower(Follower f);
  void arm_follow_timer();
  void follow_tick();
  void followed(const std::vector<std::pair<uint64_t, FollowStep>>& steps);
  void close_followers();

  // Sandbox GC (agent_gc.cpp).
  void arm_gc();
  void start_gc_scan();
  void mark_run_ended(const std::filesystem::path& sandbox) const;

  AgentConfig config_;
  // Tasks switch to their users: config_.switch_user, and the agent is root.
  bool switch_user_ = false;
  // PATH and the allow-listed variables of the agent's environment, read
  // once as it starts: what executors and tasks start from.
  std::vector<std::string> base_env_;
  Address master_;  // the master obeyed and registered with (config_.master, or the leader)
  AgentMetrics& metrics_;
  std::mt19937_64 rng_;
  std::string agent_id_;  // empty until the first registration
  std::string boot_id_;   // this process's, made at start
  // This boot's reregistration episode: every retry of one carries the
  // same number; losing the master starts the next.
  uint64_t registration_seq_ = 1;
  bool registered_ = false;
  bool shutting_down_ = false;
  // A shutdown that ends with every checkpoint forgotten (a drain, or the
  // master's ShutdownAgent): no later agent recovers anything, so updates
  // are forwarded without waiting for their records.
  bool forgetting_ = false;
  TimerId shutdown_ack_timer_ = 0;  // a shutdown waits for acks until it fires
  bool shutdown_ack_waited_ = false;
  bool recovered_ = false;  // agent_id_ came from a checkpoint; no master has taken it yet
  // What the checkpoint writer's thread tells the actor about failed writes.
  struct CheckpointHealth {
    std::mutex mu;
    caf::error last_error;         // guarded by mu
    uint64_t failures = 0;         // guarded by mu
    std::function<void()> report;  // the actor's continuation, armed once at a time
  };
  std::shared_ptr<CheckpointHealth> checkpoint_health_ = std::make_shared<CheckpointHealth>();
  caf::error checkpoint_error_;  // set: writes fail, no new task is taken
  // During recovery: run id -> (pid, start time) of the executor processes
  // found running (read from /proc once, when a run record has no pid).
  std::optional<std::map<std::string, std::pair<int, uint64_t>>> run_processes_;
  TimerId checkpoint_retry_timer_ = 0;
  Disk* disk_ = nullptr;                      // config_.disk, or posix_disk()
  std::unique_ptr<CheckpointWriter> writer_;  // null: checkpointing off
  std::set<Key> dirty_tasks_;                 // task records to write at the end of this handler
  bool flush_scheduled_ = false;
  TimerId checkpoint_backpressure_timer_ = 0;  // task records refused by a full writer queue
  Backoff registration_backoff_;
  TimerId registration_timer_ = 0;
  Duration ping_interval_{0};
  TimerId ping_timer_ = 0;
  std::shared_ptr<Isolator> isolator_;
  std::shared_ptr<FetcherCache> fetcher_cache_;  // null: caching off (it could not open)
  std::shared_ptr<Fetcher> fetcher_;
  std::shared_ptr<ContainerBook> containers_ = std::make_shared<ContainerBook>();
  TimerId monitor_timer_ = 0;
  std::deque<std::string> destroy_backlog_;  // refused by a full pool; at most one per container
  TimerId destroy_retry_timer_ = 0;
  TimerId gc_timer_ = 0;
  bool gc_scanning_ = false;
  std::map<Key, Task> tasks_;
  std::map<Key, Executor> executors_;
  std::map<Address, Key> executor_by_address_;
  std::map<std::string, Owned<wire::FrameworkInfo>> frameworks_;
  std::deque<Completed> completed_;
  // Terminal updates taken, by state (the metrics' tasks_finished, ...).
  std::map<wire::TaskState, uint64_t> terminal_counts_;
  TimePoint started_at_{};
  std::map<uint64_t, Follower> followers_;  // at most config_.followers_max with follow_pending_
  size_t follow_pending_ = 0;               // follows whose file is being checked
  uint64_t next_follower_ = 1;
  TimerId follow_timer_ = 0;
  // Tasks the master's audit asked about that this agent never got: their
  // launch is refused should it still arrive (at most never_launch_max).
  std::set<Key> never_launch_;
  std::deque<Key> never_launch_order_;
};

}  // namespace tessera
