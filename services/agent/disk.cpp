#include "services/agent/disk.hpp"

#include <cerrno>
#include <cstring>
#include <set>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tessera {

namespace fs = std::filesystem;

namespace {

class PosixDisk final : public Disk {
 public:
  Kind kind(const fs::path& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
      return Kind::none;
    return S_ISDIR(st.st_mode) ? Kind::dir : Kind::file;
  }

  expected<void> make_dir(const fs::path& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return make_os_error(errno, "mkdir(" + dir.string() + ")");
    return {};
  }

  expected<void> write_new_file(const fs::path& file, std::string_view bytes, bool sync) override {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      return make_os_error(errno, "open(" + file.string() + ")");
    while (!bytes.empty()) {
      ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        int saved = errno;
        ::close(fd);
        return make_os_error(saved, "write(" + file.string() + ")");
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    if (sync && ::fsync(fd) != 0) {
      int saved = errno;
      ::close(fd);
      return make_os_error(saved, "fsync(" + file.string() + ")");
    }
    if (::close(fd) != 0)
      return make_os_error(errno, "close(" + file.string() + ")");
    return {};
  }

  expected<void> rename(const fs::path& from, const fs::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return make_os_error(errno, "rename(" + from.string() + ")");
    return {};
  }

  expected<void> sync_dir(const fs::path& dir) override {
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

  expected<void> sync_all(const fs::path& any) override {
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

  expected<void> remove(const fs::path& path) override {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec)
      return make_error(Errc::os_error, "remove(" + path.string() + "): " + ec.message());
    return {};
  }

  expected<void> remove_all(const fs::path& path) override {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec)
      return make_error(Errc::os_error, "remove_all(" + path.string() + "): " + ec.message());
    return {};
  }

  expected<std::vector<Entry>> list(const fs::path& dir) override {
    std::error_code ec;
    std::vector<Entry> out;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code kind_ec;
      out.push_back(Entry{it->path().filename().string(), it->is_directory(kind_ec)});
    }
    if (ec)
      return make_error(Errc::os_error, "list(" + dir.string() + "): " + ec.message());
    return out;
  }

