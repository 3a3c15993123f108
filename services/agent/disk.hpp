#pragma once
// Disk: the few file-system operations the agent's checkpoints use
// (checkpoint.cpp, checkpoint_writer.cpp), behind an interface so that the
// chaos simulation can run real recovery on a disk that loses what was not
// synced at a crash and can fill up.
//
//  - posix_disk(): the real file system, the default everywhere.
//  - MemoryDisk: in memory. Each file's content and each directory's
//    entries have a current and a durable version; sync_file makes a file's
//    content durable, sync_dir a directory's entries (creations, renames and
//    removals in it), sync_all everything. crash() puts every file and
//    directory back to its durable version (a rename whose directory was not
//    synced may be lost; unsynced content is lost: a file linked durably but
//    never fsynced comes back empty, as on ext4). A capacity in bytes makes
//    writes beyond it fail with ENOSPC, as a full disk would.
//
// Errors are values (Errc::os_error with the errno's text, Errc::oversized).
// Thread-safety: both implementations may be used from any thread.

#include "runtime/error.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

class Disk {
 public:
  enum class Kind { none, file, dir };
  struct Entry {
    std::string name;
    bool is_dir = false;
  };

  virtual ~Disk() = default;

  // What path is (none: it does not exist or cannot be looked at).
  virtual Kind kind(const std::filesystem::path& path) = 0;
  // Creates the directory dir (its parent must exist); existing is success.
  virtual expected<void> make_dir(const std::filesystem::path& dir) = 0;
  // Creates file (it must not exist) holding bytes; fsyncs it when sync.
  virtual expected<void> write_new_file(const std::filesystem::path& file, std::string_view bytes,
                                        bool sync) = 0;
  // Replaces to by from (rename(2)).
  virtual expected<void> rename(const std::filesystem::path& from,
                                const std::filesystem::path& to) = 0;
  // Makes dir's entries durable (fsync of the directory).
  virtual expected<void> sync_dir(const std::filesystem::path& dir) = 0;
  // Makes everything on the file system holding path durable (syncfs).
  virtual expected<void> sync_all(const std::filesystem::path& path) = 0;
  // Removes a file or an empty directory; a missing one is success.
  virtual expected<void> remove(const std::filesystem::path& path) = 0;
  // Removes path and everything under it; a missing one is success.
  virtual expected<void> remove_all(const std::filesystem::path& path) = 0;
  // The entries of dir, in no particular order.
  virtual expected<std::vector<Entry>> list(const std::filesystem::path& dir) = 0;
  // file's content; Errc::oversized when it holds more than bytes_max.
  virtual expected<std::string> read_file(const std::filesystem::path& file, size_t bytes_max) = 0;
};

// The real file system (POSIX calls). Lives for the whole process.
Disk& posix_disk();

class MemoryDisk final : public Disk {
 public:
  // capacity_bytes: most bytes of file content it holds (current versions).
  explicit MemoryDisk(uint64_t capacity_bytes = UINT64_MAX);

  Kind kind(const std::filesystem::path& path) override;
  expected<void> make_dir(const std::filesystem::path& dir) override;
  expected<void> write_new_file(const std::filesystem::path& file, std::string_view bytes,
                                bool sync) override;
  expected<void> rename(const std::filesystem::path& from,
                        const std::filesystem::path& to) override;
  expected<void> sync_dir(const std::filesystem::path& dir) override;
  expected<void> sync_all(const std::filesystem::path& path) override;
  expected<void> remove(const std::filesystem::path& path) override;
  expected<void> remove_all(const std::filesystem::path& path) override;
  expected<std::vector<Entry>> list(const std::filesystem::path& dir) override;
  expected<std::string> read_file(const std::filesystem::path& file, size_t bytes_max) override;

  // Whether path would survive a crash now (every entry on its way synced).
  bool durable(const std::filesystem::path& path) const;
  // The machine lost power: everything not synced is gone.
  void crash();
  // A write that would take the content beyond capacity fails (ENOSPC).
  void set_capacity_bytes(uint64_t capacity_bytes);
  uint64_t capacity_bytes() const;
  uint64_t used_bytes() const;
  // Operations refused for lack of space so far.
  uint64_t enospc_count() const;

 private:
  struct Inode {
    bool is_dir = false;
    std::string data;                                       // file: current content
    std::string durable_data;                               // file: content as of its last sync
    std::map<std::string, std::shared_ptr<Inode>> entries;  // dir: current
    std::map<std::string, std::shared_ptr<Inode>> durable_entries;  // dir: as of its last sync
  };
  // The directory holding path's last component, and that component.
  std::pair<std::shared_ptr<Inode>, std::string> parent_of(const std::filesystem::path& path,
                                                           caf::error& err, const char* op);
  std::shared_ptr<Inode> lookup(const std::filesystem::path& path);
  static uint64_t bytes_under(const Inode& inode);
  static void sync_tree(Inode& inode);

  mutable std::mutex mu_;
  std::shared_ptr<Inode> root_;
  uint64_t capacity_bytes_;
  uint64_t used_bytes_ = 0;
  uint64_t enospc_ = 0;
};

}  // namespace tessera
