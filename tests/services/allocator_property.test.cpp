// The allocator alone under random operation sequences: agents and frameworks
// added and removed, claim, recover, decline with filters, suppress, revive,
// quota and weights, interleaved with allocation cycles. After every step the
// allocator's own books must pass check() and agree with an independent model
// kept here; every cycle's offers must respect suppression, filters, quota,
// reservations and the minimum offer size, and leave nothing offerable to a
// framework that could take it (work conservation).
//
// A failure prints the seed, the step, the broken property and the last
// operations. Replay one seed with
//   TESSERA_ALLOCATOR_SEED=<seed> tessera_services_tests '[property]'
// and explore other seeds with TESSERA_ALLOCATOR_SEED_BASE=<first seed>.

#include "services/allocator/allocator.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace tessera {

// The test-only door into the books: corrupts one of them on purpose, so the
// tests below can show check() notices.
struct AllocatorTestAccess {
  static void add_available(Allocator& a, const AgentId& id, const Resources& extra) {
    a.agents_.at(id).available += extra;
  }
  static void skew_framework_sorter(Allocator& a, const std::string& role, const FrameworkId& fid) {
    static_cast<void>(a.role_books_.at(role).frameworks->allocated(fid, {{"cpus", 1}}));
  }
  static void skew_role_book(Allocator& a, const std::string& role) {
    a.role_books_.at(role).allocated["mem"] += 64;
  }
  static void miscount_unsuppressed(Allocator& a) { ++a.unsuppressed_; }
  static void forget_filter(Allocator& a, const FrameworkId& fid) {
    a.frameworks_.at(fid).filtered.clear();
  }
  static void drop_holding(Allocator& a, const FrameworkId& fid) {
    a.frameworks_.at(fid).held.clear();
  }
  static AgentId any_agent(const Allocator& a) { return a.agents_.begin()->first; }
};

}  // namespace tessera

using namespace tessera;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> role_pool = {"a", "b", "c"};
constexpr size_t agents_max = 6;
constexpr size_t frameworks_max = 5;
constexpr size_t trace_max = 16;  // operations shown with a failure
constexpr double epsilon = 1e-6;

bool worth_offering(const Resources& r) {
  return r.total("cpus") >= 0.01 || r.total("mem") >= 32;
}

Resources scalar(const std::string& name, Milli milli, const std::string& role = "*") {
  auto r = Resources::checked_scalar(name, milli, role);
  REQUIRE(r);
  return *r;
}

// What the test believes the allocator holds, kept by its own simple rules.
struct Model {
  struct Filter {
    Resources refused;
    TimePoint expires;
  };
  std::map<AgentId, Resources> totals;
  std::map<FrameworkId, std::set<std::string>> roles;
  std::map<FrameworkId, std::set<std::string>> suppressed;  // roles that get no offers
  std::map<std::tuple<FrameworkId, AgentId, std::string>, Resources> held;
  std::map<std::pair<FrameworkId, AgentId>, Filter> filters;
  std::map<std::string, ScalarTotals> quotas;

  Resources held_on(const AgentId& agent) const {
    Resources sum;
    for (auto& [key, r] : held)
      if (std::get<1>(key) == agent)
        sum += r;
    return sum;
  }
  Resources available(const AgentId& agent) const { return totals.at(agent) - held_on(agent); }
  Resources held_by(const FrameworkId& fid) const {
    Resources sum;
    for (auto& [key, r] : held)
      if (std::get<0>(key) == fid)
        sum += r;
    return sum;
  }
  ScalarTotals role_allocation(const std::string& role) const {
    ScalarTotals sum;
    for (auto& [key, r] : held)
      if (std::get<2>(key) == role)
        for (auto& [name, q] : r.scalar_totals())
          sum[name] += q;
    return sum;
  }
  bool filter_active(const FrameworkId& fid, const AgentId& agent, const Resources& offer,
                     TimePoint now) const {
    auto it = filters.find({fid, agent});
    return it != filters.end() && now < it->second.expires && it->second.refused.contains(offer);
  }
  void erase_if_held(const std::function<bool(const FrameworkId&, const AgentId&)>& pred) {
    std::erase_if(held, [&](auto& e) { return pred(std::get<0>(e.first), std::get<1>(e.first)); });
    std::erase_if(filters, [&](auto& e) { return pred(e.first.first, e.first.second); });
  }
};

