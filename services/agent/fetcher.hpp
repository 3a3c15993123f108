#pragma once
// The agent's fetcher (Mesos's mesos-fetcher): puts a task's URIs into its
// sandbox before the task starts. A plain, blocking library without actors;
// the agent calls it from a worker thread (Actor::blocking).
//
// Contract of Fetcher::fetch(uris, sandbox):
//  - Sources: `file:///abs/path` (or `file://localhost/abs/path`) and plain
//    absolute paths are copied, only from under FetcherConfig::allowed_paths
//    (none when it is empty): the path with every symlink and ".." resolved
//    must lie in one of those directories, and the file is then opened
//    from that directory with openat2(RESOLVE_BENEATH, no symlinks), so a
//    symlink swapped in after the check cannot lead out. A source outside
//    them fails with Errc::invalid_argument saying so; `http://host[:port]/path[?query]` and
//    `https://...` are downloaded (GET, 200 only, at most redirects_max
//    redirects, each to http:// or https:// again, resolved as RFC 3986
//    says). Hosts may be names, IPv4 or bracketed IPv6 addresses
//    (`http://[::1]:8080/x`). URIs are parsed by uriparser: percent escapes
//    are decoded in file paths and names (a plain path is taken as it is).
//    https verifies the server's certificate (FetcherConfig::ca_file, else
//    the system's CAs); a cpp-httplib built without OpenSSL refuses https
//    with an error that says so. Any other scheme is refused.
//  - The file lands in the sandbox under the URI's last path segment,
//    decoded (query and fragment dropped), which must be one plain path
//    component (sandbox::valid_path_id). It is written under a temporary name and
//    renamed, so a failed fetch leaves no partial file at that name.
//  - executable: the file is chmod 0755 and never extracted (as in Mesos).
//    Otherwise, extract and a name ending in .tar, .tar.gz, .tgz, .tar.bz2,
//    .tar.xz or .zip: the archive is also unpacked into the sandbox. Entries
//    with an absolute path or a ".." component, entries written through a
//    symlink, and anything but files, directories and links are refused;
//    modes keep only the 0777 bits (no setuid from an archive).
//  - cache (and a FetcherCache given): a copy kept in the cache is copied
//    into the sandbox without touching the source; otherwise the fetched file
//    is copied into the cache after the fetch.
//  - URIs are fetched in order; the first failure ends the fetch and is
//    returned as an error whose text names the URI and the cause:
//      "fetch http://127.0.0.1:8080/x.tgz: HTTP 404"
//      "fetch file:///nope: No such file or directory"
//      "extract x.tgz: <libarchive's message>"
//    Codes: invalid_argument (URI, name, archive entry), connect_failed
//    (network, non-200 status), timeout, oversized (a *_max limit), malformed
//    (an archive libarchive cannot read), os_error (the file system).
//
// FetcherCache: files keyed by URI (file name = hex SHA-256 of the URI) in one
// directory that it alone uses, at most bytes_max bytes, least recently used
// evicted first when inserting. Recency is the file's mtime, set strictly
// increasing on every insert and hit, so a new FetcherCache on the same
// directory (an agent restart) rebuilds the same index and order. Entries are
// written to a temporary file, fsync'ed and renamed into place: a crash leaves
// at most a temporary file, which the next open deletes, never a half entry.
// A hit copies out of an already opened file, so a concurrent eviction never
// tears it. While inserts run, their temporary files may exceed bytes_max.
//
// Thread-safety: Fetcher::fetch and every FetcherCache member may be called
// from any thread concurrently. Concurrent misses on one URI each fetch it.
// Ownership: the caller owns the FetcherCache and keeps it alive as long as
// any Fetcher that points to it. No global state.

#include "runtime/error.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessera {

struct FetchUri {
  std::string value;
  bool extract = true;
  bool executable = false;
  bool cache = false;
};

