#include "services/election/zk_election.hpp"

#include "runtime/log.hpp"

#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <chrono>
#include <random>

namespace tessera {

namespace {

constexpr const char* member_prefix = "member_";

zhandle_t* handle(void* zh) {
  return static_cast<zhandle_t*>(zh);
}

// What the client's callbacks are given: which object and which of its
// sessions they belong to.
struct SessionContext {
  ZkElection* self;
  uint64_t epoch;
};

void session_watcher(zhandle_t*, int type, int state, const char*, void* context) {
  auto* c = static_cast<SessionContext*>(context);
  if (type == ZOO_SESSION_EVENT && c)
    c->self->on_session_event(c->epoch, state);
}

void children_watcher(zhandle_t*, int type, int, const char*, void* context) {
  auto* c = static_cast<SessionContext*>(context);
  if (type == ZOO_CHILD_EVENT && c)
    c->self->on_children_changed(c->epoch);
}

std::string random_token() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) | rd());
  char text[33];
  std::snprintf(text, sizeof(text), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return text;
}

}  // namespace

struct ZkElection::Call {
  ZkElection* self;
  uint64_t epoch;
  std::string node;
};

namespace {

void children_done(int rc, const String_vector* strings, const void* data) {
  std::unique_ptr<ZkElection::Call> call(static_cast<ZkElection::Call*>(const_cast<void*>(data)));
  std::vector<std::string> names;
  if (rc == ZOK && strings)
    for (int i = 0; i < strings->count; ++i)
      names.emplace_back(strings->data[i]);
  if (rc != ZCLOSING)
    call->self->on_children(*call, rc, std::move(names));
}

void data_done(int rc, const char* value, int len, const Stat*, const void* data) {
  std::unique_ptr<ZkElection::Call> call(static_cast<ZkElection::Call*>(const_cast<void*>(data)));
  std::string text;
  if (rc == ZOK && value && len > 0)
    text.assign(value, static_cast<size_t>(len));
  if (rc != ZCLOSING)
    call->self->on_leader_data(*call, rc, std::move(text));
}

}  // namespace

expected<std::shared_ptr<ZkElection>> ZkElection::open(const std::string& spec, Options options) {
  auto zk = parse_zk_spec(spec, options.candidate.empty() ? "--master" : "--zk");
  if (!zk)
    return zk.error();
  if (options.candidate.find('\n') != std::string::npos ||
      options.candidate_http.find('\n') != std::string::npos)
    return make_error(Errc::invalid_argument, "a candidate's address has no newline");
  std::shared_ptr<ZkElection> election(new ZkElection(spec, *zk, std::move(options)));
  election->control_ = std::thread([e = election.get()] { e->control_loop(); });
  return election;
}

ZkElection::ZkElection(std::string spec, ZkSpec zk, Options options)
    : spec_(std::move(spec)),
      zk_(std::move(zk)),
      options_(std::move(options)),
      dir_(zk_.path + "/election") {
}

ZkElection::~ZkElection() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
    waiters_.clear();
  }
  cv_.notify_all();
  if (control_.joinable())
    control_.join();
}

LeaderView ZkElection::view() const {
  std::lock_guard<std::mutex> guard(mu_);
  return view_;
}

void ZkElection::on_change(uint64_t seen_generation, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (view_.generation <= seen_generation) {
      waiters_.emplace_back(seen_generation, std::move(fn));
      return;
    }
  }
  fn();
}

void ZkElection::withdraw() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> guard(mu_);
    withdraw_ = true;
    // At once, not when the control thread gets to it: nothing may take
    // the lead again under the withdrawn candidacy.
    if (view_.leading) {
      view_.leading = false;
      changed_locked(ready);
    }
  }
  cv_.notify_all();
  run(ready);
}

// -- the control thread: sessions ------------------------------------------------

void ZkElection::control_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  std::unique_ptr<SessionContext> context;
  auto close_current = [&] {
    void* old = zh_;
    zh_ = nullptr;
    lock.unlock();
    if (old)
      zookeeper_close(handle(old));  // its ephemeral node goes with it; no callback after
    context.reset();
    lock.lock();
  };
  while (!stopping_) {
    if (!zh_ || expired_ || withdraw_) {
      std::vector<std::function<void()>> ready;
      if (zh_)
        log().warn("zk election {}: {}; contending again with a new session", spec_,
                   withdraw_ ? "withdrawn" : "session expired");
      ++session_epoch_;
      state_ = 0;
      expired_ = withdraw_ = set_up_ = false;
      token_ = random_token();
      view_.connected = view_.leading = false;
      view_.leader.reset();  // the next session reads it anew
      view_.leader_http.clear();
      view_.leader_node.clear();
      view_.session = 0;
      changed_locked(ready);
      close_current();
      lock.unlock();
      run(ready);
      auto next = std::make_unique<SessionContext>(SessionContext{this, 0});
      lock.lock();
      if (stopping_)
        break;
      next->epoch = session_epoch_;
      zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
      zh_ = zookeeper_init(zk_.hosts.c_str(), session_watcher, options_.session_timeout_ms, nullptr,
                           next.get(), 0);
      context = std::move(next);
      if (!zh_) {
        log().error("zk election {}: cannot start a ZooKeeper client; retrying", spec_);
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
        continue;
      }
    }
    if (state_ == ZOO_CONNECTED_STATE && !set_up_)
      set_up(lock);
    cv_.wait_for(lock, std::chrono::milliseconds(500), [&] {
      return stopping_ || expired_ || withdraw_ || (state_ == ZOO_CONNECTED_STATE && !set_up_);
    });
  }
  close_current();
}