class PropertyRun {
 public:
  explicit PropertyRun(uint64_t seed) : seed_(seed), rng_(seed) {
    AllocatorConfig config;
    config.sorter = seed % 4 == 3 ? "random" : "drf";
    config.seed = seed;
    auto a = Allocator::make(config);
    REQUIRE(a);
    a_ = std::move(*a);
  }

  // Runs the steps; returns a failure report, or empty. after_step, if set,
  // runs after each step before the checks (the tests' corruption hook).
  std::string run(int steps, const std::function<void(Allocator&, int)>& after_step = {}) {
    for (int i = 0; i < steps; ++i) {
      auto broken = step();
      if (broken.empty() && after_step)
        after_step(*a_, i);
      if (broken.empty())
        broken = verify();
      if (!broken.empty())
        return report(i, broken);
    }
    return {};
  }

 private:
  // -- randomness --------------------------------------------------------------
  size_t pick(size_t n) { return static_cast<size_t>(rng_() % n); }
  bool chance(int percent) { return pick(100) < static_cast<size_t>(percent); }
  template <class C>
  auto any_of_keys(const C& c) {
    auto it = c.begin();
    std::advance(it, static_cast<long>(pick(c.size())));
    return it->first;
  }
  const std::string& any_role() { return role_pool[pick(role_pool.size())]; }

  Resources random_total() {
    static const Milli cpus[] = {5, 1000, 2000, 4000, 8000};
    static const Milli mem[] = {16000, 256000, 1024000, 4096000};
    auto r = scalar("cpus", cpus[pick(5)]) + scalar("mem", mem[pick(4)]);
    if (chance(50))
      r += Resources::ranges("ports", {{31000, 31000 + pick(20)}});
    if (chance(30)) {
      auto role = any_role();
      r += scalar("cpus", 1000, role) + scalar("mem", 128000, role);
    }
    if (chance(10))
      r += Resources::set("zones", {"a", "b"});
    return r;
  }

  // A random part of r: each scalar entry whole, none or some; ranges and
  // sets whole or none.
  Resources part_of(const Resources& r) {
    Resources out;
    r.visit(
        [&](const std::string& name, const std::string& role, Milli q) {
          auto choice = pick(3);
          Milli take = choice == 0 ? q : choice == 1 ? 0 : 1 + static_cast<Milli>(rng_() % q);
          out += scalar(name, take, role);
        },
        [&](const std::string& name, const std::string& role, const std::vector<Range>& ranges) {
          if (chance(50))
            out += Resources::ranges(name, ranges, role);
        },
        [&](const std::string& name, const std::string& role, const std::set<std::string>& items) {
          if (chance(50))
            out += Resources::set(name, items, role);
        });
    return out;
  }

  Duration random_refuse() {
    static const Duration refuse[] = {0s, 1s, 5s, 30s, 1h, Duration::max()};
    return refuse[pick(6)];
  }

  // -- steps -------------------------------------------------------------------
  std::string step() {
    auto op = pick(100);
    if (op < 8)
      return add_agent();
    if (op < 11)
      return remove_agent();
    if (op < 18)
      return add_framework();
    if (op < 21)
      return remove_framework();
    if (op < 24)
      return set_weight();
    if (op < 28)
      return set_quota();
    if (op < 34)
      return claim();
    if (op < 46)
      return recover(false);
    if (op < 58)
      return recover(true);
    if (op < 63)
      return suppress();
    if (op < 68)
      return revive();
    if (op < 74)
      return invalid();
    return allocate();
  }

  std::string expect_ok(const caf::error& err, const std::string& op) {
    note(op);
    return err ? op + " failed: " + describe(err) : std::string{};
  }

  std::string add_agent() {
    if (model_.totals.size() >= agents_max)
      return {};
    auto id = "s" + std::to_string(pick(agents_max + 2));
    if (model_.totals.count(id))
      return {};
    auto total = random_total();
    auto err = expect_ok(a_->add_agent(id, total), "add_agent " + id + " " + total.to_string());
    model_.totals[id] = total;
    return err;
  }

  std::string remove_agent() {
    if (model_.totals.empty())
      return {};
    auto id = any_of_keys(model_.totals);
    model_.totals.erase(id);
    model_.erase_if_held([&](auto&, const AgentId& agent) { return agent == id; });
    return expect_ok(a_->remove_agent(id), "remove_agent " + id);
  }

