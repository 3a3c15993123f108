#include "services/agent/checkpoint.hpp"

#include "services/common/wire.hpp"

#include <capnp/serialize.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tessera::checkpoint {

namespace {

// Record framing: magic, payload length in bytes, FNV-1a 64 of the payload,
// then the payload (a flat Cap'n Proto message). 24 bytes keep the payload
// word-aligned.
constexpr char magic[8] = {'T', 'S', 'R', 'C', 'K', 'P', 'T', '1'};
constexpr size_t header_bytes = 24;
constexpr size_t id_bytes_max = 255;  // NAME_MAX: ids are path components
constexpr const char* temp_marker = ".tmp.";

constexpr const char* agent_file = "agent.info";
constexpr const char* framework_file = "framework.info";
constexpr const char* run_file = "run.info";
constexpr const char* task_file = "task.info";

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void put_u64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_u64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

expected<void> check_id(std::string_view what, std::string_view id) {
  if (id.empty() || id == "." || id == ".." || id.size() > id_bytes_max ||
      id.find('/') != std::string_view::npos || id.find('\0') != std::string_view::npos)
    return make_error(Errc::invalid_argument,
                      "unsafe " + std::string(what) + " '" + std::string(id) + "'");
  return {};
}

// mkdir -p, making each new directory durable in its parent.
expected<void> ensure_dir(const fs::path& dir, Disk& disk) {
  switch (disk.kind(dir)) {
    case Disk::Kind::dir:
      return {};
    case Disk::Kind::file:
      return make_error(Errc::invalid_argument, dir.string() + " is not a directory");
    case Disk::Kind::none:
      break;
  }
  auto parent = dir.parent_path();
  if (!parent.empty() && parent != dir)
    if (auto ok = ensure_dir(parent, disk); !ok)
      return ok;
  if (auto ok = disk.make_dir(dir); !ok)
    return ok;
  return disk.sync_dir(parent.empty() ? fs::path(".") : parent);
}

// Not fsynced: a removal that a crash undoes brings back the record of
// something that was over (a task acknowledged to the end, an executor run
// that exited), which recovery finds over again and forgets. Removals are
// half of all checkpoint writes under load.
expected<void> remove_record_dir(const fs::path& record, Disk& disk) {
  auto dir = record.parent_path();
  if (disk.kind(dir) == Disk::Kind::none)
    return {};
  if (auto ok = disk.remove(record); !ok)
    return ok;
  return disk.remove_all(dir);
}

template <class T, class Check>
expected<Owned<T>> read_checked(const fs::path& file, Disk& disk, Check check) {
  auto record = read_record<T>(file, disk);
  if (!record)
    return record.error();
  // A well-framed record can still hold a pointer of the wrong kind where a
  // field is read (bit rot, another schema): Cap'n Proto throws then.
  std::string why;
  try {
    why = check(record->get());
  } catch (const kj::Exception& e) {
    why = std::string("not a record of its kind: ") + e.getDescription().cStr();
  }
  if (!why.empty())
    return make_error(Errc::malformed, file.string() + ": " + why);
  return record;
}

}  // namespace

fs::path meta_dir(const fs::path& work_dir) {
  return work_dir / "meta";
}

fs::path agent_path(const fs::path& work_dir) {
  return meta_dir(work_dir) / agent_file;
}

fs::path framework_path(const fs::path& work_dir, std::string_view framework_id) {
  return meta_dir(work_dir) / "frameworks" / framework_id / framework_file;
}

fs::path executor_run_path(const fs::path& work_dir, std::string_view framework_id,
                           std::string_view executor_id, std::string_view run_id) {
  return meta_dir(work_dir) / "frameworks" / framework_id / "executors" / executor_id / "runs" /
         run_id / run_file;
}

fs::path task_path(const fs::path& work_dir, std::string_view framework_id,
                   std::string_view task_id) {
  return meta_dir(work_dir) / "frameworks" / framework_id / "tasks" / task_id / task_file;
}

