#include "services/registry/zk_store.hpp"

#include "services/election/zk_spec.hpp"

#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace tessera {

namespace {

zhandle_t* handle(void* zh) {
  return static_cast<zhandle_t*>(zh);
}

void watcher(zhandle_t*, int type, int state, const char*, void* context) {
  if (type == ZOO_SESSION_EVENT && context)
    static_cast<ZkStore*>(context)->on_session_event(state);
}

std::string escape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '/')
      out += "%2F";
    else if (c == '%')
      out += "%25";
    else
      out += c;
  }
  return out;
}

std::string unescape(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name.compare(i, 3, "%2F") == 0) {
      out += '/';
      i += 2;
    } else if (name.compare(i, 3, "%25") == 0) {
      out += '%';
      i += 2;
    } else {
      out += name[i];
    }
  }
  return out;
}

// The connection dropped or the server answered late: the session lives
// on, and an idempotent call may be made again.
bool transient(int rc) {
  return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT;
}

uint32_t bucket_of(const std::string& key) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : key)
    h = (h ^ c) * 16777619u;
  return h % ZkStore::buckets;
}

std::string bucket_name(uint32_t b) {
  char name[3];
  std::snprintf(name, sizeof(name), "%02x", b);
  return name;
}

}  // namespace

expected<std::unique_ptr<ZkStore>> ZkStore::open(const std::string& spec, int session_timeout_ms,
                                                 int connect_timeout_ms) {
  auto zk = parse_zk_spec(spec, "--registry");
  if (!zk)
    return zk.error();
  std::unique_ptr<ZkStore> store(new ZkStore(spec, zk->hosts, zk->path));
  std::random_device random;
  store->writer_ = std::to_string(random()) + std::to_string(random());
  if (auto err = store->connect(session_timeout_ms, connect_timeout_ms))
    return err;
  // The layout, each node created once (by whichever master comes first).
  for (size_t i = 1; i <= store->root_.size(); ++i)
    if (i == store->root_.size() || store->root_[i] == '/')
      if (auto err = store->ensure(store->root_.substr(0, i)))
        return err;
  if (auto err = store->ensure(store->root_ + "/version", "registry"))
    return err;
  if (auto err = store->ensure(store->root_ + "/records"))
    return err;
  for (int b = 0; b < buckets; ++b)
    if (auto err = store->ensure(store->root_ + "/records/" + bucket_name(b)))
      return err;
  return store;
}

ZkStore::~ZkStore() {
  if (zh_)
    zookeeper_close(handle(zh_));
}

void ZkStore::on_session_event(int state) {
  if (state == ZOO_EXPIRED_SESSION_STATE)
    expired_ = true;
  {
    std::lock_guard<std::mutex> guard(state_mu_);
    state_ = state;
  }
  state_cv_.notify_all();
}

caf::error ZkStore::connect(int session_timeout_ms, int connect_timeout_ms) {
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  zh_ = zookeeper_init(hosts_.c_str(), watcher, session_timeout_ms, nullptr, this, 0);
  if (!zh_)
    return make_error(Errc::connect_failed,
                      "registry " + spec_ + ": cannot start a ZooKeeper client");
  std::unique_lock<std::mutex> lock(state_mu_);
  bool up = state_cv_.wait_for(lock, std::chrono::milliseconds(connect_timeout_ms),
                               [&] { return state_ == ZOO_CONNECTED_STATE || expired_; });
  if (!up || state_ != ZOO_CONNECTED_STATE)
    return make_error(Errc::connect_failed, "registry " + spec_ +
                                                ": no ZooKeeper server answered within " +
                                                std::to_string(connect_timeout_ms) + " ms");
  return {};
}

caf::error ZkStore::live() const {
  if (expired_)
    return make_error(Errc::stopped, "registry " + spec_ + ": the ZooKeeper session expired");
  return {};
}

caf::error ZkStore::zk_error(int rc, const std::string& what) const {
  if (rc == ZSESSIONEXPIRED || expired_)
    return make_error(Errc::stopped,
                      "registry " + spec_ + ": " + what + ": the ZooKeeper session expired");
  return make_error(Errc::os_error, "registry " + spec_ + ": " + what + ": " + zerror(rc));
}

