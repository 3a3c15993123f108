// Writes the seed corpora that need real encodings (serialized envelope
// batches, framed checkpoint records) or the record bytes of flows through
// the dispatch targets' templates: run once when a schema or a template
// list changes, and check in what it writes.
//
//   fuzz_seeds tests/fuzz/corpus

#include "runtime/envelope.hpp"
#include "runtime/message.hpp"
#include "runtime/simulation.hpp"
#include "tests/fuzz/agent_templates.hpp"
#include "tests/fuzz/master_templates.hpp"
#include "tests/fuzz/scheduler_templates.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/checkpoint.capnp.h>
#include <capnp/scheduler.capnp.h>
#include <capnp/testing.capnp.h>

#include <caf/binary_serializer.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using namespace tessera;

void write(const fs::path& file, const void* data, size_t size) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  std::printf("%s: %zu bytes\n", file.c_str(), size);
}

Envelope envelope_of(const Outgoing& msg, uint64_t request_id) {
  Envelope env;
  env.type_id = msg.type_id;
  env.sender = Address{"peer", "127.0.0.1", 9};
  env.receiver = Address{"sink", "sim", 10000};
  env.request_id = request_id;
  env.payload = msg.payload;
  return env;
}

void envelopes(const fs::path& dir) {
  std::vector<Outgoing> messages = {
      build<wire::testing::Ping>([](auto b) { b.setSeq(7); }),
      build<wire::RegisterAgent>([](auto b) {
        auto info = b.initAgentInfo();
        info.setAgentId("a1");
        info.setHostname("host-a");
      }),
      build<wire::RunTask>([](auto b) {
        b.initTask().setTaskId("t1");
        b.initFrameworkInfo().setFrameworkId("f1");
      }),
      build<wire::StatusUpdate>([](auto b) { b.initStatus().setTaskId("t1"); }),
      build<wire::SchedulerCall>([](auto b) { b.setFrameworkId("f1"); }),
      build<wire::SchedulerEvent>([](auto) {}),
  };
  Simulation sim(1);
  for (size_t i = 0; i < messages.size(); ++i) {
    EnvelopeBatch batch;
    batch.items.push_back(envelope_of(messages[i], i % 2));
    if (i + 1 < messages.size())
      batch.items.push_back(envelope_of(messages[i + 1], 0));
    std::vector<char> bytes;
    caf::binary_serializer sink(sim.system(), bytes);
    if (auto err = sink(batch)) {
      std::fprintf(stderr, "fuzz_seeds: cannot serialize a batch\n");
      std::exit(1);
    }
    write(dir / ("batch-" + std::to_string(i)), bytes.data(), bytes.size());
  }
}

// checkpoint.fuzz.cpp's input: kind, id, "frame it", two length bytes and
// the content, for each file.
void add_file(std::string& out, uint8_t kind, uint8_t id, const Outgoing& record) {
  auto words = record.payload.words();
  auto size = words.size() * sizeof(capnp::word);
  out.push_back(static_cast<char>(kind));
  out.push_back(static_cast<char>(id));
  out.push_back(1);
  out.push_back(static_cast<char>(size & 0xff));
  out.push_back(static_cast<char>(size >> 8));
  out.append(reinterpret_cast<const char*>(words.begin()), size);
}

void checkpoints(const fs::path& dir) {
  auto agent = build<wire::AgentRecord>([](auto b) {
    b.initAgentInfo().setAgentId("a1");
    b.setMasterAddress("master@127.0.0.1:5050");
  });
  auto framework = build<wire::FrameworkRecord>([](auto b) { b.initInfo().setFrameworkId("f1"); });
  auto run = build<wire::ExecutorRunRecord>([](auto b) {
    b.setFrameworkId("f1");
    b.setExecutorId("e1");
    b.setRunId("r1");
  });
  auto task = build<wire::TaskRecord>([](auto b) {
    b.setFrameworkId("f1");
    b.setExecutorId("e1");
    b.setRunId("r1");
  });
  std::string whole;
  add_file(whole, 0, 1, agent);
  add_file(whole, 1, 1, framework);
  add_file(whole, 2, 1, run);
  add_file(whole, 3, 1, task);
  write(dir / "agent-framework-run-task", whole.data(), whole.size());
  std::string agent_only;
  add_file(agent_only, 0, 0, agent);
  write(dir / "agent", agent_only.data(), agent_only.size());
}