namespace {

// The temp file of a record, written (and, when sync, fsynced) but not yet
// renamed over it.
expected<fs::path> write_temp(const fs::path& file, std::string_view bytes, bool sync, Disk& disk) {
  if (bytes.size() > record_bytes_max)
    return make_error(Errc::oversized, file.string() + ": " + std::to_string(bytes.size()) +
                                           " bytes, more than " + std::to_string(record_bytes_max));
  auto dir = file.parent_path();
  if (auto ok = ensure_dir(dir, disk); !ok)
    return ok.error();
  static std::atomic<uint64_t> temp_seq{0};
  auto temp = dir / (file.filename().string() + temp_marker + std::to_string(::getpid()) + "." +
                     std::to_string(temp_seq++));
  if (auto ok = disk.write_new_file(temp, bytes, sync); !ok) {
    if (disk.kind(temp) != Disk::Kind::none)
      (void)disk.remove(temp);
    // Named by its record, not its temp file: the text reaches operators
    // and status updates (and a simulation's digest), the temp name
    // carries the pid and a process-wide counter.
    auto text = what(ok.error());
    for (auto at = text.find(temp.string()); at != std::string::npos; at = text.find(temp.string()))
      text.replace(at, temp.string().size(), file.string());
    auto code = ok.error().category() == error_category ? static_cast<Errc>(ok.error().code())
                                                        : Errc::os_error;
    return make_error(code, text);
  }
  return temp;
}

expected<void> rename_temp(const fs::path& temp, const fs::path& file, Disk& disk) {
  if (auto ok = disk.rename(temp, file); !ok) {
    (void)disk.remove(temp);
    return ok;
  }
  return {};
}

}  // namespace

expected<void> write_atomically(const fs::path& file, std::string_view bytes, Disk& disk) {
  auto temp = write_temp(file, bytes, true, disk);
  if (!temp)
    return temp.error();
  if (auto ok = rename_temp(*temp, file, disk); !ok)
    return ok;
  return disk.sync_dir(file.parent_path());
}

std::vector<caf::error> write_all_atomically(
    const std::vector<std::pair<fs::path, std::string_view>>& records, Disk& disk) {
  std::vector<caf::error> result(records.size());
  std::vector<std::optional<fs::path>> temps(records.size());
  // Every temp file written, then one sync makes them all durable ...
  for (size_t i = 0; i < records.size(); ++i) {
    auto temp = write_temp(records[i].first, records[i].second, false, disk);
    if (temp)
      temps[i] = *temp;
    else
      result[i] = temp.error();
  }
  auto first =
      std::find_if(temps.begin(), temps.end(), [](const auto& t) { return t.has_value(); });
  if (first == temps.end())
    return result;
  auto any_dir = (*first)->parent_path();  // still there after the renames
  if (auto ok = disk.sync_all(any_dir); !ok) {
    for (size_t i = 0; i < records.size(); ++i)
      if (temps[i]) {
        (void)disk.remove(*temps[i]);
        result[i] = ok.error();
      }
    return result;
  }
  // ... before any is renamed over its record; a second sync makes the
  // renames durable.
  for (size_t i = 0; i < records.size(); ++i)
    if (temps[i])
      if (auto ok = rename_temp(*temps[i], records[i].first, disk); !ok)
        result[i] = ok.error();
  if (auto ok = disk.sync_all(any_dir); !ok)
    for (auto& r : result)
      if (!r)
        r = ok.error();
  return result;
}

std::string frame_record(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  auto payload = words.asChars();
  std::string bytes(header_bytes, '\0');
  std::memcpy(bytes.data(), magic, sizeof magic);
  std::string_view body(payload.begin(), payload.size());
  put_u64(bytes.data() + 8, body.size());
  put_u64(bytes.data() + 16, fnv1a64(body));
  bytes.append(body);
  return bytes;
}

expected<void> write_atomically(const fs::path& file, capnp::MessageBuilder& message, Disk& disk) {
  auto bytes = frame_record(message);
  if (bytes.size() > record_bytes_max)
    return make_error(Errc::oversized,
                      file.string() + ": record of " + std::to_string(bytes.size()) + " bytes");
  return write_atomically(file, std::string_view(bytes), disk);
}

