#include "services/agent/sandbox.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace tessera::sandbox {

namespace fs = std::filesystem;

namespace {

// Closes one descriptor on every path out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

caf::error check_relative(std::string_view relative) {
  if (relative.empty())
    return make_error(Errc::invalid_argument, "empty path");
  if (relative.front() == '/')
    return make_error(Errc::invalid_argument, "absolute path");
  if (relative.find('\0') != std::string_view::npos)
    return make_error(Errc::invalid_argument, "path with a NUL byte");
  for (const auto& part : fs::path(relative))
    if (part == "..")
      return make_error(Errc::invalid_argument, "path with '..'");
  return caf::none;
}

}  // namespace

bool valid_path_id(std::string_view id) {
  if (id.empty() || id.size() > id_bytes_max || id == "." || id == "..")
    return false;
  return std::none_of(id.begin(), id.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return c == '/' || u < 0x20 || u == 0x7f;
  });
}

fs::path directory(const fs::path& work_dir, const std::string& framework_id,
                   const std::string& executor_id, const std::string& run_id) {
  return work_dir / "frameworks" / framework_id / "executors" / executor_id / "runs" / run_id;
}

caf::error give_to(const fs::path& dir, uint32_t uid, uint32_t gid, bool recursive) {
  std::vector<fs::path> paths;
  if (recursive) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      paths.push_back(it->path());
    if (ec)
      return make_os_error(ec.value(), "listing " + dir.string());
  }
  // Deepest first, the directory itself last: until then the user can
  // write nowhere in the tree.
  for (auto it = paths.rbegin(); it != paths.rend(); ++it)
    if (::lchown(it->c_str(), uid, gid) != 0)
      return make_os_error(errno, "chown " + it->string());
  if (::lchown(dir.c_str(), uid, gid) != 0)
    return make_os_error(errno, "chown " + dir.string());
  return caf::none;
}

expected<FileChunk> read(const fs::path& sandbox, std::string_view relative, uint64_t offset,
                         uint64_t length_max) {
  if (auto err = check_relative(relative))
    return err;
  std::error_code ec;
  auto root = fs::canonical(sandbox, ec);
  if (ec)
    return make_os_error(ec.value(), "sandbox " + sandbox.string());
  auto target = fs::canonical(root / relative, ec);
  if (ec)
    return make_os_error(ec.value(), std::string(relative));
  auto [end, _] = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
  if (end != root.end())
    return make_error(Errc::invalid_argument, "path leaves the sandbox");
  Fd file{::open(target.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0)
    return make_os_error(errno, "open(" + std::string(relative) + ")");
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    return make_os_error(errno, "fstat(" + std::string(relative) + ")");
  if (!S_ISREG(st.st_mode))
    return make_error(Errc::invalid_argument, std::string(relative) + " is not a regular file");
  FileChunk out;
  out.size = static_cast<uint64_t>(st.st_size);
  if (offset >= out.size)
    return out;
  auto want = std::min({length_max, read_bytes_max, out.size - offset});
  out.data.resize(want);
  size_t got = 0;
  while (got < want) {
    auto n = ::pread(file.fd, out.data.data() + got, want - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return make_os_error(errno, "read(" + std::string(relative) + ")");
    if (n == 0)
      break;  // the file shrank meanwhile
    got += static_cast<size_t>(n);
  }
  out.data.resize(got);
  return out;
}

}  // namespace tessera::sandbox