  std::string add_framework() {
    if (model_.roles.size() >= frameworks_max)
      return {};
    auto fid = "f" + std::to_string(pick(frameworks_max + 2));
    if (model_.roles.count(fid))
      return {};
    std::set<std::string> roles{any_role()};
    if (chance(30))
      roles.insert(any_role());
    model_.roles[fid] = roles;
    model_.suppressed[fid] = {};
    std::string names;
    for (auto& r : roles)
      names += r + " ";
    return expect_ok(a_->add_framework(fid, roles), "add_framework " + fid + " roles " + names);
  }

  std::string remove_framework() {
    if (model_.roles.empty())
      return {};
    auto fid = any_of_keys(model_.roles);
    model_.roles.erase(fid);
    model_.suppressed.erase(fid);
    model_.erase_if_held([&](const FrameworkId& f, auto&) { return f == fid; });
    return expect_ok(a_->remove_framework(fid), "remove_framework " + fid);
  }

  std::string set_weight() {
    static const double weights[] = {0.5, 1, 2, 3};
    auto role = any_role();
    auto w = weights[pick(4)];
    return expect_ok(a_->set_weight(role, w), "set_weight " + role + " " + std::to_string(w));
  }

  std::string set_quota() {
    auto role = any_role();
    ScalarTotals limit;
    if (chance(80))
      limit["cpus"] = static_cast<double>(pick(6));
    if (chance(50))
      limit["mem"] = static_cast<double>(pick(5) * 512);
    model_.quotas[role] = limit;
    std::string text;
    for (auto& [n, q] : limit)
      text += n + ":" + std::to_string(q) + " ";
    return expect_ok(a_->set_quota(role, limit), "set_quota " + role + " " + text);
  }

  std::string claim() {
    if (model_.roles.empty() || model_.totals.empty())
      return {};
    auto fid = any_of_keys(model_.roles);
    auto& roles = model_.roles[fid];
    auto role = *std::next(roles.begin(), static_cast<long>(pick(roles.size())));
    auto agent = any_of_keys(model_.totals);
    auto r = part_of(model_.available(agent).allocatable_to(role));
    auto err = expect_ok(a_->claim(fid, agent, role, r),
                         "claim " + fid + " " + agent + " " + role + " " + r.to_string());
    if (!r.empty())
      model_.held[{fid, agent, role}] += r;
    return err;
  }