expected<kj::Array<capnp::word>> read_record_words(const fs::path& file, Disk& disk) {
  auto read = disk.read_file(file, record_bytes_max);
  if (!read)
    return read.error();
  auto& bytes = *read;
  if (bytes.size() < header_bytes)
    return make_error(Errc::truncated, file.string() + ": " + std::to_string(bytes.size()) +
                                           " bytes, shorter than a record header");
  if (std::memcmp(bytes.data(), magic, sizeof magic) != 0)
    return make_error(Errc::malformed, file.string() + ": not a checkpoint record");
  uint64_t length = get_u64(bytes.data() + 8);
  std::string_view body(bytes.data() + header_bytes, bytes.size() - header_bytes);
  if (length != body.size())
    return make_error(Errc::truncated, file.string() + ": " + std::to_string(body.size()) + " of " +
                                           std::to_string(length) + " bytes");
  if (length % sizeof(capnp::word) != 0 || length == 0)
    return make_error(Errc::malformed, file.string() + ": not a whole number of words");
  if (get_u64(bytes.data() + 16) != fnv1a64(body))
    return make_error(Errc::malformed, file.string() + ": checksum mismatch");
  auto words = kj::heapArray<capnp::word>(length / sizeof(capnp::word));
  std::memcpy(words.begin(), body.data(), length);
  return words;
}

expected<void> write_agent(const fs::path& work_dir, wire::AgentRecord::Reader record, Disk& disk) {
  if (auto ok = check_id("agent id", str(record.getAgentInfo().getAgentId())); !ok)
    return ok;
  capnp::MallocMessageBuilder message;
  message.setRoot(record);
  return write_atomically(agent_path(work_dir), message, disk);
}

expected<Owned<wire::AgentRecord>> read_agent(const fs::path& work_dir, Disk& disk) {
  return read_checked<wire::AgentRecord>(
      agent_path(work_dir), disk, [](wire::AgentRecord::Reader r) {
        return r.getAgentInfo().getAgentId().size() == 0 ? std::string("no agent id")
                                                         : std::string();
      });
}

expected<void> write_framework(const fs::path& work_dir, wire::FrameworkInfo::Reader info,
                               Disk& disk) {
  auto id = str(info.getFrameworkId());
  if (auto ok = check_id("framework id", id); !ok)
    return ok;
  capnp::MallocMessageBuilder message;
  message.initRoot<wire::FrameworkRecord>().setInfo(info);
  return write_atomically(framework_path(work_dir, id), message, disk);
}

expected<Owned<wire::FrameworkRecord>> read_framework(const fs::path& work_dir,
                                                      std::string_view framework_id, Disk& disk) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok.error();
  return read_checked<wire::FrameworkRecord>(
      framework_path(work_dir, framework_id), disk, [&](wire::FrameworkRecord::Reader r) {
        return str(r.getInfo().getFrameworkId()) == framework_id
                   ? std::string()
                   : "framework id '" + str(r.getInfo().getFrameworkId()) + "'";
      });
}

expected<void> write_executor_run(const fs::path& work_dir, wire::ExecutorRunRecord::Reader record,
                                  Disk& disk) {
  auto framework_id = str(record.getFrameworkId());
  auto executor_id = str(record.getExecutorId());
  auto run_id = str(record.getRunId());
  for (auto [what, id] : {std::pair{"framework id", &framework_id},
                          std::pair{"executor id", &executor_id}, std::pair{"run id", &run_id}})
    if (auto ok = check_id(what, *id); !ok)
      return ok;
  capnp::MallocMessageBuilder message;
  message.setRoot(record);
  return write_atomically(executor_run_path(work_dir, framework_id, executor_id, run_id), message,
                          disk);
}

expected<Owned<wire::ExecutorRunRecord>> read_executor_run(const fs::path& work_dir,
                                                           std::string_view framework_id,
                                                           std::string_view executor_id,
                                                           std::string_view run_id, Disk& disk) {
  for (auto [what, id] : {std::pair{"framework id", framework_id},
                          std::pair{"executor id", executor_id}, std::pair{"run id", run_id}})
    if (auto ok = check_id(what, id); !ok)
      return ok.error();
  return read_checked<wire::ExecutorRunRecord>(
      executor_run_path(work_dir, framework_id, executor_id, run_id), disk,
      [&](wire::ExecutorRunRecord::Reader r) {
        bool same = str(r.getFrameworkId()) == framework_id &&
                    str(r.getExecutorId()) == executor_id && str(r.getRunId()) == run_id;
        return same ? std::string() : std::string("ids differ from its path");
      });
}

