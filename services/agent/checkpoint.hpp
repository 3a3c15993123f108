#pragma once
// Agent checkpoints: what a restarted agent needs to recover its executors
// and tasks, kept as small files under <work_dir>/meta/ (Mesos's slave
// checkpoints). Schema: capnp/checkpoint.capnp. No actor code; the agent
// calls these from its blocking pool.
//
// Layout (one record per file, so one task change rewrites one small file):
//   meta/agent.info                                        AgentRecord
//   meta/frameworks/F/framework.info                       FrameworkRecord
//   meta/frameworks/F/executors/E/runs/R/run.info          ExecutorRunRecord
//   meta/frameworks/F/tasks/T/task.info                    TaskRecord
//
// Contracts:
//  1. A record file is either its previous content or its new content, never
//     a mix: write_atomically writes a temp file in the same directory,
//     fsyncs it, renames it over the record and fsyncs the directory.
//  2. Each record file is framed (magic, length, checksum) so that a
//     truncated or corrupted file is detected, not misread.
//  3. Records are bounded: one over record_bytes_max is refused on write and
//     on read; recover() reads at most records_max records.
//  4. recover() fails only when meta/ cannot be listed at all. A record that
//     cannot be read (truncated, undecodable, a bad checksum, ids that
//     disagree with its path) is corrupt: skipped and named in errors, for
//     the agent to refuse to start on (strict) or to warn about. Leftovers of
//     interrupted writes and removals (temp files, which never hold
//     committed state and are deleted; directories without their record)
//     and unknown files are named in warnings.
//  5. Ids become path components: empty ids, ".", "..", and ids holding '/'
//     or NUL are refused (invalid_argument).
// Every function works on disk (the real file system unless told otherwise:
// the chaos simulation passes a MemoryDisk).
// Thread-safety: free functions; callers serialise writes to one record.

#include "runtime/error.hpp"
#include "services/agent/disk.hpp"
#include "services/executor/owned.hpp"

#include <capnp/checkpoint.capnp.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::checkpoint {

namespace fs = std::filesystem;

// Largest record file, header included: far above a task with
// StatusUpdateStream::pending_max updates waiting.
inline constexpr size_t record_bytes_max = size_t{8} << 20;
// Most records recover() reads before it stops with a warning (the agent
// keeps at most 10,000 tasks and 10,000 executors).
inline constexpr size_t records_max = 100000;

// Paths of the layout above.
fs::path meta_dir(const fs::path& work_dir);
fs::path agent_path(const fs::path& work_dir);
fs::path framework_path(const fs::path& work_dir, std::string_view framework_id);
fs::path executor_run_path(const fs::path& work_dir, std::string_view framework_id,
                           std::string_view executor_id, std::string_view run_id);
fs::path task_path(const fs::path& work_dir, std::string_view framework_id,
                   std::string_view task_id);

// Replaces file's content with bytes atomically and durably (contract 1),
// creating missing parent directories (each fsynced into its parent).
expected<void> write_atomically(const fs::path& file, std::string_view bytes,
                                Disk& disk = posix_disk());
// The same with message, framed as a record (contract 2).
expected<void> write_atomically(const fs::path& file, capnp::MessageBuilder& message,
                                Disk& disk = posix_disk());
// write_atomically for many records at once (group commit): every temp file
// is written, one syncfs makes them durable, then each is renamed and a
// second syncfs makes the renames durable. Two syncs for the batch instead
// of two fsyncs per record. One error (or none) per record, in order.
std::vector<caf::error> write_all_atomically(
    const std::vector<std::pair<fs::path, std::string_view>>& records, Disk& disk = posix_disk());

// The framed bytes write_atomically(file, message) writes, for a writer that
// writes them later (CheckpointWriter).
std::string frame_record(capnp::MessageBuilder& message);

// A record file's content as Cap'n Proto words, its framing checked.
expected<kj::Array<capnp::word>> read_record_words(const fs::path& file, Disk& disk = posix_disk());

