#pragma once
// Task sandboxes: where they live under the agent's work directory, and the
// bounded, path-checked reads that ReadSandboxFile serves (Mesos /files/read).
//
//   <work_dir>/frameworks/<framework>/executors/<executor>/runs/<run>/
//
// Ids come from the network, so only ids that are one plain path component
// (valid_path_id) ever become directories.

#include "runtime/error.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace tessera::sandbox {

inline constexpr uint64_t read_bytes_max = uint64_t{1} << 20;
inline constexpr size_t id_bytes_max = 255;

// 1..id_bytes_max bytes, no '/', no control characters, not "." or "..".
bool valid_path_id(std::string_view id);

std::filesystem::path directory(const std::filesystem::path& work_dir,
                                const std::string& framework_id, const std::string& executor_id,
                                const std::string& run_id);

// Makes uid:gid the owner of dir and, with recursive, of everything under
// it, deepest first and without following symlinks (lchown): the agent
// hands a sandbox it filled as root to the task's user before any process
// of that user can write into it. The first failure is returned
// (Errc::os_error naming the path).
caf::error give_to(const std::filesystem::path& dir, uint32_t uid, uint32_t gid, bool recursive);

struct FileChunk {
  std::string data;   // the bytes at [offset, offset + data.size())
  uint64_t size = 0;  // the whole file's size
};

// Reads at most min(length_max, read_bytes_max) bytes of <sandbox>/<relative>
// from offset. Refuses (Errc::invalid_argument) an empty path, a leading '/',
// a ".." component, and a path that leaves the sandbox through a symlink; an
// unreadable or non-regular file is an Errc::os_error.
expected<FileChunk> read(const std::filesystem::path& sandbox, std::string_view relative,
                         uint64_t offset, uint64_t length_max);

}  // namespace tessera::sandbox
