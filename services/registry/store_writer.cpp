#include "services/registry/store_writer.hpp"

#include "runtime/log.hpp"

namespace tessera {

namespace {

// A commit on the store lane: its outcome, never an exception.
expected<uint64_t> commit_guarded(RegistryStore& store, uint64_t version,
                                  const std::vector<RegistryChange>& changes) {
  try {
    return store.commit(version, changes);
  } catch (const std::exception& e) {
    return make_error(Errc::os_error, std::string("the store threw: ") + e.what());
  }
}

}  // namespace

StoreWriter::StoreWriter(std::shared_ptr<RegistryStore> store, uint64_t version, std::string what,
                         Duration retry, Hooks hooks)
    : store_(std::move(store)),
      version_(version),
      what_(std::move(what)),
      retry_(retry),
      hooks_(std::move(hooks)) {
}

void StoreWriter::persist(std::vector<RegistryChange> changes, std::function<void()> then) {
  for (auto& c : changes)
    pending_.push_back(std::move(c));
  if (then)
    after_.push_back(std::move(then));
  if (!in_flight_)
    flush();
}

void StoreWriter::after_durable(std::function<void()> fn) {
  if (!in_flight_ && pending_.empty()) {
    hooks_.defer(std::move(fn));  // nothing waits to be written
    return;
  }
  after_.push_back(std::move(fn));
}

void StoreWriter::put_back(std::vector<RegistryChange> changes,
                           std::vector<std::function<void()>> after) {
  // What did not go in goes back in front of what came since, in order.
  changes.insert(changes.end(), std::make_move_iterator(pending_.begin()),
                 std::make_move_iterator(pending_.end()));
  pending_ = std::move(changes);
  after.insert(after.end(), std::make_move_iterator(after_.begin()),
               std::make_move_iterator(after_.end()));
  after_ = std::move(after);
  hooks_.after(retry_, [this] {
    in_flight_ = false;
    flush();
  });
}

void StoreWriter::flush() {
  if (lost_ || in_flight_)
    return;  // a commit in flight flushes what came meanwhile when it ends
  if (pending_.empty()) {
    // Waiting only for what is written already (after_durable during a commit).
    auto ready = std::move(after_);
    after_.clear();
    for (auto& fn : ready)
      fn();
    return;
  }
  in_flight_ = true;
  struct Batch {
    std::vector<RegistryChange> changes;
    std::vector<std::function<void()>> after;
  };
  // At most a store's limit of changes per commit; what waits for
  // durability goes with the commit that holds the last of its changes.
  std::shared_ptr<Batch> batch;
  if (pending_.size() > RegistryStore::changes_per_commit_max) {
    auto cut =
        pending_.begin() + static_cast<std::ptrdiff_t>(RegistryStore::changes_per_commit_max);
    batch = std::make_shared<Batch>(
        Batch{{std::make_move_iterator(pending_.begin()), std::make_move_iterator(cut)}, {}});
    pending_.erase(pending_.begin(), cut);
  } else {
    batch = std::make_shared<Batch>(Batch{std::move(pending_), std::move(after_)});
    pending_.clear();
    after_.clear();
  }
  auto store = store_;
  auto version = version_;
  bool queued = hooks_.blocking([store, version, batch, this]() -> std::function<void()> {
    auto result = commit_guarded(*store, version, batch->changes);
    return [this, result, batch] {
      if (result) {
        in_flight_ = false;
        ++counters_.commits;
        version_ = *result;
        for (auto& fn : batch->after)
          fn();  // may persist more, and start the next commit itself
        flush();
        return;
      }
      ++counters_.failures;
      if (is(result.error(), Errc::conflict)) {
        lost_ = true;
        log().error(
            "{}: another writer moved the store {} (conflict); this framework stops "
            "writing and serving",
            what_, store_->describe());
        hooks_.lost();
        return;
      }
      log().error("{}: cannot write the store {}: {}; retrying", what_, store_->describe(),
                  describe(result.error()));
      put_back(std::move(batch->changes), std::move(batch->after));
    };
  });
  if (!queued) {
    ++counters_.failures;
    log().error("{}: the store lane refused a commit; retrying", what_);
    put_back(std::move(batch->changes), std::move(batch->after));
  }
}

}  // namespace tessera