caf::error ZkStore::ensure(const std::string& path, const std::string& data) {
  int rc = ZOK;
  // Creating what may exist is idempotent: retried while the client
  // reconnects (a loaded or electing ensemble answers late).
  for (int attempt = 0; attempt < 100; ++attempt) {
    rc = zoo_create(handle(zh_), path.c_str(), data.data(), static_cast<int>(data.size()),
                    &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, nullptr, 0);
    if (rc == ZOK || rc == ZNODEEXISTS)
      return {};
    if (!transient(rc) || expired_)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return zk_error(rc, "creating " + path);
}

std::string ZkStore::record_path(const std::string& key) const {
  return root_ + "/records/" + bucket_name(bucket_of(key)) + "/" + escape(key);
}

expected<int> ZkStore::version_now() {
  Stat stat{};
  int rc = ZOK;
  for (int attempt = 0; attempt < 100; ++attempt) {
    rc = zoo_exists(handle(zh_), (root_ + "/version").c_str(), 0, &stat);
    if (rc == ZOK)
      return stat.version;
    if (!transient(rc) || expired_)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return zk_error(rc, "reading the version");
}

namespace {

// Many asynchronous calls in flight at once, and a wait for all of them:
// reading 100,000 records one round trip at a time would take minutes.
struct Pipeline {
  std::mutex mu;
  std::condition_variable done;
  size_t pending = 0;
  int error = ZOK;
  std::string error_path;

  struct Get {
    Pipeline* pipeline;
    std::string path;
    std::string name;
    std::string value;
    bool gone = false;
  };
  struct List {
    Pipeline* pipeline;
    std::string path;
    std::vector<std::string> names;
  };

  void finish(int rc, const std::string& path) {
    std::lock_guard<std::mutex> guard(mu);
    if (rc != ZOK && error == ZOK) {
      error = rc;
      error_path = path;
    }
    if (--pending == 0)
      done.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    done.wait(lock, [&] { return pending == 0; });
  }
  void start_one() {
    std::lock_guard<std::mutex> guard(mu);
    ++pending;
  }
};

void on_get(int rc, const char* value, int len, const Stat*, const void* data) {
  auto* get = static_cast<Pipeline::Get*>(const_cast<void*>(data));
  if (rc == ZOK && value && len > 0)
    get->value.assign(value, static_cast<size_t>(len));
  get->gone = rc == ZNONODE;
  get->pipeline->finish(rc == ZNONODE ? ZOK : rc, get->path);
}

void on_list(int rc, const String_vector* names, const void* data) {
  auto* list = static_cast<Pipeline::List*>(const_cast<void*>(data));
  if (rc == ZOK && names)
    list->names.assign(names->data, names->data + names->count);
  list->pipeline->finish(rc, list->path);
}

}  // namespace

expected<RegistrySnapshot> ZkStore::load() {
  std::lock_guard<std::mutex> guard(mu_);
  if (auto err = live())
    return err;
  if (cache_) {
    // Warm (a standby reads ahead): one round trip says whether it is current.
    auto now = version_now();
    if (!now)
      return now.error();
    if (static_cast<uint64_t>(*now) == cache_->version)
      return *cache_;
  }
  constexpr size_t in_flight_max = 2000;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto before = version_now();
    if (!before)
      return before.error();
    RegistrySnapshot snap;
    snap.version = static_cast<uint64_t>(*before);
    // Every bucket's children at once, then every record, at most
    // in_flight_max outstanding.
    Pipeline lists;
    std::vector<Pipeline::List> buckets_read(buckets);
    for (int b = 0; b < buckets; ++b) {
      buckets_read[b] = {&lists, root_ + "/records/" + bucket_name(b), {}};
      lists.start_one();
      int rc = zoo_aget_children(handle(zh_), buckets_read[b].path.c_str(), 0, on_list,
                                 &buckets_read[b]);
      if (rc != ZOK)
        lists.finish(rc, buckets_read[b].path);
    }
    lists.wait();
    if (lists.error != ZOK && transient(lists.error))
      continue;  // reads are idempotent: read again once reconnected
    if (lists.error != ZOK)
      return zk_error(lists.error, "listing " + lists.error_path);
    std::vector<Pipeline::Get> gets;
    bool retry = false;
    for (auto& bucket : buckets_read)
      for (auto& name : bucket.names)
        gets.push_back({nullptr, bucket.path + "/" + name, name, {}, false});
    for (size_t first = 0; first < gets.size(); first += in_flight_max) {
      Pipeline reads;
      auto last = std::min(gets.size(), first + in_flight_max);
      for (size_t i = first; i < last; ++i) {
        gets[i].pipeline = &reads;
        reads.start_one();
        int rc = zoo_aget(handle(zh_), gets[i].path.c_str(), 0, on_get, &gets[i]);
        if (rc != ZOK)
          reads.finish(rc, gets[i].path);
      }
      reads.wait();
      if (reads.error != ZOK && transient(reads.error)) {
        retry = true;
        break;
      }
      if (reads.error != ZOK)
        return zk_error(reads.error, "reading " + reads.error_path);
    }
    if (retry) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    for (auto& get : gets)
      if (!get.gone)
        snap.records.emplace(unescape(get.name), std::move(get.value));
    auto after = version_now();
    if (!after)
      return after.error();
    if (*after == *before) {
      keys_.clear();
      for (auto& [key, _] : snap.records)
        keys_.insert(key);
      cache_ = snap;
      return snap;
    }
  }
  return make_error(Errc::conflict, "registry " + spec_ + ": kept changing while being read");
}

void ZkStore::set_fence(const std::string& node) {
  std::lock_guard<std::mutex> guard(mu_);
  fence_ = node;
}

expected<bool> ZkStore::committed_after_loss(uint64_t version, const std::string& stamp) {
  const std::string version_path = root_ + "/version";
  std::vector<char> buffer(256);
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (auto err = live())
      return err;
    int len = static_cast<int>(buffer.size());
    Stat stat{};
    int rc = zoo_get(handle(zh_), version_path.c_str(), 0, buffer.data(), &len, &stat);
    if (rc == ZOK) {
      if (std::string(buffer.data(), len < 0 ? 0 : len) == stamp)
        return true;
      if (static_cast<uint64_t>(stat.version) == version)
        return make_error(Errc::os_error, "registry " + spec_ +
                                              ": a commit was cut off with the connection; not "
                                              "applied, try again");
      return false;  // another writer moved it: a conflict
    }
    if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
      return zk_error(rc, "reading the version after a lost connection");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return make_error(Errc::timeout, "registry " + spec_ + ": no ZooKeeper server for 10 s");
}

expected<uint64_t> ZkStore::commit(uint64_t expected_version,
                                   const std::vector<RegistryChange>& changes) {
  if (auto err = check_limits(changes))
    return err;
  std::lock_guard<std::mutex> guard(mu_);
  if (auto err = live())
    return err;
  // The last change of each key wins.
  std::map<std::string, std::optional<std::string>> last;
  for (const auto& c : changes)
    last[c.key] = c.value;
  struct Op {
    std::string key;
    std::string path;
    std::optional<std::string> value;
  };
  std::vector<Op> ops;
  for (auto& [key, value] : last) {
    if (!value && !keys_.count(key))
      continue;  // deleting what is not there
    ops.push_back({key, record_path(key), value});
  }
  auto version = expected_version;
  const std::string version_path = root_ + "/version";
  size_t next = 0;
  do {
    // One multi-op: the compare-and-set on the version, then as many
    // records as fit one request.
    std::vector<zoo_op_t> batch(1);
    std::vector<const Op*> taken;
    size_t bytes = 0;
    while (next < ops.size() && taken.size() + 1 < multi_ops_max) {
      auto size = ops[next].path.size() + (ops[next].value ? ops[next].value->size() : 0) + 64;
      if (!taken.empty() && bytes + size > multi_bytes_max)
        break;
      bytes += size;
      taken.push_back(&ops[next++]);
    }
    // The version znode's data names this commit, so that a commit whose
    // answer was lost with the connection can be told from one never made.
    std::string stamp =
        std::to_string(version + 1) + " " + writer_ + " " + std::to_string(++commits_);
    zoo_set_op_init(&batch[0], version_path.c_str(), stamp.data(), static_cast<int>(stamp.size()),
                    static_cast<int>(version), nullptr);
    if (!fence_.empty()) {
      zoo_op_t check;
      zoo_check_op_init(&check, fence_.c_str(), -1);
      batch.push_back(check);
    }
    for (auto* op : taken) {
      zoo_op_t o;
      if (!op->value)
        zoo_delete_op_init(&o, op->path.c_str(), -1);
      else if (keys_.count(op->key))
        zoo_set_op_init(&o, op->path.c_str(), op->value->data(),
                        static_cast<int>(op->value->size()), -1, nullptr);
      else
        zoo_create_op_init(&o, op->path.c_str(), op->value->data(),
                           static_cast<int>(op->value->size()), &ZOO_OPEN_ACL_UNSAFE,
                           ZOO_PERSISTENT, nullptr, 0);
      batch.push_back(o);
    }
    std::vector<zoo_op_result_t> results(batch.size());
    int rc = zoo_multi(handle(zh_), static_cast<int>(batch.size()), batch.data(), results.data());
    if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
      // The client reconnects within the session: ask the version znode
      // whether this multi-op happened.
      auto outcome = committed_after_loss(version, stamp);
      if (!outcome)
        return outcome.error();
      rc = *outcome ? ZOK : ZBADVERSION;
      results[0].err = rc;
    }
    if (rc != ZOK) {
      if (!fence_.empty() && results[1].err == ZNONODE)
        return make_error(Errc::conflict, "registry " + spec_ + ": " + fence_ +
                                              " is gone: this master's lead ended");
      if (results[0].err == ZBADVERSION)
        return make_error(Errc::conflict, "registry " + spec_ + " moved past version " +
                                              std::to_string(version) +
                                              ": another master wrote it");
      return zk_error(rc, "committing " + std::to_string(taken.size()) + " record(s)");
    }
    for (auto* op : taken) {
      if (op->value)
        keys_.insert(op->key);
      else
        keys_.erase(op->key);
    }
    ++version;
  } while (next < ops.size());
  if (cache_ && cache_->version == expected_version) {
    for (auto& [key, value] : last)
      if (value)
        cache_->records[key] = *value;
      else
        cache_->records.erase(key);
    cache_->version = version;
  } else {
    cache_.reset();
  }
  return version;
}

}  // namespace tessera