expected<void> write_task(const fs::path& work_dir, wire::TaskRecord::Reader record, Disk& disk) {
  auto framework_id = str(record.getFrameworkId());
  auto task_id = str(record.getTask().getTaskId());
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok;
  if (auto ok = check_id("task id", task_id); !ok)
    return ok;
  capnp::MallocMessageBuilder message;
  message.setRoot(record);
  return write_atomically(task_path(work_dir, framework_id, task_id), message, disk);
}

expected<Owned<wire::TaskRecord>> read_task(const fs::path& work_dir, std::string_view framework_id,
                                            std::string_view task_id, Disk& disk) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok.error();
  if (auto ok = check_id("task id", task_id); !ok)
    return ok.error();
  return read_checked<wire::TaskRecord>(
      task_path(work_dir, framework_id, task_id), disk, [&](wire::TaskRecord::Reader r) {
        bool same =
            str(r.getFrameworkId()) == framework_id && str(r.getTask().getTaskId()) == task_id;
        return same ? std::string() : std::string("ids differ from its path");
      });
}

expected<void> remove_framework(const fs::path& work_dir, std::string_view framework_id,
                                Disk& disk) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok;
  return remove_record_dir(framework_path(work_dir, framework_id), disk);
}

expected<void> remove_executor_run(const fs::path& work_dir, std::string_view framework_id,
                                   std::string_view executor_id, std::string_view run_id,
                                   Disk& disk) {
  for (auto [what, id] : {std::pair{"framework id", framework_id},
                          std::pair{"executor id", executor_id}, std::pair{"run id", run_id}})
    if (auto ok = check_id(what, id); !ok)
      return ok;
  auto record = executor_run_path(work_dir, framework_id, executor_id, run_id);
  if (auto ok = remove_record_dir(record, disk); !ok)
    return ok;
  // The executor's folder goes with its last run.
  auto executor_dir = record.parent_path().parent_path().parent_path();
  if (auto runs = disk.list(executor_dir / "runs"); runs && runs->empty())
    return disk.remove_all(executor_dir);
  return {};
}

expected<void> remove_task(const fs::path& work_dir, std::string_view framework_id,
                           std::string_view task_id, Disk& disk) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok;
  if (auto ok = check_id("task id", task_id); !ok)
    return ok;
  return remove_record_dir(task_path(work_dir, framework_id, task_id), disk);
}

expected<void> remove_all(const fs::path& work_dir, Disk& disk) {
  // The agent record first: without it the rest is never recovered.
  if (auto ok = disk.remove(agent_path(work_dir)); !ok)
    return ok;
  if (disk.kind(meta_dir(work_dir)) != Disk::Kind::none)
    if (auto ok = disk.sync_dir(meta_dir(work_dir)); !ok)
      return ok;
  return disk.remove_all(meta_dir(work_dir));
}

size_t RecoveredState::records() const {
  size_t n = agent ? 1 : 0;
  for (const auto& [id, f] : frameworks)
    n += (f.record ? 1 : 0) + f.runs.size() + f.tasks.size();
  return n;
}

namespace {

// One walk of meta/. Every directory holds at most one record file (named
// record_name) and some known subdirectories; anything else is reported.
class Walker {
 public:
  Walker(const fs::path& work_dir, Disk& disk) : work_dir_(work_dir), disk_(disk) {}

  expected<RecoveredState> run() {
    auto meta = meta_dir(work_dir_);
    if (disk_.kind(meta) == Disk::Kind::none)
      return std::move(state_);
    auto names = list(meta, {"frameworks"}, agent_file);
    if (!names)
      return names.error();
    if (has(*names, agent_file))
      take(read_agent(work_dir_, disk_), state_.agent);
    if (has(*names, "frameworks"))
      frameworks(meta / "frameworks");
    return std::move(state_);
  }

 private:
  void frameworks(const fs::path& dir) {
    auto ids = list(dir, {}, nullptr, true);
    for (const auto& id : ids ? *ids : std::vector<std::string>{}) {
      auto fdir = dir / id;
      auto names = list(fdir, {"executors", "tasks"}, framework_file);
      if (!names)
        continue;
      auto& f = state_.frameworks[id];
      if (has(*names, framework_file))
        take(read_framework(work_dir_, id, disk_), f.record);
      else
        warn(fdir / framework_file, "missing; its runs and tasks are recovered without it");
      if (has(*names, "executors"))
        executors(id, fdir / "executors", f);
      if (has(*names, "tasks"))
        tasks(id, fdir / "tasks", f);
    }
  }

