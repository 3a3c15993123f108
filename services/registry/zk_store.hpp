#pragma once
// ZkStore: the registry in ZooKeeper (--registry zk://HOST:PORT[,...]/PATH),
// replicated by the ensemble, for masters that fail over to each other.
//
// Layout under PATH:
//   version                 its znode version is the registry's version
//   records/<bb>/<key>      one znode per record; <bb> is a bucket, two hex
//                           digits of the key's hash (256 buckets, so no
//                           node has more than a few hundred children even
//                           with 100,000 records), <key> the record's key
//                           with '/' and '%' escaped as %2F and %25
// A commit is one ZooKeeper multi-op: the version znode set with the
// version the writer last saw (compare-and-set: a master that lost its lead
// fails with Errc::conflict and writes nothing), then the records' creates,
// sets and deletes. A commit larger than one request may carry (ZooKeeper's
// 1 MiB jute.maxbuffer) goes as several multi-ops, each with its own
// compare-and-set; a crash between them leaves some of its records written
// and the master that made it never acted on any (the registry's records
// are written before they are acted on).
// load() reads every bucket; it retries when the version moved meanwhile.
// It keeps what it read (and commit() what it wrote) at its version, and
// answers that after one version check while nothing else wrote.
// With a fence (set_fence: the leader's election node), every multi-op also
// checks that node exists: once the leader's session has ended, its writes
// fail with Errc::conflict however early.
// The session: a store whose ZooKeeper session expired fails every call
// with Errc::stopped (a master then stops: it must not write after its
// session is gone). Thread-safety: as RegistryStore.

#include "services/registry/store.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace tessera {

class ZkStore : public RegistryStore {
 public:
  static constexpr int buckets = 256;
  static constexpr size_t multi_bytes_max = 512 * 1024;  // per multi-op request
  static constexpr size_t multi_ops_max = 1000;

  // spec: "zk://127.0.0.1:2181,127.0.0.1:2182/tessera". Connects (waiting at
  // most connect_timeout_ms) and creates PATH's layout if it is missing.
  static expected<std::unique_ptr<ZkStore>> open(const std::string& spec,
                                                 int session_timeout_ms = 10'000,
                                                 int connect_timeout_ms = 15'000);
  ~ZkStore() override;
  ZkStore(const ZkStore&) = delete;
  ZkStore& operator=(const ZkStore&) = delete;

  expected<RegistrySnapshot> load() override;
  expected<uint64_t> commit(uint64_t expected_version,
                            const std::vector<RegistryChange>& changes) override;
  std::string describe() const override { return spec_; }
  bool broken() const override { return expired_; }
  void set_fence(const std::string& node) override;

  // Called by the client library's thread on session events.
  void on_session_event(int state);

 private:
  ZkStore(std::string spec, std::string hosts, std::string root)
      : spec_(std::move(spec)), hosts_(std::move(hosts)), root_(std::move(root)) {}
  caf::error connect(int session_timeout_ms, int connect_timeout_ms);
  caf::error ensure(const std::string& path, const std::string& data = {});
  caf::error live() const;
  caf::error zk_error(int rc, const std::string& what) const;
  std::string record_path(const std::string& key) const;
  expected<int> version_now();
  // After a multi-op's connection was lost: whether it was applied (true),
  // another writer moved the version (false), or it was not (an error:
  // the caller fails the commit, and nothing of it was written).
  expected<bool> committed_after_loss(uint64_t version, const std::string& stamp);

  std::string spec_;
  std::string hosts_;
  std::string root_;
  void* zh_ = nullptr;  // zhandle_t*
  std::mutex mu_;       // one call at a time
  std::mutex state_mu_;
  std::condition_variable state_cv_;
  int state_ = 0;
  std::atomic<bool> expired_{false};
  std::set<std::string> keys_;  // records that exist, as this writer knows them
  // The last snapshot read or written, at its version: load() answers it
  // after one version check when nothing moved since (a standby master
  // reads ahead, so a failover does not wait for a full read).
  std::optional<RegistrySnapshot> cache_;
  std::string writer_;  // random, names this store's commits
  std::string fence_;   // a znode every commit checks exists (set_fence)
  uint64_t commits_ = 0;
};

}  // namespace tessera
