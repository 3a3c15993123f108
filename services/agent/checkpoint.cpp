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

expected<void> fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return make_os_error(errno, "open(" + dir.string() + ")");
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0)
    return make_os_error(saved, "fsync(" + dir.string() + ")");
  return {};
}

// mkdir -p, making each new directory durable in its parent.
expected<void> ensure_dir(const fs::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return {};
    return make_error(Errc::invalid_argument, dir.string() + " is not a directory");
  }
  auto parent = dir.parent_path();
  if (!parent.empty() && parent != dir)
    if (auto ok = ensure_dir(parent); !ok)
      return ok;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return make_os_error(errno, "mkdir(" + dir.string() + ")");
  return fsync_dir(parent.empty() ? fs::path(".") : parent);
}

expected<void> write_all(int fd, std::string_view bytes, const fs::path& file) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return make_os_error(errno, "write(" + file.string() + ")");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// Not fsynced: a removal that a crash undoes brings back the record of
// something that was over (a task acknowledged to the end, an executor run
// that exited), which recovery finds over again and forgets. Removals are
// half of all checkpoint writes under load.
expected<void> remove_record_dir(const fs::path& record) {
  std::error_code ec;
  auto dir = record.parent_path();
  if (!fs::exists(dir, ec))
    return {};
  fs::remove(record, ec);
  if (ec)
    return make_error(Errc::os_error, "remove(" + record.string() + "): " + ec.message());
  fs::remove_all(dir, ec);
  if (ec)
    return make_error(Errc::os_error, "remove_all(" + dir.string() + "): " + ec.message());
  return {};
}

template <class T, class Check>
expected<Owned<T>> read_checked(const fs::path& file, Check check) {
  auto record = read_record<T>(file);
  if (!record)
    return record.error();
  if (auto why = check(record->get()); !why.empty())
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
expected<fs::path> write_temp(const fs::path& file, std::string_view bytes, bool sync) {
  if (bytes.size() > record_bytes_max)
    return make_error(Errc::oversized, file.string() + ": " + std::to_string(bytes.size()) +
                                           " bytes, more than " + std::to_string(record_bytes_max));
  auto dir = file.parent_path();
  if (auto ok = ensure_dir(dir); !ok)
    return ok.error();
  static std::atomic<uint64_t> temp_seq{0};
  auto temp = dir / (file.filename().string() + temp_marker + std::to_string(::getpid()) + "." +
                     std::to_string(temp_seq++));
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_os_error(errno, "open(" + temp.string() + ")");
  auto fail = [&](caf::error err) -> expected<fs::path> {
    ::unlink(temp.c_str());
    return err;
  };
  if (auto ok = write_all(fd, bytes, temp); !ok) {
    ::close(fd);
    return fail(ok.error());
  }
  if (sync && ::fsync(fd) != 0) {
    int saved = errno;
    ::close(fd);
    return fail(make_os_error(saved, "fsync(" + temp.string() + ")"));
  }
  if (::close(fd) != 0)
    return fail(make_os_error(errno, "close(" + temp.string() + ")"));
  return temp;
}

expected<void> rename_temp(const fs::path& temp, const fs::path& file) {
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    auto err = make_os_error(errno, "rename(" + temp.string() + ")");
    ::unlink(temp.c_str());
    return err;
  }
  return {};
}

expected<void> sync_file_system(const fs::path& any) {
  int fd = ::open(any.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_os_error(errno, "open(" + any.string() + ")");
  int rc = ::syncfs(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0)
    return make_os_error(saved, "syncfs(" + any.string() + ")");
  return {};
}

}  // namespace

expected<void> write_atomically(const fs::path& file, std::string_view bytes) {
  auto temp = write_temp(file, bytes, true);
  if (!temp)
    return temp.error();
  if (auto ok = rename_temp(*temp, file); !ok)
    return ok;
  return fsync_dir(file.parent_path());
}

