// The resources and attributes parsers (agent --resources/--attributes, the
// CLI, the operator API's JSON), with the properties their users rely on:
// what parses prints back to text that parses to an equal value, survives
// the wire, and adds and subtracts consistently.
//
// Input: one selector byte, then two texts (the second for arithmetic).

#include "services/common/json_forms.hpp"
#include "services/common/resources.hpp"
#include "services/common/wire.hpp"
#include "tests/fuzz/fuzz_input.hpp"

#include <capnp/message.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <string>

namespace {

using tessera::Resources;

void check(bool ok) {
  if (!ok)
    std::abort();
}

// Whether some name has two kinds: a sum of values parsed apart can give
// one name a scalar and ranges, say; parse() refuses such a text.
bool mixes_kinds(const Resources& r) {
  std::map<std::string, int> kinds;
  bool mixed = false;
  auto note = [&](const std::string& name, int kind) {
    auto [it, fresh] = kinds.emplace(name, kind);
    mixed = mixed || (!fresh && it->second != kind);
  };
  r.visit([&](const std::string& name, const std::string&, tessera::Milli) { note(name, 0); },
          [&](const std::string& name, const std::string&, const auto&) { note(name, 1); },
          [&](const std::string& name, const std::string&, const auto&) { note(name, 2); });
  return mixed;
}

void round_trips(const Resources& r) {
  auto again = Resources::parse(r.to_string());
  if (mixes_kinds(r))
    check(!again);
  else
    check(static_cast<bool>(again) && *again == r);
  capnp::MallocMessageBuilder message;
  auto list = message.initRoot<capnp::AnyPointer>().initAs<capnp::List<tessera::wire::Resource>>(
      tessera::wire_size(r));
  tessera::to_wire(r, list);
  auto back = tessera::from_wire(list.asReader());
  check(static_cast<bool>(back) && *back == r);
}

void resources(std::string_view a_text, std::string_view b_text) {
  auto a = Resources::parse(a_text);
  if (!a)
    return;
  round_trips(*a);
  auto b = Resources::parse(b_text);
  if (!b)
    return;
  auto sum = *a + *b;
  check(sum.contains(*a) && sum.contains(*b));
  // Ranges and sets add as unions, so (a + b) - b is a only where they do
  // not overlap; taking b away and adding it back is always the sum.
  check((sum - *b) + *b == sum);
  round_trips(sum);
  for (const auto& role : sum.roles())
    check(sum.contains(sum.reserved(role)));
  (void)sum.flatten().scalar_totals();
}

void attributes(std::string_view text) {
  auto parsed = tessera::parse_attributes(text);
  if (!parsed)
    return;
  auto again = tessera::parse_attributes(tessera::to_string(*parsed));
  check(static_cast<bool>(again) && *again == *parsed);
}

void from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded())
    return;
  auto r = tessera::resources_from_json(j);
  if (!r)
    return;
  auto back = tessera::resources_from_json(tessera::resources_json(*r));
  check(static_cast<bool>(back) && *back == *r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::fuzz::Input in(data, size);
  switch (in.u8() % 3) {
    case 0: {
      auto a = in.piece(4096);
      resources(a, in.rest());
      break;
    }
    case 1:
      attributes(in.rest());
      break;
    default:
      from_json(in.rest());
      break;
  }
  return 0;
}
