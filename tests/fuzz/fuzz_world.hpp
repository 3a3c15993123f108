#pragma once
// What the dispatch targets (master_dispatch, scheduler_dispatch,
// agent_dispatch, operator_api) share: a Simulation with the actor under
// test on one node and a few peers on another, fuzz records read as
// messages of the actor's types, and delivery as the network delivers them.
//
// Structure-aware messages. A record names a template (a valid message of
// one of the actor's types, built in code from what the peers have heard so
// far) and then patches it: each patch walks the message's schema (capnp
// reflection) from the root, choosing a field at each level, and overwrites
// what it reaches with fuzz data of the field's own type - numbers near the
// edges, enum values (also unknown ones), lists of a few elements, and text
// taken mostly from the words the peers heard in the actor's answers under
// a field of the same name (agentId, frameworkId, offerId, uuid, ...), so a
// patched id is usually one the actor knows. A record may also build its
// message from nothing (patches on the default message) or carry raw bytes
// as the payload (what a broken peer sends).
//
// Record: [kind][sender][length u16][body], body: [mode][patches...].
//   kind % (templates + 1): a template, or the last: advance virtual time
//     (sender % 8 picks 100 ms ... 11 min) so timers fire;
//   sender % senders: who sends it (peer actors that record what they hear,
//     and one address nobody listens at);
//   mode & 3: 0, 1 template + patches, 2 default message + patches, 3 the
//     rest of the body as the raw payload; mode & 4: sent as a request
//     (a request id); mode & 8: as a reply (reply_to, error code next).
//   patches: count (u8 % 8), then each patch's path and value bytes.
//
// FUZZ_DEBUG=1 in the environment prints the words heard after each input
// (what a seed reached).

#include "runtime/actor.hpp"
#include "runtime/log.hpp"
#include "runtime/simulation.hpp"
#include "tests/fuzz/fuzz_input.hpp"

#include <capnp/dynamic.h>
#include <capnp/schema.h>
#include <caf/send.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tessera::fuzz {

// Texts and bytes heard in messages, by the name of the field they were in.
class Words {
 public:
  static constexpr size_t per_name_max = 16;
  static constexpr size_t length_max = 64;

  void add(const std::string& name, std::string value) {
    if (value.empty() || value.size() > length_max)
      return;
    auto& list = by_name_[name];
    for (const auto& v : list)
      if (v == value)
        return;
    if (list.size() == per_name_max)
      list.pop_front();
    list.push_back(std::move(value));
  }
  // The newest word heard as name, or fallback.
  std::string last(const std::string& name, std::string fallback = {}) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() || it->second.empty() ? fallback : it->second.back();
  }
  void dump() const {
    for (auto& [k, v] : by_name_)
      for (auto& w : v)
        std::fprintf(stderr, "  %s = %s\n", k.c_str(), w.c_str());
  }
  const std::deque<std::string>* of(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() || it->second.empty() ? nullptr : &it->second;
  }
  // Every text and data field of a message, recursively.
  void collect(capnp::DynamicStruct::Reader s, int depth = 0) {
    if (depth > 8)
      return;
    auto fields = s.getSchema().getNonUnionFields();
    for (auto f : fields)
      collect_field(s, f, depth);
    KJ_IF_MAYBE (active, s.which())
      collect_field(s, *active, depth);
  }

 private:
  void collect_value(const std::string& name, capnp::DynamicValue::Reader v, int depth) {
    switch (v.getType()) {
      case capnp::DynamicValue::TEXT:
        add(name, std::string(v.as<capnp::Text>().cStr(), v.as<capnp::Text>().size()));
        break;
      case capnp::DynamicValue::DATA: {
        auto d = v.as<capnp::Data>();
        add(name, std::string(reinterpret_cast<const char*>(d.begin()), d.size()));
        break;
      }
      case capnp::DynamicValue::STRUCT:
        collect(v.as<capnp::DynamicStruct>(), depth + 1);
        break;
      case capnp::DynamicValue::LIST:
        for (auto e : v.as<capnp::DynamicList>())
          collect_value(name, e, depth + 1);
        break;
      default:
        break;
    }
  }
  void collect_field(capnp::DynamicStruct::Reader s, capnp::StructSchema::Field f, int depth) {
    if (s.has(f))
      collect_value(std::string(f.getProto().getName().cStr()), s.get(f), depth);
  }
  std::map<std::string, std::deque<std::string>> by_name_;
};