std::vector<caf::error> write_all_atomically(
    const std::vector<std::pair<fs::path, std::string_view>>& records) {
  std::vector<caf::error> result(records.size());
  std::vector<std::optional<fs::path>> temps(records.size());
  // Every temp file written, then one sync makes them all durable ...
  for (size_t i = 0; i < records.size(); ++i) {
    auto temp = write_temp(records[i].first, records[i].second, false);
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
  if (auto ok = sync_file_system(any_dir); !ok) {
    for (size_t i = 0; i < records.size(); ++i)
      if (temps[i]) {
        ::unlink(temps[i]->c_str());
        result[i] = ok.error();
      }
    return result;
  }
  // ... before any is renamed over its record; a second sync makes the
  // renames durable.
  for (size_t i = 0; i < records.size(); ++i)
    if (temps[i])
      if (auto ok = rename_temp(*temps[i], records[i].first); !ok)
        result[i] = ok.error();
  if (auto ok = sync_file_system(any_dir); !ok)
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

expected<void> write_atomically(const fs::path& file, capnp::MessageBuilder& message) {
  auto bytes = frame_record(message);
  if (bytes.size() > record_bytes_max)
    return make_error(Errc::oversized,
                      file.string() + ": record of " + std::to_string(bytes.size()) + " bytes");
  return write_atomically(file, std::string_view(bytes));
}

expected<kj::Array<capnp::word>> read_record_words(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_os_error(errno, "open(" + file.string() + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int saved = errno;
    ::close(fd);
    return make_os_error(saved, "fstat(" + file.string() + ")");
  }
  auto size = static_cast<size_t>(st.st_size);
  if (size > record_bytes_max) {
    ::close(fd);
    return make_error(Errc::oversized, file.string() + ": " + std::to_string(size) + " bytes");
  }
  std::string bytes(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, bytes.data() + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      return make_os_error(saved, "read(" + file.string() + ")");
    }
    if (n == 0)
      break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(got);
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

expected<void> write_agent(const fs::path& work_dir, wire::AgentRecord::Reader record) {
  if (auto ok = check_id("agent id", str(record.getAgentInfo().getAgentId())); !ok)
    return ok;
  capnp::MallocMessageBuilder message;
  message.setRoot(record);
  return write_atomically(agent_path(work_dir), message);
}

expected<Owned<wire::AgentRecord>> read_agent(const fs::path& work_dir) {
  return read_checked<wire::AgentRecord>(agent_path(work_dir), [](wire::AgentRecord::Reader r) {
    return r.getAgentInfo().getAgentId().size() == 0 ? std::string("no agent id") : std::string();
  });
}

expected<void> write_framework(const fs::path& work_dir, wire::FrameworkInfo::Reader info) {
  auto id = str(info.getFrameworkId());
  if (auto ok = check_id("framework id", id); !ok)
    return ok;
  capnp::MallocMessageBuilder message;
  message.initRoot<wire::FrameworkRecord>().setInfo(info);
  return write_atomically(framework_path(work_dir, id), message);
}

expected<Owned<wire::FrameworkRecord>> read_framework(const fs::path& work_dir,
                                                      std::string_view framework_id) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok.error();
  return read_checked<wire::FrameworkRecord>(
      framework_path(work_dir, framework_id), [&](wire::FrameworkRecord::Reader r) {
        return str(r.getInfo().getFrameworkId()) == framework_id
                   ? std::string()
                   : "framework id '" + str(r.getInfo().getFrameworkId()) + "'";
      });
}

expected<void> write_executor_run(const fs::path& work_dir,
                                  wire::ExecutorRunRecord::Reader record) {
  auto framework_id = str(record.getFrameworkId());
  auto executor_id = str(record.getExecutorId());
  auto run_id = str(record.getRunId());
  for (auto [what, id] : {std::pair{"framework id", &framework_id},
                          std::pair{"executor id", &executor_id}, std::pair{"run id", &run_id}})
    if (auto ok = check_id(what, *id); !ok)
      return ok;
  capnp::MallocMessageBuilder message;
  message.setRoot(record);
  return write_atomically(executor_run_path(work_dir, framework_id, executor_id, run_id), message);
}

expected<Owned<wire::ExecutorRunRecord>> read_executor_run(const fs::path& work_dir,
                                                           std::string_view framework_id,
                                                           std::string_view executor_id,
                                                           std::string_view run_id) {
  for (auto [what, id] : {std::pair{"framework id", framework_id},
                          std::pair{"executor id", executor_id}, std::pair{"run id", run_id}})
    if (auto ok = check_id(what, id); !ok)
      return ok.error();
  return read_checked<wire::ExecutorRunRecord>(
      executor_run_path(work_dir, framework_id, executor_id, run_id),
      [&](wire::ExecutorRunRecord::Reader r) {
        bool same = str(r.getFrameworkId()) == framework_id &&
                    str(r.getExecutorId()) == executor_id && str(r.getRunId()) == run_id;
        return same ? std::string() : std::string("ids differ from its path");
      });
}

expected<void> write_task(const fs::path& work_dir, wire::TaskRecord::Reader record) {
  auto framework_id = str(record.getFrameworkId());
  auto task_id = str(record.getTask().getTaskId());
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok;
  if (auto ok = check_id("task id", task_id); !ok)
    return ok;
  capnp::MallocMessageBuilder message;
  message.setRoot(record);
  return write_atomically(task_path(work_dir, framework_id, task_id), message);
}

expected<Owned<wire::TaskRecord>> read_task(const fs::path& work_dir, std::string_view framework_id,
                                            std::string_view task_id) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok.error();
  if (auto ok = check_id("task id", task_id); !ok)
    return ok.error();
  return read_checked<wire::TaskRecord>(
      task_path(work_dir, framework_id, task_id), [&](wire::TaskRecord::Reader r) {
        bool same =
            str(r.getFrameworkId()) == framework_id && str(r.getTask().getTaskId()) == task_id;
        return same ? std::string() : std::string("ids differ from its path");
      });
}

expected<void> remove_framework(const fs::path& work_dir, std::string_view framework_id) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok;
  return remove_record_dir(framework_path(work_dir, framework_id));
}