// dns.fuzz.cpp's input: a transport byte, then a query for name of type,
// with an EDNS OPT record when edns.
void dns_query(const fs::path& file, bool tcp, const std::vector<std::string>& labels,
               uint16_t type, bool edns) {
  std::string out(1, tcp ? 1 : 0);
  const uint8_t header[] = {0x12, 0x34, 0x01, 0x00, 0, 1,
                            0,    0,    0,    0,    0, static_cast<uint8_t>(edns ? 1 : 0)};
  out.append(reinterpret_cast<const char*>(header), sizeof header);
  for (const auto& label : labels) {
    out.push_back(static_cast<char>(label.size()));
    out += label;
  }
  out.push_back(0);
  out.push_back(static_cast<char>(type >> 8));
  out.push_back(static_cast<char>(type & 0xff));
  out.append("\0\1", 2);  // class IN
  if (edns) {
    const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};  // 4096 bytes, no options
    out.append(reinterpret_cast<const char*>(opt), sizeof opt);
  }
  write(file, out.data(), out.size());
}

void dns(const fs::path& dir) {
  dns_query(dir / "a-task", false, {"web", "shop", "tessera"}, 1, false);
  dns_query(dir / "srv-task-edns", false, {"_web", "_tcp", "shop", "tessera"}, 33, true);
  dns_query(dir / "aaaa-agent-tcp", true, {"s1", "agents", "tessera"}, 28, false);
  dns_query(dir / "leader", false, {"leader", "tessera"}, 1, true);
  dns_query(dir / "outside", false, {"example", "org"}, 1, false);
}

void write(const fs::path& file, const std::string& bytes) {
  write(file, bytes.data(), bytes.size());
}

// Record bodies (fuzz_world.hpp): as a request, as the reply to request 1,
// the template with a few patches, and raw payload bytes.
const std::string as_request("\4\0", 2);
const std::string as_reply("\x08\1\0\0", 4);
const std::string patched("\0\3\0\1\x90\3\0\0\2\0\x40", 11);
const std::string raw_bytes("\3\0\0\0\0\1\0\0\0", 9);

void master_dispatch(const fs::path& dir) {
  using fuzz::record;
  using K = fuzz::MasterKind;
  using F = fuzz::MasterFrom;
  auto flow = fuzz::master_flow();
  write(dir / "flow", flow);
  write(dir / "lifecycle",
        flow + record(K::acknowledge, F::framework1) + record(K::kill, F::framework1) +
            record(K::update_finished, F::agent1) + record(K::acknowledge, F::framework1) +
            record(K::reconcile, F::framework1) + record(K::teardown, F::framework1));
  write(dir / "group",
        record(K::register_agent, F::agent1) + record(K::subscribe, F::framework1) +
            record(K::advance_time, 1) + record(K::accept_group, F::framework1) +
            record(K::executor_message, F::agent1) + record(K::framework_message, F::framework1) +
            record(K::exited_executor, F::agent1) + record(K::shutdown_executor, F::framework1));
  std::string ops = flow;
  for (uint8_t k = K::op_quota; k <= K::metrics; ++k)
    ops += record(k, F::operator1, as_request);
  write(dir / "operator", ops);
  write(dir / "reregister",
        record(K::subscribe, F::framework2) + record(K::reregister_agent, F::agent2) +
            record(K::reconcile, F::framework2) + record(K::advance_time, 1) +
            record(K::pong, F::agent2, as_reply) + record(K::decline, F::framework2) +
            record(K::suppress, F::framework2) + record(K::revive, F::framework2) +
            record(K::advance_time, 6));
  write(dir / "timeouts", flow + record(K::advance_time, 4) + record(K::advance_time, 7) +
                              record(K::advance_time, 7));
  write(dir / "strangers",
        record(K::allocator_offers, F::nobody) + record(K::register_agent, F::agent2, patched) +
            record(K::subscribe, F::framework2, raw_bytes) + record(K::update_running, F::nobody));
}