  // recover() or, with a filter, decline() of part of a holding.
  std::string recover(bool decline) {
    if (model_.held.empty())
      return {};
    auto key = any_of_keys(model_.held);
    auto& [fid, agent, role] = key;
    auto r = chance(50) ? model_.held[key] : part_of(model_.held[key]);
    caf::error err;
    std::string op;
    if (decline) {
      auto refuse = random_refuse();
      err = a_->decline(fid, agent, role, r, refuse, now_);
      op = "decline " + fid + " " + agent + " " + role + " " + r.to_string() + " refuse " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(refuse).count()) + "s";
      if (refuse > Duration::zero()) {
        auto expires = refuse >= TimePoint::max() - now_ ? TimePoint::max() : now_ + refuse;
        model_.filters[{fid, agent}] = Model::Filter{r, expires};
      }
    } else {
      err = a_->recover(fid, agent, role, r);
      op = "recover " + fid + " " + agent + " " + role + " " + r.to_string();
    }
    model_.held[key] -= r;
    if (model_.held[key].empty())
      model_.held.erase(key);
    return expect_ok(err, op);
  }

  std::set<std::string> some_roles(const FrameworkId& fid) {
    std::set<std::string> out;
    if (chance(40))
      return out;  // all of them
    for (auto& r : model_.roles[fid])
      if (chance(50))
        out.insert(r);
    return out;
  }

  static std::string names(const std::set<std::string>& roles) {
    std::string out = "{";
    for (auto& r : roles)
      out += r + (r == *roles.rbegin() ? "" : ",");
    return out + "}";
  }

  std::string suppress() {
    if (model_.roles.empty())
      return {};
    auto fid = any_of_keys(model_.roles);
    auto roles = some_roles(fid);
    auto& s = model_.suppressed[fid];
    if (roles.empty())
      s = model_.roles[fid];
    else
      s.insert(roles.begin(), roles.end());
    return expect_ok(a_->suppress(fid, roles), "suppress " + fid + " " + names(roles));
  }

  std::string revive() {
    if (model_.roles.empty())
      return {};
    auto fid = any_of_keys(model_.roles);
    auto roles = some_roles(fid);
    auto& s = model_.suppressed[fid];
    if (roles.empty())
      s.clear();
    for (auto& r : roles)
      s.erase(r);
    std::erase_if(model_.filters, [&](auto& e) { return e.first.first == fid; });
    return expect_ok(a_->revive(fid, roles), "revive " + fid + " " + names(roles));
  }

  // A request the allocator must refuse without changing anything.
  std::string invalid() {
    auto before = snapshot();
    caf::error err;
    std::string op;
    bool ran = true;
    switch (pick(6)) {
      case 0:
        op = "recover more than held";
        if (!model_.held.empty()) {
          auto key = any_of_keys(model_.held);
          err = a_->recover(std::get<0>(key), std::get<1>(key), std::get<2>(key),
                            model_.held[key] + scalar("cpus", 1));
        } else {
          ran = false;
        }
        break;
      case 1:
        op = "claim on unknown agent";
        if (!model_.roles.empty())
          err = a_->claim(any_of_keys(model_.roles), "nowhere", "a", scalar("cpus", 1));
        ran = !model_.roles.empty();
        break;
      case 2:
        op = "add known agent";
        if (!model_.totals.empty())
          err = a_->add_agent(any_of_keys(model_.totals), scalar("cpus", 1000));
        ran = !model_.totals.empty();
        break;
      case 3:
        op = "suppress a role not its own";
        if (!model_.roles.empty())
          err = a_->suppress(any_of_keys(model_.roles), {"nobody"});
        ran = !model_.roles.empty();
        break;
      case 4:
        op = "claim beyond available";
        if (!model_.roles.empty() && !model_.totals.empty()) {
          auto fid = any_of_keys(model_.roles);
          auto agent = any_of_keys(model_.totals);
          auto role = *model_.roles[fid].begin();
          err = a_->claim(fid, agent, role,
                          model_.available(agent).allocatable_to(role) + scalar("mem", 1));
        } else {
          ran = false;
        }
        break;
      default:
        op = "bad weight";
        err = a_->set_weight("a", -1);
        break;
    }
    if (!ran)
      return {};
    note("invalid: " + op);
    if (!err)
      return op + " was accepted";
    if (snapshot() != before)
      return op + " was refused but changed the books";
    return {};
  }

  std::string allocate() {
    now_ += std::chrono::milliseconds(pick(3) == 0 ? 0 : pick(8000));
    note("allocate at " + std::to_string(now_.time_since_epoch().count() / 1'000'000) + "ms");
    std::map<std::string, ScalarTotals> role_before;
    for (auto& role : role_pool)
      role_before[role] = model_.role_allocation(role);
    std::map<AgentId, Resources> avail;
    for (auto& [id, total] : model_.totals)
      avail[id] = model_.available(id);
    for (auto& offer : a_->allocate(now_)) {
      if (auto broken = check_offer(offer, avail); !broken.empty())
        return "offer " + offer.framework + " " + offer.agent + " " + offer.role + " " +
               offer.resources.to_string() + ": " + broken;
      avail[offer.agent] -= offer.resources;
      model_.held[{offer.framework, offer.agent, offer.role}] += offer.resources;
    }
    if (auto broken = check_quota(role_before); !broken.empty())
      return broken;
    return check_conservation();
  }

  std::string check_offer(const OfferGrant& o, const std::map<AgentId, Resources>& avail) {
    if (!model_.roles.count(o.framework) || !model_.roles[o.framework].count(o.role))
      return "to an unknown framework or a role it is not in";
    if (!avail.count(o.agent))
      return "of an unknown agent";
    if (model_.suppressed[o.framework].count(o.role))
      return "to a framework suppressed in that role";
    if (!avail.at(o.agent).allocatable_to(o.role).contains(o.resources))
      return "more than is available to the role (" +
             avail.at(o.agent).allocatable_to(o.role).to_string() + ")";
    if (!worth_offering(o.resources))
      return "below the minimum offer";
    if (model_.filter_active(o.framework, o.agent, o.resources, now_))
      return "the framework's filter refused it";
    return {};
  }

  // A cycle never takes a role past its limit (a claim or a lowered limit may
  // leave it above; then the cycle adds nothing of that resource).
  std::string check_quota(const std::map<std::string, ScalarTotals>& before) {
    for (auto& [role, limit] : model_.quotas) {
      auto after = model_.role_allocation(role);
      for (auto& [name, q] : limit) {
        double was =
            before.count(role) && before.at(role).count(name) ? before.at(role).at(name) : 0.0;
        double now = after.count(name) ? after.at(name) : 0.0;
        if (now > was + epsilon && now > q + epsilon)
          return "role " + role + " was allocated " + std::to_string(now) + " " + name +
                 " past its quota " + std::to_string(q);
      }
    }
    return {};
  }

  // What the role could be offered now: unreserved plus its reservations,
  // capped by its quota, unreserved resources cut first.
  Resources offerable(const AgentId& agent, const std::string& role) {
    auto r = model_.available(agent).allocatable_to(role);
    auto quota = model_.quotas.find(role);
    if (quota == model_.quotas.end())
      return r;
    auto held = model_.role_allocation(role);
    for (auto& [name, limit] : quota->second) {
      double room = std::max(0.0, limit - (held.count(name) ? held[name] : 0.0));
      double excess = r.total(name) - room;
      for (const std::string& from : {std::string("*"), role}) {
        Milli cut = static_cast<Milli>(std::llround(std::min(excess, r.get(name, from)) * 1000));
        if (excess <= epsilon || cut <= 0)
          continue;
        r -= scalar(name, cut, from);
        excess -= static_cast<double>(cut) / 1000;
      }
    }
    return r;
  }

  // After a cycle, no agent keeps something worth offering to a role in which
  // some framework is neither suppressed nor filtered.
  std::string check_conservation() {
    for (auto& [agent, total] : model_.totals)
      for (auto& [fid, roles] : model_.roles)
        for (auto& role : roles) {
          auto offer = offerable(agent, role);
          if (!worth_offering(offer) || model_.suppressed[fid].count(role) ||
              model_.filter_active(fid, agent, offer, now_))
            continue;
          return "after the cycle agent " + agent + " still has " + offer.to_string() + " that " +
                 fid + " could be offered as " + role;
        }
    return {};
  }

  // -- checks after every step -------------------------------------------------
  struct Snapshot {
    std::map<AgentId, Resources> available;
    std::map<FrameworkId, Resources> allocated;
    friend bool operator==(const Snapshot&, const Snapshot&) = default;
  };
  Snapshot snapshot() const {
    Snapshot s;
    for (auto& [id, total] : model_.totals)
      s.available[id] = a_->available(id);
    for (auto& [fid, roles] : model_.roles)
      s.allocated[fid] = a_->allocated(fid);
    return s;
  }

  std::string verify() {
    if (auto err = a_->check())
      return describe(err);
    if (a_->agent_count() != model_.totals.size() || a_->framework_count() != model_.roles.size())
      return "agent or framework count differs from the model";
    for (auto& [id, total] : model_.totals)
      if (a_->available(id) != model_.available(id))
        return "agent " + id + " has " + a_->available(id).to_string() + " available, model " +
               model_.available(id).to_string();
    for (auto& [fid, roles] : model_.roles)
      if (a_->allocated(fid) != model_.held_by(fid))
        return "framework " + fid + " holds " + a_->allocated(fid).to_string() + ", model " +
               model_.held_by(fid).to_string();
    return {};
  }

  void note(std::string op) {
    trace_.push_back(std::move(op));
    if (trace_.size() > trace_max)
      trace_.pop_front();
  }

  std::string report(int step, const std::string& broken) const {
    std::string out = "seed " + std::to_string(seed_) + " (" + (seed_ % 4 == 3 ? "random" : "drf") +
                      " sorter), step " + std::to_string(step) + ": " + broken +
                      "\nlast operations:\n";
    for (auto& op : trace_)
      out += "  " + op + "\n";
    out += "replay: TESSERA_ALLOCATOR_SEED=" + std::to_string(seed_) +
           " tessera_services_tests '[property]'";
    return out;
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  std::unique_ptr<Allocator> a_;
  Model model_;
  TimePoint now_{};
  std::deque<std::string> trace_;
};