// Reads and validates the record at file (copied, so it owns its memory).
template <class T>
expected<Owned<T>> read_record(const fs::path& file, Disk& disk = posix_disk());

// Typed records. Writers take ids from the record itself and refuse records
// whose ids are missing or unsafe; readers check that the ids inside match
// the ones asked for.
expected<void> write_agent(const fs::path& work_dir, wire::AgentRecord::Reader record,
                           Disk& disk = posix_disk());
expected<Owned<wire::AgentRecord>> read_agent(const fs::path& work_dir, Disk& disk = posix_disk());

expected<void> write_framework(const fs::path& work_dir, wire::FrameworkInfo::Reader info,
                               Disk& disk = posix_disk());
expected<Owned<wire::FrameworkRecord>> read_framework(const fs::path& work_dir,
                                                      std::string_view framework_id,
                                                      Disk& disk = posix_disk());

expected<void> write_executor_run(const fs::path& work_dir, wire::ExecutorRunRecord::Reader record,
                                  Disk& disk = posix_disk());
expected<Owned<wire::ExecutorRunRecord>> read_executor_run(const fs::path& work_dir,
                                                           std::string_view framework_id,
                                                           std::string_view executor_id,
                                                           std::string_view run_id,
                                                           Disk& disk = posix_disk());

// The record's task.taskId names it.
expected<void> write_task(const fs::path& work_dir, wire::TaskRecord::Reader record,
                          Disk& disk = posix_disk());
expected<Owned<wire::TaskRecord>> read_task(const fs::path& work_dir, std::string_view framework_id,
                                            std::string_view task_id, Disk& disk = posix_disk());

// Removal: the record file first (so a crash leaves no half record), then
// its directory. Removing what does not exist succeeds. Not fsynced: a
// crash may bring a removed record back, and recovery then finds its task
// or run over again.
expected<void> remove_framework(const fs::path& work_dir, std::string_view framework_id,
                                Disk& disk = posix_disk());
expected<void> remove_executor_run(const fs::path& work_dir, std::string_view framework_id,
                                   std::string_view executor_id, std::string_view run_id,
                                   Disk& disk = posix_disk());
expected<void> remove_task(const fs::path& work_dir, std::string_view framework_id,
                           std::string_view task_id, Disk& disk = posix_disk());
// Forgets everything (the master told the agent to start fresh).
expected<void> remove_all(const fs::path& work_dir, Disk& disk = posix_disk());

struct RecoveredFramework {
  Owned<wire::FrameworkRecord> record;               // empty when framework.info was missing or bad
  std::vector<Owned<wire::ExecutorRunRecord>> runs;  // sorted by (executor id, run id)
  std::vector<Owned<wire::TaskRecord>> tasks;        // sorted by task id
};

struct RecoveredState {
  Owned<wire::AgentRecord> agent;  // empty: a fresh agent (or its record was bad)
  std::map<std::string, RecoveredFramework> frameworks;  // by framework id
  std::vector<std::string> warnings;                     // one line per leftover skipped or deleted
  std::vector<std::string> errors;                       // one line per corrupt record skipped
  size_t records() const;
};

// Everything under work_dir's meta/ (contract 4). A missing meta/ is a fresh
// agent: empty state, no warnings.
expected<RecoveredState> recover(const fs::path& work_dir, Disk& disk = posix_disk());

// ---------------------------------------------------------------------------

template <class T>
expected<Owned<T>> read_record(const fs::path& file, Disk& disk) {
  auto words = read_record_words(file, disk);
  if (!words)
    return words.error();
  // Deep-copying the root validates every pointer under the traversal limit;
  // Cap'n Proto reports a bad one by throwing.
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = record_bytes_max / sizeof(capnp::word);
    capnp::FlatArrayMessageReader reader(*words, options);
    return Owned<T>(reader.getRoot<T>());
  } catch (const kj::Exception& e) {
    return make_error(Errc::malformed,
                      file.string() + ": " + std::string(e.getDescription().cStr()));
  }
}

}  // namespace tessera::checkpoint
