#include "services/security/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace tessera::security {

namespace fs = std::filesystem;

expected<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(Errc::invalid_argument,
                      "cannot read " + path.string() + ": " + std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

expected<void> write_file_atomically(const fs::path& path, const std::string& bytes, mode_t mode) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return make_error(Errc::os_error, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, mode) == 0;  // whatever the umask
  size_t done = 0;
  while (ok && done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  ok = ok && ::fsync(fd) == 0;
  auto err = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok)
    return make_error(Errc::os_error, "cannot write " + tmp.string() + ": " + std::strerror(err));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return make_error(Errc::os_error, "cannot write " + path.string() + ": " + ec.message());
  return {};
}

}  // namespace tessera::security