  void executors(const std::string& framework_id, const fs::path& dir, RecoveredFramework& f) {
    auto executor_ids = list(dir, {}, nullptr, true);
    for (const auto& executor_id : executor_ids ? *executor_ids : std::vector<std::string>{}) {
      auto runs_dir = dir / executor_id / "runs";
      auto names = list(dir / executor_id, {"runs"}, nullptr);
      if (!names || !has(*names, "runs"))
        continue;
      auto run_ids = list(runs_dir, {}, nullptr, true);
      for (const auto& run_id : run_ids ? *run_ids : std::vector<std::string>{}) {
        auto record = list(runs_dir / run_id, {}, run_file);
        if (!record || !has(*record, run_file)) {
          warn(runs_dir / run_id, "no run.info; skipped");
          continue;
        }
        Owned<wire::ExecutorRunRecord> run;
        if (take(read_executor_run(work_dir_, framework_id, executor_id, run_id, disk_), run))
          f.runs.push_back(std::move(run));
      }
    }
  }

  void tasks(const std::string& framework_id, const fs::path& dir, RecoveredFramework& f) {
    auto task_ids = list(dir, {}, nullptr, true);
    for (const auto& task_id : task_ids ? *task_ids : std::vector<std::string>{}) {
      auto record = list(dir / task_id, {}, task_file);
      if (!record || !has(*record, task_file)) {
        warn(dir / task_id, "no task.info; skipped");
        continue;
      }
      Owned<wire::TaskRecord> task;
      if (take(read_task(work_dir_, framework_id, task_id, disk_), task))
        f.tasks.push_back(std::move(task));
    }
  }

  // The sorted entries of dir that are expected: subdirectories named in
  // dirs (any subdirectory with a safe name when any_dir) and the file
  // record_name. Leftover temp files of record_name are deleted; anything
  // else is reported and left alone.
  expected<std::vector<std::string>> list(const fs::path& dir,
                                          std::initializer_list<const char*> dirs,
                                          const char* record_name, bool any_dir = false) {
    auto entries = disk_.list(dir);
    if (!entries) {
      warn(dir, "cannot be listed: " + what(entries.error()));
      return entries.error();
    }
    std::sort(entries->begin(), entries->end(),
              [](const Disk::Entry& x, const Disk::Entry& y) { return x.name < y.name; });
    std::vector<std::string> kept;
    for (auto& [name, is_dir] : *entries) {
      auto path = dir / name;
      const auto& entry = name;  // clang 14 cannot capture a structured binding
      bool named_dir =
          std::any_of(dirs.begin(), dirs.end(), [&](const char* d) { return entry == d; });
      if (is_dir && (named_dir || (any_dir && check_id("id", name))))
        kept.push_back(std::move(name));
      else if (!is_dir && record_name && name == record_name)
        kept.push_back(std::move(name));
      else if (!is_dir && record_name &&
               name.rfind(std::string(record_name) + temp_marker, 0) == 0) {
        auto removed = disk_.remove(path);
        warn(path, !removed ? "leftover temp file; cannot delete: " + what(removed.error())
                            : std::string("leftover temp file of an interrupted write; deleted"));
      } else {
        warn(path, "unexpected; ignored");
      }
    }
    return kept;
  }

  template <class T>
  bool take(expected<Owned<T>> read, Owned<T>& into) {
    if (state_.records() >= records_max) {
      if (!full_)
        state_.warnings.push_back("more than " + std::to_string(records_max) +
                                  " records; the rest are skipped");
      full_ = true;
      return false;
    }
    if (!read) {
      state_.errors.push_back(what(read.error()));
      return false;
    }
    into = std::move(*read);
    return true;
  }

  static bool has(const std::vector<std::string>& names, const char* name) {
    return std::binary_search(names.begin(), names.end(), std::string(name));
  }

  void warn(const fs::path& path, const std::string& why) {
    state_.warnings.push_back(path.string() + ": " + why);
  }

  fs::path work_dir_;
  Disk& disk_;
  RecoveredState state_;
  bool full_ = false;
};

}  // namespace

expected<RecoveredState> recover(const fs::path& work_dir, Disk& disk) {
  return Walker(work_dir, disk).run();
}

}  // namespace tessera::checkpoint