constexpr int steps_per_seed = 150;

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

// Seeds that once found a bug; each is run on every test run.
const std::vector<uint64_t> regression_seeds = {
    2,  // drf: claim() of nothing left an empty holding behind
    3,  // random: the same
};

}  // namespace

TEST_CASE("the allocator's books hold under thousands of random operation sequences",
          "[allocator][property]") {
  if (const char* one = std::getenv("TESSERA_ALLOCATOR_SEED"); one && *one) {
    auto seed = env_number("TESSERA_ALLOCATOR_SEED", 0);
    auto failure = PropertyRun(seed).run(steps_per_seed);
    INFO(failure);
    CHECK(failure.empty());
    return;
  }
  auto base = env_number("TESSERA_ALLOCATOR_SEED_BASE", 1);
  auto seeds = env_number("TESSERA_ALLOCATOR_SEEDS", 3000);
  int failed = 0;
  for (uint64_t seed = base; seed < base + seeds && failed < 3; ++seed) {
    auto failure = PropertyRun(seed).run(steps_per_seed);
    if (!failure.empty()) {
      ++failed;
      FAIL_CHECK(failure);
    }
  }
}

TEST_CASE("seeds that once broke the allocator stay fixed", "[allocator][property]") {
  for (auto seed : regression_seeds) {
    auto failure = PropertyRun(seed).run(steps_per_seed);
    INFO(failure);
    CHECK(failure.empty());
  }
}