expected<void> remove_executor_run(const fs::path& work_dir, std::string_view framework_id,
                                   std::string_view executor_id, std::string_view run_id) {
  for (auto [what, id] : {std::pair{"framework id", framework_id},
                          std::pair{"executor id", executor_id}, std::pair{"run id", run_id}})
    if (auto ok = check_id(what, id); !ok)
      return ok;
  auto record = executor_run_path(work_dir, framework_id, executor_id, run_id);
  if (auto ok = remove_record_dir(record); !ok)
    return ok;
  // The executor's folder goes with its last run.
  std::error_code ec;
  auto executor_dir = record.parent_path().parent_path().parent_path();
  if (fs::is_empty(executor_dir / "runs", ec) && !ec) {
    fs::remove_all(executor_dir, ec);
    if (ec)
      return make_error(Errc::os_error,
                        "remove_all(" + executor_dir.string() + "): " + ec.message());
  }
  return {};
}

expected<void> remove_task(const fs::path& work_dir, std::string_view framework_id,
                           std::string_view task_id) {
  if (auto ok = check_id("framework id", framework_id); !ok)
    return ok;
  if (auto ok = check_id("task id", task_id); !ok)
    return ok;
  return remove_record_dir(task_path(work_dir, framework_id, task_id));
}

expected<void> remove_all(const fs::path& work_dir) {
  // The agent record first: without it the rest is never recovered.
  std::error_code ec;
  fs::remove(agent_path(work_dir), ec);
  if (ec)
    return make_error(Errc::os_error,
                      "remove(" + agent_path(work_dir).string() + "): " + ec.message());
  if (fs::exists(meta_dir(work_dir), ec))
    if (auto ok = fsync_dir(meta_dir(work_dir)); !ok)
      return ok;
  fs::remove_all(meta_dir(work_dir), ec);
  if (ec)
    return make_error(Errc::os_error,
                      "remove_all(" + meta_dir(work_dir).string() + "): " + ec.message());
  return {};
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
  explicit Walker(const fs::path& work_dir) : work_dir_(work_dir) {}

  expected<RecoveredState> run() {
    std::error_code ec;
    auto meta = meta_dir(work_dir_);
    if (!fs::exists(meta, ec))
      return std::move(state_);
    auto names = list(meta, {"frameworks"}, agent_file);
    if (!names)
      return names.error();
    if (has(*names, agent_file))
      take(read_agent(work_dir_), state_.agent);
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
        take(read_framework(work_dir_, id), f.record);
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
        if (take(read_executor_run(work_dir_, framework_id, executor_id, run_id), run))
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
      if (take(read_task(work_dir_, framework_id, task_id), task))
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
    std::error_code ec;
    std::vector<std::string> names;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec))
      names.push_back(it->path().filename().string());
    if (ec) {
      warn(dir, "cannot be listed: " + ec.message());
      return make_error(Errc::os_error, "list(" + dir.string() + "): " + ec.message());
    }
    std::sort(names.begin(), names.end());
    std::vector<std::string> kept;
    for (auto& name : names) {
      auto path = dir / name;
      bool is_dir = fs::is_directory(path, ec);
      bool named_dir =
          std::any_of(dirs.begin(), dirs.end(), [&](const char* d) { return name == d; });
      if (is_dir && (named_dir || (any_dir && check_id("id", name))))
        kept.push_back(std::move(name));
      else if (!is_dir && record_name && name == record_name)
        kept.push_back(std::move(name));
      else if (!is_dir && record_name &&
               name.rfind(std::string(record_name) + temp_marker, 0) == 0) {
        fs::remove(path, ec);
        warn(path, ec ? "leftover temp file; cannot delete: " + ec.message()
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
  RecoveredState state_;
  bool full_ = false;
};

}  // namespace

expected<RecoveredState> recover(const fs::path& work_dir) {
  return Walker(work_dir).run();
}

}  // namespace tessera::checkpoint
