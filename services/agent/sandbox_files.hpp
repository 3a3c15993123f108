#pragma once
// Listing and reading the files of a task's sandbox for the agent's HTTP API
// (Mesos /files/browse, /files/read), confined to the sandbox.
//
// Threat model: the task is untrusted and owns its sandbox. It can create
// symlinks to /etc/shadow, to "/", to "../..", and it can swap a directory
// for a symlink between two requests. The caller (the agent) is trusted:
// sandbox_root is the agent's own path and is opened following symlinks.
//
// Rules, in order (each is a refusal, not a "no such file"):
//   1. The relative path is checked before any system call: no leading '/',
//      no ".." component (even one that would stay inside), no NUL byte, at
//      most PATH_MAX - 1 bytes, components at most NAME_MAX bytes. Empty and
//      "." components are dropped, so "", "." and "./" name the root.
//   2. No symlink planted in the sandbox is ever followed, not even one that
//      points to a sibling inside it: confinement then needs no reasoning
//      about where a link leads or what it will lead to after the task
//      re-points it. Symlinks are listed (symlink = true, lstat's fields),
//      never resolved; to read a link's target, read the target's own path.
//   3. Only regular files are read. A FIFO, socket or device node is refused
//      after an O_PATH open and fstat, so it is not opened for reading. The
//      reading open that follows adds O_NONBLOCK and checks again: a FIFO
//      swapped in between cannot hang the reader, and is refused unread.
//
// Resolution: the root is opened O_PATH|O_DIRECTORY; the target is opened
// beneath it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS). Kernels before 5.6 lack openat2 (ENOSYS, then
// remembered; a seccomp filter's EPERM is retried each time, not remembered):
// there the path is walked one component at a time with
// openat(O_PATH|O_DIRECTORY|O_NOFOLLOW), holding each directory's descriptor,
// and the last component is opened with O_NOFOLLOW. Both resolvers give the
// same answer for every path, the same SandboxFileError and the same message:
// rule 1 removes everything on which they could differ ("..", absolute
// paths), and a walker failure on a component (ELOOP or ENOTDIR) is
// classified with fstatat(AT_SYMLINK_NOFOLLOW), as openat2 does. The tests
// run every case under both (detail::SandboxResolver).
//
// What confinement does not cover: a hard link the task made to a file it
// may link (fs.protected_hardlinks decides which) is an ordinary file inside
// the sandbox; a mount inside the sandbox (a persistent volume) is crossed.
//
// Errors: every function returns tessera::expected<T>. A refused path, a list
// of a non-directory and a read of a non-regular file are
// Errc::invalid_argument; a missing file and any other OS failure are
// Errc::os_error ("sandbox path 'x': No such file or directory"). That
// split is what the agent's other handlers already test with is(). For an
// HTTP status that is too coarse (403 vs 404), and the project's one error
// enum has no "not found" or "forbidden" and is not this library's to grow;
// an error of a second CAF category would lose describe() and is(). So the
// precise kind comes back alongside, through the optional `why` out
// parameter, which is written on every call (none on success), and which
// travels as a plain enum across the blocking pool with the result.
//
// Thread-safety: the functions keep no state beyond the process-wide "openat2
// is missing" flag (atomic); they may run concurrently on any thread. They
// block on disk and on user and group lookups (getpwuid_r): run them on the
// agent's blocking pool, not on an actor's thread.

#include "runtime/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

// A larger length_max is clamped to this.
inline constexpr uint64_t sandbox_read_bytes_max = uint64_t{16} << 20;
inline constexpr size_t sandbox_entries_max_default = 10'000;

// What a failed call ran into, for the HTTP edge to pick a status.
enum class SandboxFileError : uint8_t {
  none,             // success
  not_found,        // 404: nothing at that path (ENOENT)
  outside_sandbox,  // 403: absolute, "..", leaves the sandbox, or through a symlink
  invalid_path,     // 400: NUL byte, longer than PATH_MAX or a component than NAME_MAX
  not_a_directory,  // 400: listing a file; a file used as a directory component
  not_a_file,       // 400: reading a directory, FIFO, socket or device
  io,               // 500: the sandbox root is unusable, EACCES, EIO, ...
};

const char* to_string(SandboxFileError kind);

struct SandboxFile {
  std::string path;  // relative to the sandbox root, '/'-separated, no leading '/'
  std::string name;
  bool directory = false;
  bool symlink = false;  // listed, never followed: the fields below are the link's own
  uint64_t size_bytes = 0;
  int64_t mtime_s = 0;
  uint32_t mode = 0;  // st_mode: type and permission bits
  uint64_t nlink = 0;
  std::string uid, gid;  // names when known, else numbers
};

// Lists the directory at `relative` ("" or "." for the root), sorted by
// name, without "." and "..". At most entries_max entries: a larger
// directory yields the first entries_max that readdir returns (in no
// particular order), sorted, so a listing of exactly entries_max entries may
// be cut short. An entry removed while listing is left out.
expected<std::vector<SandboxFile>> list_sandbox_files(
    const std::string& sandbox_root, const std::string& relative,
    size_t entries_max = sandbox_entries_max_default, SandboxFileError* why = nullptr);

struct SandboxChunk {
  uint64_t offset = 0;
  std::string data;  // the bytes at [offset, offset + data.size())
  uint64_t file_size_bytes = 0;
};

// Reads up to min(length_max, sandbox_read_bytes_max) bytes from offset of
// the regular file at `relative`, stopping at the size fstat reported at
// open. An offset at or past the end gives empty data and the size.
expected<SandboxChunk> read_sandbox_file(const std::string& sandbox_root,
                                         const std::string& relative, uint64_t offset,
                                         uint64_t length_max, SandboxFileError* why = nullptr);

// The size of the regular file at `relative`, for a reader that follows a
// growing file by polling. Never opens the file for reading.
expected<uint64_t> sandbox_file_size(const std::string& sandbox_root, const std::string& relative,
                                     SandboxFileError* why = nullptr);

// Not API: the same functions with the resolver pinned, so that tests cover
// the fallback on a kernel that has openat2.
namespace detail {

enum class SandboxResolver : uint8_t {
  automatic,  // openat2, else the walker (what the functions above use)
  openat2,    // openat2 only: Errc::os_error (ENOSYS) where the kernel lacks it
  walk,       // the component-by-component walker only
};

expected<std::vector<SandboxFile>> list_sandbox_files(SandboxResolver resolver,
                                                      const std::string& sandbox_root,
                                                      const std::string& relative,
                                                      size_t entries_max, SandboxFileError* why);

expected<SandboxChunk> read_sandbox_file(SandboxResolver resolver, const std::string& sandbox_root,
                                         const std::string& relative, uint64_t offset,
                                         uint64_t length_max, SandboxFileError* why);

expected<uint64_t> sandbox_file_size(SandboxResolver resolver, const std::string& sandbox_root,
                                     const std::string& relative, SandboxFileError* why);

}  // namespace detail

}  // namespace tessera