// Overwrites parts of a message with fuzz data, led by its schema.
class Patcher {
 public:
  Patcher(Input& in, const Words& words) : in_(in), words_(words) {}

  // count patches, each from the root down to one field.
  void patch(capnp::DynamicStruct::Builder root, unsigned count) {
    for (unsigned i = 0; i < count && !in_.empty(); ++i)
      patch_struct(root, 0);
  }

 private:
  static constexpr int depth_max = 6;

  void patch_struct(capnp::DynamicStruct::Builder s, int depth) {
    auto fields = s.getSchema().getFields();
    if (fields.size() == 0)
      return;
    auto f = fields[in_.u8() % fields.size()];
    auto type = f.getType();
    bool descend = (in_.u8() & 1) != 0 && depth < depth_max;
    if (descend && type.isStruct() && s.has(f)) {
      patch_struct(s.get(f).as<capnp::DynamicStruct>(), depth + 1);
      return;
    }
    if (descend && type.isList() && s.has(f)) {
      auto list = s.get(f).as<capnp::DynamicList>();
      if (list.size() > 0 && type.asList().getElementType().isStruct()) {
        patch_struct(list[in_.u8() % list.size()].as<capnp::DynamicStruct>(), depth + 1);
        return;
      }
    }
    set_field(s, f, depth);
  }

  void set_field(capnp::DynamicStruct::Builder s, capnp::StructSchema::Field f, int depth) {
    auto type = f.getType();
    auto name = std::string(f.getProto().getName().cStr());
    if (type.isStruct()) {
      fill(s.init(f).as<capnp::DynamicStruct>(), depth + 1);
    } else if (type.isList()) {
      unsigned n = in_.u8() % 4u;
      auto list = s.init(f, n).as<capnp::DynamicList>();
      auto element = type.asList().getElementType();
      for (unsigned i = 0; i < n; ++i) {
        if (element.isStruct())
          fill(list[i].as<capnp::DynamicStruct>(), depth + 1);
        else if (!element.isList() && !element.isAnyPointer() && !element.isInterface())
          list.set(i, value(element, name));
      }
    } else if (!type.isAnyPointer() && !type.isInterface()) {
      s.set(f, value(type, name));
    }
  }

  // A struct from nothing: each field set or left default, one union member.
  void fill(capnp::DynamicStruct::Builder s, int depth) {
    if (depth > depth_max)
      return;
    auto schema = s.getSchema();
    for (auto f : schema.getNonUnionFields())
      if (in_.u8() & 1)
        set_field(s, f, depth);
    auto members = schema.getUnionFields();
    if (members.size() > 0)
      set_field(s, members[in_.u8() % members.size()], depth);
  }

  // A value of a scalar, enum, text or data type; strings live in held_
  // until the patcher goes (setting copies them into the message).
  capnp::DynamicValue::Reader value(capnp::Type type, const std::string& name) {
    switch (type.which()) {
      case capnp::schema::Type::VOID:
        return capnp::VOID;
      case capnp::schema::Type::BOOL:
        return (in_.u8() & 1) != 0;
      case capnp::schema::Type::INT8:
        return static_cast<int8_t>(number());
      case capnp::schema::Type::INT16:
        return static_cast<int16_t>(number());
      case capnp::schema::Type::INT32:
        return static_cast<int32_t>(number());
      case capnp::schema::Type::INT64:
        return static_cast<int64_t>(number());
      case capnp::schema::Type::UINT8:
        return static_cast<uint8_t>(number());
      case capnp::schema::Type::UINT16:
        return static_cast<uint16_t>(number());
      case capnp::schema::Type::UINT32:
        return static_cast<uint32_t>(number());
      case capnp::schema::Type::UINT64:
        return number();
      case capnp::schema::Type::FLOAT32:
        return static_cast<float>(real());
      case capnp::schema::Type::FLOAT64:
        return real();
      case capnp::schema::Type::ENUM: {
        auto e = type.asEnum();
        // One past the last enumerant now and then: an unknown value.
        auto v = static_cast<uint16_t>(in_.u8() % (e.getEnumerants().size() + 1));
        return capnp::DynamicEnum(e, v);
      }
      case capnp::schema::Type::TEXT: {
        auto& s = held_.emplace_back(text(name));
        return capnp::Text::Reader(s.c_str(), s.size());
      }
      case capnp::schema::Type::DATA: {
        auto& s = held_.emplace_back(text(name));
        return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
      }
      default:
        return capnp::VOID;
    }
  }

