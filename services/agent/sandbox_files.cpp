#include "services/agent/sandbox_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace tessera {

using detail::SandboxResolver;

namespace {

constexpr size_t path_bytes_max = PATH_MAX - 1;  // PATH_MAX counts the NUL
constexpr size_t component_bytes_max = NAME_MAX;
constexpr size_t shown_bytes_max = 200;        // of a path quoted in a message
constexpr int openat2_eagain_retries_max = 3;  // see open_with_openat2
constexpr size_t owner_buffer_bytes_max = 1 << 20;

// Set once openat2 answered ENOSYS: the kernel will not grow it.
std::atomic<bool> openat2_missing{false};

// Closes one descriptor on every path out.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// A path from the network, quoted for a message or a log line: control bytes
// escaped, long paths cut.
std::string quoted(std::string_view path) {
  std::string out = "'";
  for (char c : path.substr(0, shown_bytes_max)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\'' || c == '\\') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  if (path.size() > shown_bytes_max)
    out += "...";
  return out + "'";
}

// A relative path, checked (rule 1) and split.
struct Target {
  std::string shown;               // "sandbox path '<as asked>'", for messages
  std::vector<std::string> parts;  // without "" and "."
  std::string normalized;          // parts joined by '/'; "" for the root
};

caf::error fail(SandboxFileError& why, SandboxFileError kind, caf::error err) {
  why = kind;
  return err;
}

caf::error refuse(SandboxFileError& why, SandboxFileError kind, const std::string& shown,
                  const std::string& reason) {
  return fail(why, kind, make_error(Errc::invalid_argument, shown + " refused: " + reason));
}

caf::error parse(std::string_view relative, Target& out, SandboxFileError& why) {
  out.shown = "sandbox path " + quoted(relative);
  if (relative.find('\0') != std::string_view::npos)
    return refuse(why, SandboxFileError::invalid_path, out.shown, "it contains a NUL byte");
  if (relative.size() > path_bytes_max)
    return refuse(why, SandboxFileError::invalid_path, out.shown,
                  "it is longer than " + std::to_string(path_bytes_max) + " bytes");
  if (!relative.empty() && relative.front() == '/')
    return refuse(why, SandboxFileError::outside_sandbox, out.shown,
                  "an absolute path leaves the sandbox");
  size_t begin = 0;
  while (begin <= relative.size()) {
    auto end = std::min(relative.find('/', begin), relative.size());
    auto part = relative.substr(begin, end - begin);
    begin = end + 1;
    if (part.empty() || part == ".")
      continue;
    if (part == "..")
      return refuse(why, SandboxFileError::outside_sandbox, out.shown,
                    "a '..' component may leave the sandbox");
    if (part.size() > component_bytes_max)
      return refuse(why, SandboxFileError::invalid_path, out.shown,
                    "a component is longer than " + std::to_string(component_bytes_max) + " bytes");
    out.parts.emplace_back(part);
  }
  for (const auto& part : out.parts)
    out.normalized += (out.normalized.empty() ? "" : "/") + part;
  return caf::none;
}

// Translates the errno of a confined open, once, into the caller's terms.
// Both resolvers come through here, so they word their answers alike.
caf::error translate(int errno_value, const Target& target, SandboxFileError& why) {
  switch (errno_value) {
    case ELOOP:
      return refuse(why, SandboxFileError::outside_sandbox, target.shown,
                    "it goes through a symlink, and symlinks in a sandbox are never followed");
    case EXDEV:
      return refuse(why, SandboxFileError::outside_sandbox, target.shown, "it leaves the sandbox");
    case ENOTDIR:
      return refuse(why, SandboxFileError::not_a_directory, target.shown,
                    "it, or a component of it, is not a directory");
    case ENAMETOOLONG:
      return refuse(why, SandboxFileError::invalid_path, target.shown, "a name is too long");
    case ENOENT:
      return fail(why, SandboxFileError::not_found, make_os_error(ENOENT, target.shown));
    default:
      return fail(why, SandboxFileError::io,
                  make_os_error(errno_value, "open(" + target.shown + ")"));
  }
}

long call_openat2(int dir_fd, const char* path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
  return ::syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
}

// Returns the descriptor, or -1 and errno_out. EAGAIN means the kernel saw a
// rename race it could not rule out; it is retried a few times.
int open_with_openat2(int root_fd, const Target& target, int flags, int& errno_out) {
  const char* path = target.normalized.empty() ? "." : target.normalized.c_str();
  long fd = -1;
  for (int attempt = 0; attempt <= openat2_eagain_retries_max; ++attempt) {
    fd = call_openat2(root_fd, path, flags);
    errno_out = errno;
    if (fd >= 0 || (errno_out != EAGAIN && errno_out != EINTR))
      break;
  }
  return static_cast<int>(fd);
}

// Why openat(dir_fd, name, ...O_NOFOLLOW) failed with ELOOP or ENOTDIR: the
// walker sees a symlink as either, depending on the flags; openat2 always
// says ELOOP. Classifying by the entry itself makes the answers agree.
int classify_walk_errno(int dir_fd, const std::string& name, int errno_value) {
  if (errno_value != ELOOP && errno_value != ENOTDIR)
    return errno_value;
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
    return ELOOP;
  return errno_value;
}

// The fallback: one component at a time, never following a symlink, each
// directory held open so a swap behind us changes nothing.
int open_by_walking(int root_fd, const Target& target, int flags, int& errno_out) {
  if (target.parts.empty()) {
    int fd = ::openat(root_fd, ".", flags);
    errno_out = errno;
    return fd;
  }
  UniqueFd dir;
  int dir_fd = root_fd;
  for (size_t i = 0; i < target.parts.size(); ++i) {
    const auto& name = target.parts[i];
    bool last = i + 1 == target.parts.size();
    int step_flags = last ? flags | O_NOFOLLOW : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(dir_fd, name.c_str(), step_flags);
    if (fd < 0) {
      errno_out = classify_walk_errno(dir_fd, name, errno);
      return -1;
    }
    if (last)
      return fd;
    dir.reset(fd);
    dir_fd = fd;
  }
  return -1;  // unreachable: parts is not empty
}

struct Opened {
  UniqueFd fd;
  struct stat st {};
};

caf::error open_root(const std::string& sandbox_root, UniqueFd& out, SandboxFileError& why) {
  out.reset(::open(sandbox_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (out.get() >= 0)
    return caf::none;
  // The root is the agent's: its absence is not the asker's 404.
  return fail(why, SandboxFileError::io,
              make_os_error(errno, "sandbox root " + quoted(sandbox_root)));
}

// Opens target beneath the sandbox root with flags (which carry O_CLOEXEC)
// and fstats it. A symlink never comes back: the walker's O_PATH|O_NOFOLLOW
// on a last component that is a symlink opens the link itself, refused here.
caf::error open_in_sandbox(SandboxResolver resolver, const std::string& sandbox_root,
                           const Target& target, int flags, Opened& out, SandboxFileError& why) {
  UniqueFd root;
  if (auto err = open_root(sandbox_root, root, why))
    return err;
  int fd = -1;
  int errno_value = 0;
  bool walk = resolver == SandboxResolver::walk ||
              (resolver == SandboxResolver::automatic && openat2_missing.load());
  if (!walk) {
    fd = open_with_openat2(root.get(), target, flags, errno_value);
    if (fd < 0 && errno_value == ENOSYS)
      openat2_missing.store(true);
    // A seccomp filter unaware of openat2 may answer EPERM; the walker then
    // gives the same answer, so trying it is safe.
    walk = fd < 0 && resolver == SandboxResolver::automatic &&
           (errno_value == ENOSYS || errno_value == EPERM);
  }
  if (walk)
    fd = open_by_walking(root.get(), target, flags, errno_value);
  if (fd < 0)
    return translate(errno_value, target, why);
  out.fd.reset(fd);
  if (::fstat(fd, &out.st) != 0)
    return fail(why, SandboxFileError::io, make_os_error(errno, "fstat(" + target.shown + ")"));
  if (S_ISLNK(out.st.st_mode))
    return translate(ELOOP, target, why);
  return caf::none;
}

caf::error require_regular(const Target& target, const struct stat& st, SandboxFileError& why) {
  if (S_ISREG(st.st_mode))
    return caf::none;
  return refuse(why, SandboxFileError::not_a_file, target.shown,
                S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file");
}

// User and group names by id, looked up once per listing.
class OwnerNames {
 public:
  const std::string& user_name(uid_t uid) {
    return lookup(users_, uid, [](uid_t id, std::vector<char>& buf, std::string& name) {
      struct passwd entry {};
      struct passwd* found = nullptr;
      int rc = ::getpwuid_r(id, &entry, buf.data(), buf.size(), &found);
      if (rc == 0 && found)
        name = found->pw_name;
      return rc;
    });
  }
  const std::string& group_name(gid_t gid) {
    return lookup(groups_, gid, [](gid_t id, std::vector<char>& buf, std::string& name) {
      struct group entry {};
      struct group* found = nullptr;
      int rc = ::getgrgid_r(id, &entry, buf.data(), buf.size(), &found);
      if (rc == 0 && found)
        name = found->gr_name;
      return rc;
    });
  }

 private:
  template <class Id, class Lookup>
  const std::string& lookup(std::unordered_map<Id, std::string>& cache, Id id, Lookup look) {
    auto it = cache.find(id);
    if (it != cache.end())
      return it->second;
    std::string name;
    std::vector<char> buf(16 * 1024);
    while (look(id, buf, name) == ERANGE && buf.size() < owner_buffer_bytes_max)
      buf.resize(buf.size() * 2);
    if (name.empty())
      name = std::to_string(id);
    return cache.emplace(id, std::move(name)).first->second;
  }

  std::unordered_map<uid_t, std::string> users_;
  std::unordered_map<gid_t, std::string> groups_;
};

SandboxFile describe_entry(const Target& dir, const std::string& name, const struct stat& st,
                           OwnerNames& owners) {
  SandboxFile file;
  file.path = dir.normalized.empty() ? name : dir.normalized + "/" + name;
  file.name = name;
  file.directory = S_ISDIR(st.st_mode);
  file.symlink = S_ISLNK(st.st_mode);
  file.size_bytes = static_cast<uint64_t>(st.st_size);
  file.mtime_s = static_cast<int64_t>(st.st_mtim.tv_sec);
  file.mode = static_cast<uint32_t>(st.st_mode);
  file.nlink = static_cast<uint64_t>(st.st_nlink);
  file.uid = owners.user_name(st.st_uid);
  file.gid = owners.group_name(st.st_gid);
  return file;
}

// Closes the DIR (and the descriptor it owns) on every path out.
struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

caf::error read_entries(const Target& target, UniqueFd fd, size_t entries_max,
                        std::vector<SandboxFile>& out, SandboxFileError& why) {
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(fd.get()));
  if (!dir)
    return fail(why, SandboxFileError::io, make_os_error(errno, "fdopendir(" + target.shown + ")"));
  fd.release();  // the DIR owns it now
  OwnerNames owners;
  while (out.size() < entries_max) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (!entry && errno != 0)
      return fail(why, SandboxFileError::io, make_os_error(errno, "readdir(" + target.shown + ")"));
    if (!entry)
      break;
    std::string name = entry->d_name;
    if (name == "." || name == "..")
      continue;
    struct stat st {};
    if (::fstatat(::dirfd(dir.get()), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT)
        continue;  // removed since readdir saw it
      return fail(why, SandboxFileError::io,
                  make_os_error(errno, "fstatat(" + target.shown + ", " + quoted(name) + ")"));
    }
    out.push_back(describe_entry(target, name, st, owners));
  }
  std::sort(out.begin(), out.end(),
            [](const SandboxFile& a, const SandboxFile& b) { return a.name < b.name; });
  return caf::none;
}

caf::error pread_all(const Target& target, int fd, uint64_t offset, std::string& data,
                     SandboxFileError& why) {
  size_t got = 0;
  while (got < data.size()) {
    auto n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail(why, SandboxFileError::io, make_os_error(errno, "pread(" + target.shown + ")"));
    if (n == 0)
      break;  // the file shrank meanwhile
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return caf::none;
}

// Writes the caller's `why` however the call ends.
SandboxFileError& why_or(SandboxFileError* why, SandboxFileError& local) {
  auto& out = why ? *why : local;
  out = SandboxFileError::none;
  return out;
}

}  // namespace

const char* to_string(SandboxFileError kind) {
  switch (kind) {
    case SandboxFileError::none:
      return "none";
    case SandboxFileError::not_found:
      return "not_found";
    case SandboxFileError::outside_sandbox:
      return "outside_sandbox";
    case SandboxFileError::invalid_path:
      return "invalid_path";
    case SandboxFileError::not_a_directory:
      return "not_a_directory";
    case SandboxFileError::not_a_file:
      return "not_a_file";
    case SandboxFileError::io:
      return "io";
  }
  return "unknown";
}

namespace detail {

expected<std::vector<SandboxFile>> list_sandbox_files(SandboxResolver resolver,
                                                      const std::string& sandbox_root,
                                                      const std::string& relative,
                                                      size_t entries_max, SandboxFileError* why) {
  SandboxFileError local{};
  auto& kind = why_or(why, local);
  Target target;
  if (auto err = parse(relative, target, kind))
    return err;
  Opened dir;
  if (auto err = open_in_sandbox(resolver, sandbox_root, target, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                 dir, kind))
    return err;
  std::vector<SandboxFile> out;
  if (auto err = read_entries(target, std::move(dir.fd), entries_max, out, kind))
    return err;
  return out;
}

expected<SandboxChunk> read_sandbox_file(SandboxResolver resolver, const std::string& sandbox_root,
                                         const std::string& relative, uint64_t offset,
                                         uint64_t length_max, SandboxFileError* why) {
  SandboxFileError local{};
  auto& kind = why_or(why, local);
  Target target;
  if (auto err = parse(relative, target, kind))
    return err;
  // Rule 3: look before opening for reading, so a special file is never opened...
  Opened probe;
  if (auto err = open_in_sandbox(resolver, sandbox_root, target, O_PATH | O_CLOEXEC, probe, kind))
    return err;
  if (auto err = require_regular(target, probe.st, kind))
    return err;
  // ...and if one was swapped in since, O_NONBLOCK keeps a FIFO from hanging us.
  Opened file;
  if (auto err = open_in_sandbox(resolver, sandbox_root, target,
                                 O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, file, kind))
    return err;
  if (auto err = require_regular(target, file.st, kind))
    return err;
  SandboxChunk chunk;
  chunk.offset = offset;
  chunk.file_size_bytes = static_cast<uint64_t>(file.st.st_size);
  if (offset >= chunk.file_size_bytes)
    return chunk;
  auto want = std::min({length_max, sandbox_read_bytes_max, chunk.file_size_bytes - offset});
  chunk.data.resize(static_cast<size_t>(want));
  if (auto err = pread_all(target, file.fd.get(), offset, chunk.data, kind))
    return err;
  return chunk;
}

expected<uint64_t> sandbox_file_size(SandboxResolver resolver, const std::string& sandbox_root,
                                     const std::string& relative, SandboxFileError* why) {
  SandboxFileError local{};
  auto& kind = why_or(why, local);
  Target target;
  if (auto err = parse(relative, target, kind))
    return err;
  Opened probe;
  if (auto err = open_in_sandbox(resolver, sandbox_root, target, O_PATH | O_CLOEXEC, probe, kind))
    return err;
  if (auto err = require_regular(target, probe.st, kind))
    return err;
  return static_cast<uint64_t>(probe.st.st_size);
}

}  // namespace detail

expected<std::vector<SandboxFile>> list_sandbox_files(const std::string& sandbox_root,
                                                      const std::string& relative,
                                                      size_t entries_max, SandboxFileError* why) {
  return detail::list_sandbox_files(SandboxResolver::automatic, sandbox_root, relative, entries_max,
                                    why);
}

expected<SandboxChunk> read_sandbox_file(const std::string& sandbox_root,
                                         const std::string& relative, uint64_t offset,
                                         uint64_t length_max, SandboxFileError* why) {
  return detail::read_sandbox_file(SandboxResolver::automatic, sandbox_root, relative, offset,
                                   length_max, why);
}

expected<uint64_t> sandbox_file_size(const std::string& sandbox_root, const std::string& relative,
                                     SandboxFileError* why) {
  return detail::sandbox_file_size(SandboxResolver::automatic, sandbox_root, relative, why);
}

}  // namespace tessera
