#pragma once
// StoreWriter: an actor's durable records, written in order. A framework
// (apps, jobs) keeps its state in a RegistryStore; its actor must never
// block on a commit, yet must know when a change is durable before it acts
// on it (a task is recorded before it is launched; an API call is answered
// once its change is on disk).
//
// persist() queues changes; one commit is in flight at a time on the
// actor's blocking lane (Work::store), and what queued meanwhile goes as the
// next commit, in order. after_durable(fn) runs fn on the actor once every
// change queued so far is committed. A commit that fails is retried after
// retry (its changes stay in front of later ones, nothing is lost); a
// conflict (another writer moved the store: a second instance of the
// framework) is final: the writer stops and calls lost().
//
// The actor lends its lanes through Hooks (Actor's after/defer/blocking are
// its own to call). Threading: every member runs on the owning actor.

#include "runtime/clock.hpp"
#include "runtime/error.hpp"
#include "services/registry/store.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tessera {

class StoreWriter {
 public:
  using Work = std::function<std::function<void()>()>;
  struct Hooks {
    std::function<bool(Work)> blocking;  // false: the lane refused it
    std::function<void(Duration, std::function<void()>)> after;
    std::function<void(std::function<void()>)> defer;
    std::function<void()> lost;  // another writer took the store
  };
  struct Counters {
    uint64_t commits = 0;
    uint64_t failures = 0;
  };

  // what names the owner in logs ("apps", "jobs"); version is the store's
  // version as loaded.
  StoreWriter(std::shared_ptr<RegistryStore> store, uint64_t version, std::string what,
              Duration retry, Hooks hooks);

  void persist(std::vector<RegistryChange> changes, std::function<void()> then = {});
  // fn runs once everything persisted so far is durable (soon, if it is).
  void after_durable(std::function<void()> fn);

  const Counters& counters() const { return counters_; }
  bool lost() const { return lost_; }
  RegistryStore& store() { return *store_; }

 private:
  void flush();
  void put_back(std::vector<RegistryChange> changes, std::vector<std::function<void()>> after);

  std::shared_ptr<RegistryStore> store_;
  uint64_t version_ = 0;
  std::string what_;
  Duration retry_;
  Hooks hooks_;
  Counters counters_;
  bool in_flight_ = false;
  bool lost_ = false;
  std::vector<RegistryChange> pending_;
  std::vector<std::function<void()>> after_;
};

}  // namespace tessera