  uint64_t number() {
    static constexpr uint64_t edges[] = {0,          1,          2,          7,
                                         1000,       UINT64_MAX, 1ULL << 63, (1ULL << 63) - 1,
                                         UINT32_MAX, 1ULL << 31, 65535,      1'000'000'000};
    auto pick = in_.u8();
    if (pick < 0x80)
      return edges[pick % std::size(edges)];
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= uint64_t{in_.u8()} << (8 * i);
    return v;
  }

  double real() {
    static constexpr double edges[] = {0,
                                       1,
                                       0.5,
                                       -1,
                                       1e-9,
                                       1e18,
                                       std::numeric_limits<double>::infinity(),
                                       -std::numeric_limits<double>::infinity(),
                                       std::numeric_limits<double>::quiet_NaN(),
                                       std::numeric_limits<double>::max(),
                                       std::numeric_limits<double>::denorm_min()};
    return edges[in_.u8() % std::size(edges)];
  }

  // Mostly a word heard under this field's name (or any name), else fuzz bytes.
  std::string text(const std::string& name) {
    auto pick = in_.u8();
    if (pick < 0xa0) {
      if (const auto* same = words_.of(name))
        return (*same)[pick % same->size()];
    }
    if (pick < 0xc0) {
      static const char* const common[] = {"*",    "web", "cpus", "mem",         "disk",  "ports",
                                           "gpus", "",    "..",   "/etc/passwd", "stdout"};
      return common[pick % std::size(common)];
    }
    return std::string(in_.piece(48));
  }

  Input& in_;
  const Words& words_;
  std::deque<std::string> held_;
};

// A message of one type, rebuilt from a template (or the default message)
// and patched.
struct Template {
  capnp::StructSchema schema;
  uint64_t type_id;
  std::function<Outgoing(const Words&)> make;
};

template <class T>
Template template_of(std::function<void(typename T::Builder, const Words&)> fill) {
  return Template{capnp::Schema::from<T>(), capnp::typeId<T>(), [fill](const Words& w) {
                    return build<T>([&](typename T::Builder b) { fill(b, w); });
                  }};
}

// The message a record's body makes, or nothing (the patches did not fit
// the schema: capnp refused a value).
inline std::optional<Outgoing> message_of(const Template& t, Input& body, const Words& words,
                                          uint8_t mode) {
  if ((mode & 3) == 3) {
    auto raw = body.rest();
    return Outgoing{t.type_id, Payload::copy_of(raw.data(), raw.size())};
  }
  try {
    capnp::MallocMessageBuilder message(build_first_segment_words);
    if ((mode & 3) == 2) {
      message.initRoot<capnp::DynamicStruct>(t.schema);
    } else {
      auto made = t.make(words);
      capnp::FlatArrayMessageReader reader(made.payload.words());
      message.setRoot(reader.getRoot<capnp::DynamicStruct>(t.schema));
    }
    Patcher patcher(body, words);
    patcher.patch(message.getRoot<capnp::DynamicStruct>(t.schema), body.u8() % 8);
    return Outgoing{t.type_id, Payload(capnp::messageToFlatArray(message))};
  } catch (const kj::Exception&) {
    return std::nullopt;
  }
}

// A peer actor: it records the words of every message of its types it
// hears, and may answer some (setup adds handlers).
class Peer : public Actor {
 public:
  using Setup = std::function<void(Peer&)>;
  Peer(caf::actor_config& cfg, ActorInit init, std::shared_ptr<Words> words, Setup setup)
      : Actor(cfg, std::move(init)), words_(std::move(words)), setup_(std::move(setup)) {}

  template <class... Ts>
  void listen() {
    (on<Ts>([this](const Received<Ts>& m) { hear<Ts>(m); }), ...);
  }
  // Records m's words, then runs fn.
  template <class T>
  void listen(std::function<void(Peer&, const Received<T>&)> fn) {
    on<T>([this, fn](const Received<T>& m) {
      hear<T>(m);
      fn(*this, m);
    });
  }
  using Actor::reply;
  using Actor::send;