  expected<std::string> read_file(const fs::path& file, size_t bytes_max) override {
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
    if (size > bytes_max) {
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
    return bytes;
  }
};

// The path's components that name something ("/" and "." left out).
std::vector<std::string> components(const fs::path& path) {
  std::vector<std::string> out;
  for (const auto& part : path.lexically_normal()) {
    auto s = part.string();
    if (s.empty() || s == "/" || s == ".")
      continue;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

Disk& posix_disk() {
  static PosixDisk disk;
  return disk;
}

// -- MemoryDisk -------------------------------------------------------------------

MemoryDisk::MemoryDisk(uint64_t capacity_bytes)
    : root_(std::make_shared<Inode>()), capacity_bytes_(capacity_bytes) {
  root_->is_dir = true;
}

std::shared_ptr<MemoryDisk::Inode> MemoryDisk::lookup(const fs::path& path) {
  auto node = root_;
  for (const auto& name : components(path)) {
    if (!node->is_dir)
      return nullptr;
    auto it = node->entries.find(name);
    if (it == node->entries.end())
      return nullptr;
    node = it->second;
  }
  return node;
}

std::pair<std::shared_ptr<MemoryDisk::Inode>, std::string> MemoryDisk::parent_of(
    const fs::path& path, caf::error& err, const char* op) {
  auto parts = components(path);
  if (parts.empty()) {
    err = make_os_error(EBUSY, std::string(op) + "(" + path.string() + ")");
    return {};
  }
  auto name = parts.back();
  parts.pop_back();
  auto node = root_;
  for (const auto& part : parts) {
    auto it = node->entries.find(part);
    if (it == node->entries.end()) {
      err = make_os_error(ENOENT, std::string(op) + "(" + path.string() + ")");
      return {};
    }
    node = it->second;
    if (!node->is_dir) {
      err = make_os_error(ENOTDIR, std::string(op) + "(" + path.string() + ")");
      return {};
    }
  }
  return {node, name};
}

uint64_t MemoryDisk::bytes_under(const Inode& inode) {
  if (!inode.is_dir)
    return inode.data.size();
  uint64_t n = 0;
  for (const auto& [name, child] : inode.entries)
    n += bytes_under(*child);
  return n;
}

Disk::Kind MemoryDisk::kind(const fs::path& path) {
  std::lock_guard<std::mutex> guard(mu_);
  auto node = lookup(path);
  if (!node)
    return Kind::none;
  return node->is_dir ? Kind::dir : Kind::file;
}

expected<void> MemoryDisk::make_dir(const fs::path& dir) {
  std::lock_guard<std::mutex> guard(mu_);
  caf::error err;
  auto [parent, name] = parent_of(dir, err, "mkdir");
  if (err)
    return err;
  if (auto it = parent->entries.find(name); it != parent->entries.end())
    return {};  // EEXIST
  auto node = std::make_shared<Inode>();
  node->is_dir = true;
  parent->entries[name] = std::move(node);
  return {};
}

expected<void> MemoryDisk::write_new_file(const fs::path& file, std::string_view bytes, bool sync) {
  std::lock_guard<std::mutex> guard(mu_);
  caf::error err;
  auto [parent, name] = parent_of(file, err, "open");
  if (err)
    return err;
  if (parent->entries.count(name))
    return make_os_error(EEXIST, "open(" + file.string() + ")");
  auto node = std::make_shared<Inode>();
  parent->entries[name] = node;
  if (used_bytes_ + bytes.size() > capacity_bytes_) {
    // As write(2) on a full disk: the file exists, empty; the caller removes it.
    ++enospc_;
    return make_os_error(ENOSPC, "write(" + file.string() + ")");
  }
  node->data.assign(bytes.data(), bytes.size());
  used_bytes_ += bytes.size();
  if (sync)
    node->durable_data = node->data;
  return {};
}

expected<void> MemoryDisk::rename(const fs::path& from, const fs::path& to) {
  std::lock_guard<std::mutex> guard(mu_);
  caf::error err;
  auto [from_dir, from_name] = parent_of(from, err, "rename");
  if (err)
    return err;
  auto [to_dir, to_name] = parent_of(to, err, "rename");
  if (err)
    return err;
  auto it = from_dir->entries.find(from_name);
  if (it == from_dir->entries.end())
    return make_os_error(ENOENT, "rename(" + from.string() + ")");
  auto node = it->second;
  if (auto old = to_dir->entries.find(to_name); old != to_dir->entries.end()) {
    if (old->second == node)
      return {};
    if (old->second->is_dir != node->is_dir ||
        (old->second->is_dir && !old->second->entries.empty()))
      return make_os_error(old->second->is_dir ? ENOTEMPTY : EISDIR,
                           "rename(" + from.string() + ")");
    used_bytes_ -= bytes_under(*old->second);
  }
  from_dir->entries.erase(from_name);
  to_dir->entries[to_name] = std::move(node);
  return {};
}

expected<void> MemoryDisk::sync_dir(const fs::path& dir) {
  std::lock_guard<std::mutex> guard(mu_);
  auto node = lookup(dir);
  if (!node)
    return make_os_error(ENOENT, "open(" + dir.string() + ")");
  if (!node->is_dir)
    return make_os_error(ENOTDIR, "open(" + dir.string() + ")");
  node->durable_entries = node->entries;
  return {};
}

void MemoryDisk::sync_tree(Inode& inode) {
  if (!inode.is_dir) {
    inode.durable_data = inode.data;
    return;
  }
  inode.durable_entries = inode.entries;
  for (auto& [name, child] : inode.entries)
    sync_tree(*child);
}

expected<void> MemoryDisk::sync_all(const fs::path& path) {
  std::lock_guard<std::mutex> guard(mu_);
  if (!lookup(path))
    return make_os_error(ENOENT, "open(" + path.string() + ")");
  sync_tree(*root_);
  return {};
}

expected<void> MemoryDisk::remove(const fs::path& path) {
  std::lock_guard<std::mutex> guard(mu_);
  caf::error err;
  auto [parent, name] = parent_of(path, err, "remove");
  if (err)
    return {};  // a missing parent: nothing to remove
  auto it = parent->entries.find(name);
  if (it == parent->entries.end())
    return {};
  if (it->second->is_dir && !it->second->entries.empty())
    return make_error(Errc::os_error, "remove(" + path.string() + "): " + std::strerror(ENOTEMPTY));
  used_bytes_ -= bytes_under(*it->second);
  parent->entries.erase(it);
  return {};
}

expected<void> MemoryDisk::remove_all(const fs::path& path) {
  std::lock_guard<std::mutex> guard(mu_);
  caf::error err;
  auto [parent, name] = parent_of(path, err, "remove_all");
  if (err)
    return {};  // a missing parent: nothing to remove
  auto it = parent->entries.find(name);
  if (it == parent->entries.end())
    return {};
  used_bytes_ -= bytes_under(*it->second);
  parent->entries.erase(it);
  return {};
}

expected<std::vector<Disk::Entry>> MemoryDisk::list(const fs::path& dir) {
  std::lock_guard<std::mutex> guard(mu_);
  auto node = lookup(dir);
  if (!node || !node->is_dir)
    return make_error(Errc::os_error,
                      "list(" + dir.string() + "): " + std::strerror(node ? ENOTDIR : ENOENT));
  std::vector<Entry> out;
  for (const auto& [name, child] : node->entries)
    out.push_back(Entry{name, child->is_dir});
  return out;
}

expected<std::string> MemoryDisk::read_file(const fs::path& file, size_t bytes_max) {
  std::lock_guard<std::mutex> guard(mu_);
  auto node = lookup(file);
  if (!node)
    return make_os_error(ENOENT, "open(" + file.string() + ")");
  if (node->is_dir)
    return make_os_error(EISDIR, "read(" + file.string() + ")");
  if (node->data.size() > bytes_max)
    return make_error(Errc::oversized,
                      file.string() + ": " + std::to_string(node->data.size()) + " bytes");
  return node->data;
}

bool MemoryDisk::durable(const fs::path& path) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto node = root_;
  for (const auto& name : components(path)) {
    auto it = node->durable_entries.find(name);
    if (it == node->durable_entries.end())
      return false;
    node = it->second;
  }
  return true;
}

void MemoryDisk::crash() {
  std::lock_guard<std::mutex> guard(mu_);
  // Back to the durable version, from the root down: what is not linked
  // durably is gone; what is linked durably keeps only its synced content.
  std::set<Inode*> seen;
  std::vector<Inode*> todo{root_.get()};
  while (!todo.empty()) {
    auto* node = todo.back();
    todo.pop_back();
    if (!seen.insert(node).second)
      continue;
    if (node->is_dir) {
      node->entries = node->durable_entries;
      for (auto& [name, child] : node->entries)
        todo.push_back(child.get());
    } else {
      node->data = node->durable_data;
    }
  }
  used_bytes_ = bytes_under(*root_);
}

void MemoryDisk::set_capacity_bytes(uint64_t capacity_bytes) {
  std::lock_guard<std::mutex> guard(mu_);
  capacity_bytes_ = capacity_bytes;
}

uint64_t MemoryDisk::capacity_bytes() const {
  std::lock_guard<std::mutex> guard(mu_);
  return capacity_bytes_;
}

uint64_t MemoryDisk::used_bytes() const {
  std::lock_guard<std::mutex> guard(mu_);
  return used_bytes_;
}

uint64_t MemoryDisk::enospc_count() const {
  std::lock_guard<std::mutex> guard(mu_);
  return enospc_;
}

}  // namespace tessera