struct FetchedFile {
  std::string uri;
  std::filesystem::path path;  // the fetched file in the sandbox
  uint64_t bytes = 0;          // its size
  bool from_cache = false;
  bool extracted = false;  // it was an archive and was unpacked
  uint64_t entries = 0;    // archive entries unpacked
};

struct FetchReport {
  std::vector<FetchedFile> files;  // one per URI, in order
};

struct FetcherConfig {
  // One fetched file (download or copy), before any extraction.
  uint64_t download_bytes_max = uint64_t{4} << 30;
  // TCP connect, and any one wait for bytes from the server.
  std::chrono::milliseconds connect_timeout_ms{10000};
  std::chrono::milliseconds read_timeout_ms{30000};
  // One whole download, redirects included.
  std::chrono::milliseconds download_timeout_ms{3600000};
  uint32_t redirects_max = 5;
  // Directories (absolute) that file:// and plain-path sources may come
  // from, with everything under them; empty: no local source at all
  // (`tessera agent --fetcher-allowed-paths`).
  std::vector<std::filesystem::path> allowed_paths;
  // https://: the certificate authorities a server's certificate must chain
  // to (a PEM file); empty: the system's (OpenSSL's default paths).
  std::filesystem::path ca_file;
  // What one archive may unpack to.
  uint64_t extract_bytes_max = uint64_t{16} << 30;
  uint64_t extract_entries_max = 100000;
};

class FetcherCache {
 public:
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
  };

  // Creates dir if needed, deletes leftover temporary files, and indexes the
  // entries already there (evicting the oldest beyond bytes_max).
  static expected<std::unique_ptr<FetcherCache>> open(std::filesystem::path dir,
                                                      uint64_t bytes_max);
  FetcherCache(const FetcherCache&) = delete;
  FetcherCache& operator=(const FetcherCache&) = delete;

  // On a hit, copies the entry for uri to dest (created or truncated), makes
  // it the most recently used and returns true; on a miss returns false.
  expected<bool> copy_out(const std::string& uri, const std::filesystem::path& dest);
  // Copies source in as the entry for uri, replacing any, evicting the least
  // recently used entries to stay within bytes_max. A file larger than
  // bytes_max is not cached: returns false.
  expected<bool> insert(const std::string& uri, const std::filesystem::path& source);

  bool contains(const std::string& uri) const;  // no recency change
  Stats stats() const;
  const std::filesystem::path& dir() const { return dir_; }
  uint64_t bytes_max() const { return bytes_max_; }

  // The entry's file name for uri: 64 lowercase hex digits.
  static std::string key(const std::string& uri);

 private:
  struct Entry {
    std::string key;
    uint64_t bytes = 0;
  };
  using Lru = std::list<Entry>;  // front: least recently used

  FetcherCache(std::filesystem::path dir, uint64_t bytes_max);
  caf::error rebuild();
  // Gives the open entry fd the next recency stamp as its mtime. Requires mutex_.
  void stamp(int fd);
  // Evicts least recently used entries until bytes more fit. Requires mutex_.
  void evict_for(uint64_t bytes);

  const std::filesystem::path dir_;
  const uint64_t bytes_max_;
  mutable std::mutex mutex_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> index_;
  uint64_t bytes_ = 0;
  int64_t last_stamp_ns_ = 0;  // the newest mtime given to an entry
  Stats counters_;
};

class Fetcher {
 public:
  // cache may be null: cache=true URIs are then fetched directly.
  explicit Fetcher(FetcherConfig config, FetcherCache* cache = nullptr);

  // sandbox must exist. Blocks until every URI is fetched or one fails.
  expected<FetchReport> fetch(const std::vector<FetchUri>& uris,
                              const std::filesystem::path& sandbox) const;

  const FetcherConfig& config() const { return config_; }

 private:
  expected<FetchedFile> fetch_one(const FetchUri& uri, const std::filesystem::path& root) const;

  const FetcherConfig config_;
  FetcherCache* const cache_;
};

}  // namespace tessera
