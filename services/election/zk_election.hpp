#pragma once
// ZkElection: leader election and detection through ZooKeeper
// (`--zk zk://HOST:PORT[,...]/PATH` on masters, `--master zk://...` on
// agents and frameworks), as Mesos's group/contender/detector.
//
// Every contending master holds one ephemeral sequential node
// PATH/election/member_NNNNNNNNNN whose data is its address, a newline, a
// token random per candidacy and, after another newline, the HOST:PORT of
// its HTTP API (may be empty; older members wrote only two lines). The member with the lowest
// sequence leads; every observer (contender or not) watches the children of PATH/election and reads
// the leader's node when it changes. A contender knows it leads when the leader's token is its own,
// so a node whose create was answered by a lost connection is still recognised as ours.
//
// The session: an ephemeral node lives as long as its creator's ZooKeeper
// session. A leader whose connection drops keeps its session for at most
// the session timeout (the server's clock), and the client hears of the drop
// at most two thirds of it after the last answer. LeaderView::connected
// says whether the connection is up; the master's contender acts on it
// (contender.cpp). When the session expires, or withdraw() is called, this
// object closes the session (the server deletes its node at once) and
// opens a new one, contending again with a new node: a standby, without
// restarting anything.
//
// Threads: the ZooKeeper client's two threads run the callbacks; a control
// thread of this object opens, sets up and closes sessions (the client's
// blocking calls cannot run on its own callback thread). The last owner
// must let go on a thread of its own, never in a callback of this object
// (the destructor joins the control thread, which waits for the client's):
// a process holds it until its node has stopped.

#include "runtime/error.hpp"
#include "services/election/detector.hpp"
#include "services/election/zk_spec.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

class ZkElection : public MasterDetector {
 public:
  struct Options {
    int session_timeout_ms = 10'000;  // asked for; the servers clamp it
    // Contend with this address; empty: only observe.
    std::string candidate;
    // The candidate's HTTP API (HOST:PORT), for operators' tools and the
    // standbys' redirects; empty: none.
    std::string candidate_http;
  };

  static expected<std::shared_ptr<ZkElection>> open(const std::string& spec, Options options);
  ~ZkElection() override;
  ZkElection(const ZkElection&) = delete;
  ZkElection& operator=(const ZkElection&) = delete;

  LeaderView view() const override;
  void on_change(uint64_t seen_generation, std::function<void()> fn) override;
  std::string describe() const override { return spec_; }

  // Ends this candidacy (its node goes at once) and contends anew with a
  // fresh session: the master behind it failed and another should lead.
  void withdraw();

  // -- called by the ZooKeeper client's threads ------------------------------
  struct Call;  // one asynchronous call's context (zk_election.cpp)
  void on_session_event(uint64_t session_epoch, int state);
  void on_children_changed(uint64_t session_epoch);
  void on_children(const Call& call, int rc, std::vector<std::string> names);
  void on_leader_data(const Call& call, int rc, std::string data);

 private:
  ZkElection(std::string spec, ZkSpec zk, Options options);
  void control_loop();
  bool open_session(std::unique_lock<std::mutex>& lock);
  void set_up(std::unique_lock<std::mutex>& lock);
  void refresh_locked();
  void changed_locked(std::vector<std::function<void()>>& ready);
  static void run(std::vector<std::function<void()>>& ready);

  const std::string spec_;
  const ZkSpec zk_;
  const Options options_;
  const std::string dir_;  // PATH/election

  mutable std::mutex mu_;
  std::condition_variable cv_;
  void* zh_ = nullptr;          // zhandle_t* of the current session
  uint64_t session_epoch_ = 0;  // raised per session, so late callbacks of old ones are ignored
  int state_ = 0;               // ZooKeeper's state of the current session
  bool expired_ = false;
  bool withdraw_ = false;
  bool set_up_ = false;  // the directory exists and this candidacy's node was made
  bool stopping_ = false;
  std::string token_;  // this candidacy's, in its node's data
  LeaderView view_;
  std::vector<std::pair<uint64_t, std::function<void()>>> waiters_;
  std::thread control_;
};

}  // namespace tessera