TEST_CASE("check() notices each kind of corrupted book", "[allocator][property]") {
  auto res = [](const char* text) { return *Resources::parse(text); };
  auto made = Allocator::make();
  REQUIRE(made);
  auto& b = **made;
  REQUIRE_FALSE(b.add_agent("s0", res("cpus:4;mem:1024")));
  REQUIRE_FALSE(b.add_framework("f0", {"a"}));
  REQUIRE(b.allocate(TimePoint{}).size() == 1);
  REQUIRE_FALSE(b.decline("f0", "s0", "a", res("cpus:1"), 1h, TimePoint{}));
  REQUIRE_FALSE(b.check());
  auto expect_broken = [&](const std::function<void(Allocator&)>& corrupt, const char* words) {
    corrupt(b);
    auto err = b.check();
    REQUIRE(err);
    CHECK_THAT(describe(err), Catch::Contains(words));
  };
  SECTION("an agent's available pool grows from nowhere") {
    expect_broken([&](Allocator& a) { AllocatorTestAccess::add_available(a, "s0", res("cpus:1")); },
                  "available");
  }
  SECTION("a framework forgets what it holds") {
    expect_broken([](Allocator& a) { AllocatorTestAccess::drop_holding(a, "f0"); }, "available");
  }
  SECTION("a framework sorter drifts from the holdings") {
    expect_broken([](Allocator& a) { AllocatorTestAccess::skew_framework_sorter(a, "a", "f0"); },
                  "sorter");
  }
  SECTION("a role book drifts from the holdings") {
    expect_broken([](Allocator& a) { AllocatorTestAccess::skew_role_book(a, "a"); }, "book");
  }
  SECTION("the unsuppressed count is off") {
    expect_broken([](Allocator& a) { AllocatorTestAccess::miscount_unsuppressed(a); },
                  "unsuppressed");
  }
  SECTION("a filter known only to the agent") {
    expect_broken([](Allocator& a) { AllocatorTestAccess::forget_filter(a, "f0"); }, "filter");
  }
}

TEST_CASE("a corrupted book mid-run fails the property run with seed and trace",
          "[allocator][property]") {
  // At step 60 one agent gets an extra cpu from nowhere: the run must stop
  // right there and say how to replay it.
  constexpr uint64_t seed = 7;
  bool corrupted = false;
  auto failure = PropertyRun(seed).run(steps_per_seed, [&](Allocator& a, int step) {
    if (step >= 60 && !corrupted && a.agent_count() > 0) {
      AllocatorTestAccess::add_available(a, AllocatorTestAccess::any_agent(a),
                                         *Resources::parse("cpus:1"));
      corrupted = true;
    }
  });
  REQUIRE(corrupted);
  CHECK_THAT(failure, Catch::Contains("seed 7 ") && Catch::Contains("last operations:") &&
                          Catch::Contains("TESSERA_ALLOCATOR_SEED=7") &&
                          Catch::Contains("allocator invariant broken"));
}