// Makes the election directory (whoever comes first) and, for a contender,
// its member node; then reads who leads. The client's blocking calls run
// here, never on its callback thread.
void ZkElection::set_up(std::unique_lock<std::mutex>& lock) {
  void* zh = zh_;
  uint64_t epoch = session_epoch_;
  std::string data = options_.candidate + "\n" + token_ + "\n" + options_.candidate_http;
  lock.unlock();
  int rc = ZOK;
  for (size_t i = 1; i <= dir_.size() && (rc == ZOK || rc == ZNODEEXISTS); ++i)
    if (i == dir_.size() || dir_[i] == '/')
      rc = zoo_create(handle(zh), dir_.substr(0, i).c_str(), nullptr, -1, &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_PERSISTENT, nullptr, 0);
  if ((rc == ZOK || rc == ZNODEEXISTS) && !options_.candidate.empty()) {
    // Lost with the connection, the node may exist anyway: the token in
    // its data still names it ours, and the retry's twin dies with us.
    rc = zoo_create(handle(zh), (dir_ + "/" + member_prefix).c_str(), data.data(),
                    static_cast<int>(data.size()), &ZOO_OPEN_ACL_UNSAFE,
                    ZOO_EPHEMERAL | ZOO_SEQUENCE, nullptr, 0);
  }
  lock.lock();
  if (epoch != session_epoch_)
    return;
  if (rc != ZOK && rc != ZNODEEXISTS) {
    log().warn("zk election {}: setting up: {}; retrying", spec_, zerror(rc));
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
    return;
  }
  set_up_ = true;
  refresh_locked();
}

// -- the client's callbacks ------------------------------------------------------

void ZkElection::on_session_event(uint64_t session_epoch, int state) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (session_epoch != session_epoch_ || !zh_)
      return;
    state_ = state;
    if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
      expired_ = true;
      view_.connected = view_.leading = false;
      view_.session = 0;
    } else if (state == ZOO_CONNECTED_STATE) {
      view_.connected = true;
      view_.session = static_cast<uint64_t>(zoo_client_id(handle(zh_))->client_id);
      view_.session_timeout_ms = zoo_recv_timeout(handle(zh_));
      if (set_up_)
        refresh_locked();  // what changed while the connection was down
    } else {
      view_.connected = false;
    }
    changed_locked(ready);
  }
  cv_.notify_all();
  run(ready);
}

void ZkElection::on_children_changed(uint64_t session_epoch) {
  std::lock_guard<std::mutex> guard(mu_);
  if (session_epoch == session_epoch_ && zh_)
    refresh_locked();
}

void ZkElection::refresh_locked() {
  auto* call = new Call{this, session_epoch_, {}};
  // The watch's context lives as long as the session (control_loop).
  auto* context = static_cast<SessionContext*>(const_cast<void*>(zoo_get_context(handle(zh_))));
  int rc =
      zoo_awget_children(handle(zh_), dir_.c_str(), children_watcher, context, children_done, call);
  if (rc != ZOK)
    delete call;  // the connection is down: CONNECTED refreshes again
}

void ZkElection::on_children(const Call& call, int rc, std::vector<std::string> names) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (call.epoch != session_epoch_ || !zh_ || rc != ZOK)
      return;  // an old session's, or the connection dropped: CONNECTED refreshes
    std::string lowest;
    const std::string prefix = member_prefix;
    for (const auto& name : names) {
      // member_NNNNNNNNNN: same width, so the text order is the sequence's.
      if (name.rfind(prefix, 0) == 0 && (lowest.empty() || name < lowest))
        lowest = name;
    }
    if (lowest.empty()) {
      view_.leader_node.clear();
      if (view_.leader || view_.leading) {
        view_.leader.reset();
        view_.leader_http.clear();
        view_.leading = false;
        changed_locked(ready);
      }
    } else if (dir_ + "/" + lowest != view_.leader_node || !view_.leader) {
      auto* get = new Call{this, session_epoch_, lowest};
      if (zoo_aget(handle(zh_), (dir_ + "/" + lowest).c_str(), 0, data_done, get) != ZOK)
        delete get;
    }
  }
  run(ready);
}

void ZkElection::on_leader_data(const Call& call, int rc, std::string data) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (call.epoch != session_epoch_ || !zh_)
      return;
    if (rc == ZNONODE) {
      refresh_locked();  // it went between the listing and the read
      return;
    }
    if (rc != ZOK)
      return;
    // "address\ntoken[\nhttp]"
    auto newline = data.find('\n');
    std::string address = data.substr(0, newline);
    std::string token = newline == std::string::npos ? "" : data.substr(newline + 1);
    std::string http;
    if (auto second = token.find('\n'); second != std::string::npos) {
      http = token.substr(second + 1);
      token.resize(second);
    }
    auto node = dir_ + "/" + call.node;
    bool leading = !options_.candidate.empty() && token == token_ && !withdraw_;
    if (view_.leader != address || view_.leading != leading || view_.leader_node != node ||
        view_.leader_http != http) {
      view_.leader = address;
      view_.leader_http = http;
      view_.leading = leading;
      view_.leader_node = node;
      changed_locked(ready);
    }
  }
  run(ready);
}

void ZkElection::changed_locked(std::vector<std::function<void()>>& ready) {
  ++view_.generation;
  auto it = std::partition(waiters_.begin(), waiters_.end(),
                           [&](const auto& w) { return w.first >= view_.generation; });
  for (auto i = it; i != waiters_.end(); ++i)
    ready.push_back(std::move(i->second));
  waiters_.erase(it, waiters_.end());
}

void ZkElection::run(std::vector<std::function<void()>>& ready) {
  for (auto& fn : ready)
    fn();
  ready.clear();
}

}  // namespace tessera