 private:
  template <class T>
  void hear(const Received<T>& m) {
    words_->collect(capnp::toDynamic(m.body()));
  }
  void on_start() override {
    if (setup_)
      setup_(*this);
  }
  std::shared_ptr<Words> words_;
  Setup setup_;
};

// The bytes of one record: a template (or advance) sent by sender, with a
// body (default: mode 0, no patches - the template as it is).
inline std::string record(uint8_t kind, uint8_t sender, std::string body = std::string(2, '\0')) {
  std::string out{static_cast<char>(kind), static_cast<char>(sender),
                  static_cast<char>(body.size() & 0xff), static_cast<char>(body.size() >> 8)};
  return out + body;
}

// One target's world: built fresh for every input (reproducible alone).
struct World {
  Simulation sim{1};
  Node& home = sim.add_node("home");
  Node& peers = sim.add_node("peers");
  std::shared_ptr<Words> words = std::make_shared<Words>();
  caf::actor target;       // the actor under test
  Address target_address;  // its address
  std::vector<Address> senders;
  std::vector<Template> templates;
  uint64_t next_request = 1;
  static constexpr size_t steps_max = 200'000;

  World() {
    set_log_level("off");
    sim.set_inline_blocking(true);
    sim.set_advance_steps_max(steps_max);
  }

  // A peer on the peers node; its address becomes a sender.
  Address add_peer(const std::string& name, Peer::Setup setup) {
    auto spawned = peers.spawn<Peer>(name, words, std::move(setup));
    if (!spawned)
      std::abort();
    senders.push_back(*spawned);
    return *spawned;
  }

  // The actor under test has started (spawned on home as name).
  void started(const std::string& name) {
    sim.run(steps_max);
    target_address = home.address_of(name);
    target = sim.lookup(target_address);
    if (!target)
      std::abort();
    senders.push_back(peers.address_of("nobody"));
  }

  // Delivers msg from sender to the actor as one batch off the network.
  void deliver(const Address& sender, const Outgoing& msg, uint64_t request_id = 0,
               uint64_t reply_to = 0, uint8_t error_code = 0) {
    Envelope env;
    env.type_id = msg.type_id;
    env.sender = sender;
    env.receiver = target_address;
    env.request_id = request_id;
    env.reply_to = reply_to;
    env.error_code = error_code;
    env.payload = msg.payload;
    EnvelopeBatch batch;
    batch.items.push_back(std::move(env));
    caf::anon_send(target, std::move(batch));
    sim.run(steps_max);
  }

  // Runs every record of the input (see the header comment).
  void play(const std::string& records) {
    play(reinterpret_cast<const uint8_t*>(records.data()), records.size());
  }
  void play(const uint8_t* data, size_t size) {
    Input in(data, size);
    for (int records = 0; records < 64 && !in.empty(); ++records) {
      auto kind = in.u8();
      auto who = in.u8();
      auto body_bytes = in.piece(4096);
      Input body(reinterpret_cast<const uint8_t*>(body_bytes.data()), body_bytes.size());
      if (kind % (templates.size() + 1) == templates.size()) {
        static constexpr Duration steps[] = {
            std::chrono::milliseconds(100), std::chrono::seconds(1),  std::chrono::seconds(5),
            std::chrono::seconds(16),       std::chrono::seconds(31), std::chrono::minutes(1),
            std::chrono::minutes(5),        std::chrono::minutes(11)};
        sim.advance(steps[who % 8]);
        continue;
      }
      const auto& t = templates[kind % templates.size()];
      auto mode = body.u8();
      uint64_t reply_to = 0;
      uint8_t error_code = 0;
      if (mode & 8) {
        reply_to = body.u8();
        error_code = static_cast<uint8_t>(body.u8() % 4);
      }
      auto msg = message_of(t, body, *words, mode);
      if (!msg)
        continue;
      deliver(senders[who % senders.size()], *msg, (mode & 4) ? next_request++ : 0, reply_to,
              error_code);
    }
    if (std::getenv("FUZZ_DEBUG"))
      words->dump();
  }
};

}  // namespace tessera::fuzz