void scheduler_dispatch(const fs::path& dir) {
  using fuzz::record;
  using K = fuzz::SchedulerKind;
  using F = fuzz::SchedulerFrom;
  auto subscribed = record(K::subscribed, F::master);
  write(dir / "flow",
        subscribed + record(K::offers, F::master) + record(K::update_running, F::master) +
            record(K::sandbox_file, F::agent, as_reply) + record(K::update_failed, F::master) +
            record(K::update_reconciled, F::master) + record(K::executor_message, F::master) +
            record(K::failure, F::master) + record(K::rescind, F::master) +
            record(K::heartbeat, F::master));
  write(dir / "heartbeats-missed", subscribed + record(K::advance_time, 3) +
                                       record(K::advance_time, 5) + record(K::advance_time, 5) +
                                       subscribed + record(K::offers, F::master));
  write(dir / "leader-and-error", subscribed + record(K::not_leader, F::master) +
                                      record(K::advance_time, 1) + subscribed +
                                      record(K::error, F::master) + record(K::offers, F::master));
  write(dir / "strangers", record(K::offers, F::nobody) + subscribed +
                               record(K::offers, F::master, patched) +
                               record(K::update_running, F::agent, raw_bytes));
}

void agent_dispatch(const fs::path& dir) {
  using fuzz::record;
  using K = fuzz::AgentKind;
  using F = fuzz::AgentFrom;
  write(dir / "master", record(K::registered, F::master) + record(K::ping, F::master, as_request) +
                            record(K::kill_task, F::master) + record(K::ack, F::master) +
                            record(K::framework_message, F::master) +
                            record(K::shutdown_executor, F::master) +
                            record(K::shutdown_framework, F::master) + record(K::advance_time, 2) +
                            record(K::reregistered, F::master) + record(K::not_leader, F::master) +
                            record(K::advance_time, 3) + record(K::shutdown_agent, F::master));
  write(dir / "readers", record(K::container_usage, F::reader, as_request) +
                             record(K::read_sandbox, F::reader, as_request) +
                             record(K::read_sandbox, F::nobody, patched));
  write(dir / "executor", record(K::executor_subscribe, F::executor) +
                              record(K::executor_update, F::executor) +
                              record(K::executor_message, F::executor) +
                              record(K::executor_update, F::executor, raw_bytes));
}

// operator_api.fuzz.cpp's records: [kind][length u16][body]; kinds 0..21
// are its calls() (operator_call_types() and one unknown type), 22 raw JSON,
// 23 advance time.
void operator_api(const fs::path& dir) {
  auto call = [](uint8_t kind, const std::string& body) {
    return std::string{static_cast<char>(kind), static_cast<char>(body.size()), 0} + body;
  };
  for (uint8_t kind = 0; kind < 22; ++kind)
    write(dir / ("call-" + std::to_string(kind)), call(kind, std::string(1, '\0')));
  write(dir / "raw-and-time", call(22, R"({"type":"GET_TASKS","get_tasks":{"limit":1}})") +
                                  call(23, std::string(1, '\1')) + call(4, std::string(1, '\0')));
  write(dir / "writes", call(16, std::string(1, '\0')) + call(17, std::string(1, '\0')) +
                            call(14, std::string(1, '\0')) + call(13, std::string(1, '\0')) +
                            call(7, std::string(1, '\0')));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds CORPUS_DIR\n");
    return 2;
  }
  fs::path root(argv[1]);
  envelopes(root / "envelope");
  checkpoints(root / "checkpoint");
  dns(root / "dns");
  master_dispatch(root / "master_dispatch");
  scheduler_dispatch(root / "scheduler_dispatch");
  agent_dispatch(root / "agent_dispatch");
  operator_api(root / "operator_api");
  return 0;
}
