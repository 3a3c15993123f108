// MemoryDisk: the in-memory disk of the chaos simulation. A crash keeps what
// was synced and loses the rest; a full disk fails writes with ENOSPC; the
// checkpoint code on it recovers what it made durable.

#include "services/agent/checkpoint.hpp"
#include "services/agent/checkpoint_writer.hpp"
#include "services/agent/disk.hpp"

#include <catch2/catch.hpp>

#include <cerrno>

using namespace tessera;
namespace ck = tessera::checkpoint;
namespace fs = std::filesystem;

namespace {

std::string read(MemoryDisk& disk, const fs::path& file) {
  auto bytes = disk.read_file(file, 1 << 20);
  return bytes ? *bytes : std::string("<") + what(bytes.error()) + ">";
}

Owned<wire::AgentRecord> agent_record(const std::string& id) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::AgentRecord>();
  r.initAgentInfo().setAgentId(id);
  r.getAgentInfo().setHostname("host-1");
  return Owned<wire::AgentRecord>(r.asReader());
}

}  // namespace

TEST_CASE("memory disk: a crash keeps synced content and entries and loses the rest") {
  MemoryDisk disk;
  REQUIRE(disk.make_dir("/w"));
  REQUIRE(disk.sync_dir("/"));
  // Synced content, synced entry: survives.
  REQUIRE(disk.write_new_file("/w/kept", "durable", true));
  // Entry synced, content never synced: comes back empty.
  REQUIRE(disk.write_new_file("/w/empty", "lost content", false));
  REQUIRE(disk.sync_dir("/w"));
  // Synced content, entry not synced.
  REQUIRE(disk.write_new_file("/w/unlinked", "lost entry", true));
  // A rename not followed by a directory sync is lost.
  REQUIRE(disk.write_new_file("/w/new", "v2", true));
  REQUIRE(disk.rename("/w/new", "/w/kept"));
  CHECK(read(disk, "/w/kept") == "v2");

  disk.crash();

  CHECK(read(disk, "/w/kept") == "durable");
  CHECK(disk.kind("/w/unlinked") == Disk::Kind::none);
  CHECK(disk.kind("/w/new") == Disk::Kind::none);
  CHECK(disk.kind("/w/empty") == Disk::Kind::file);
  CHECK(read(disk, "/w/empty").empty());
}

TEST_CASE("memory disk: a removal not synced comes back after a crash but a synced one does not") {
  MemoryDisk disk;
  REQUIRE(disk.make_dir("/w"));
  REQUIRE(disk.sync_dir("/"));
  REQUIRE(disk.write_new_file("/w/a", "a", true));
  REQUIRE(disk.write_new_file("/w/b", "b", true));
  REQUIRE(disk.sync_dir("/w"));
  REQUIRE(disk.remove("/w/a"));
  REQUIRE(disk.remove("/w/b"));
  REQUIRE(disk.sync_all("/w"));
  REQUIRE(disk.write_new_file("/w/c", "c", true));
  REQUIRE(disk.remove("/w/c"));
  disk.crash();
  CHECK(disk.kind("/w/a") == Disk::Kind::none);
  CHECK(disk.kind("/w/b") == Disk::Kind::none);
  CHECK(disk.kind("/w/c") == Disk::Kind::none);
  // Not synced: the removal is undone.
  REQUIRE(disk.write_new_file("/w/d", "d", true));
  REQUIRE(disk.sync_dir("/w"));
  REQUIRE(disk.remove("/w/d"));
  disk.crash();
  CHECK(read(disk, "/w/d") == "d");
  CHECK(disk.used_bytes() == 1);
}

TEST_CASE("memory disk: a full disk fails writes with ENOSPC and takes them again once freed") {
  MemoryDisk disk(10);
  REQUIRE(disk.make_dir("/w"));
  REQUIRE(disk.write_new_file("/w/a", "12345678", true));
  auto full = disk.write_new_file("/w/b", "123", true);
  REQUIRE_FALSE(full);
  CHECK(what(full.error()).find(std::strerror(ENOSPC)) != std::string::npos);
  CHECK(what(full.error()).find("/w/b") != std::string::npos);
  CHECK(disk.enospc_count() == 1);
  CHECK(disk.used_bytes() == 8);
  REQUIRE(disk.remove("/w/b"));
  REQUIRE(disk.remove("/w/a"));
  CHECK(disk.used_bytes() == 0);
  CHECK(disk.write_new_file("/w/b", "123", true));
  disk.set_capacity_bytes(0);
  CHECK_FALSE(disk.write_new_file("/w/c", "1", true));
  // Replacing a file by rename frees the old content.
  disk.set_capacity_bytes(6);
  REQUIRE(disk.write_new_file("/w/t", "456", true));
  REQUIRE(disk.rename("/w/t", "/w/b"));
  CHECK(disk.used_bytes() == 3);
  CHECK(read(disk, "/w/b") == "456");
}

TEST_CASE(
    "memory disk: checkpoint records written on it survive a crash; a full disk is an error") {
  auto disk = std::make_shared<MemoryDisk>();
  fs::path work("/sim/agent-1");
  REQUIRE(ck::write_agent(work, agent_record("S1").get(), *disk));
  // A removal is not synced: a crash brings the record back.
  REQUIRE(ck::remove_all(work, *disk));
  disk->crash();
  auto state = ck::recover(work, *disk);
  REQUIRE(state);
  CHECK(state->errors.empty());
  // remove_all syncs meta/ after removing agent.info: gone for good.
  CHECK_FALSE(state->agent);

  REQUIRE(ck::write_agent(work, agent_record("S2").get(), *disk));
  disk->crash();
  state = ck::recover(work, *disk);
  REQUIRE(state);
  REQUIRE(state->agent);
  CHECK(str(state->agent.get().getAgentInfo().getAgentId()) == "S2");

  disk->set_capacity_bytes(disk->used_bytes());
  auto full = ck::write_agent(work, agent_record("S3").get(), *disk);
  REQUIRE_FALSE(full);
  CHECK(what(full.error()).find(std::strerror(ENOSPC)) != std::string::npos);
  // The failed write left no temp file behind, and the old record stands.
  auto names = disk->list(ck::meta_dir(work));
  REQUIRE(names);
  CHECK(names->size() == 1);
  disk->crash();
  state = ck::recover(work, *disk);
  REQUIRE(state);
  CHECK(state->warnings.empty());
  CHECK(str(state->agent.get().getAgentInfo().getAgentId()) == "S2");
}

TEST_CASE("checkpoint writer inline: runs each write at once on the caller thread") {
  auto disk = std::make_shared<MemoryDisk>();
  std::vector<caf::error> failures;
  CheckpointWriter writer([&](const caf::error& e) { failures.push_back(e); }, 16, *disk, true);
  capnp::MallocMessageBuilder b;
  b.setRoot(agent_record("S1").get());
  std::vector<std::string> done;
  writer.write(ck::agent_path("/w"), ck::frame_record(b),
               [&](const caf::error& e) { done.push_back(e ? what(e) : "ok"); });
  // Done before write() returns: no thread.
  REQUIRE(done == std::vector<std::string>{"ok"});
  disk->set_capacity_bytes(0);
  writer.write(ck::agent_path("/w"), ck::frame_record(b),
               [&](const caf::error& e) { done.push_back(e ? what(e) : "ok"); });
  REQUIRE(done.size() == 2);
  CHECK(done[1].find(std::strerror(ENOSPC)) != std::string::npos);
  CHECK(failures.size() == 1);
  writer.flush();
}
