// Agent recovery (services/agent/checkpoint): after a crash, an agent reads
// back whatever its work directory holds, and a disk can hold anything -
// torn writes, bit rot, records of another version. recover() must turn any
// such directory into state plus warnings and errors, never a crash.
//
// Input: up to eight files, each a kind byte (agent, framework, executor run,
// task, or a stray file), an id byte, a "frame it" byte and content. A
// framed file's content, when it is a Cap'n Proto message, is written as a
// well-framed record with a correct checksum, so the fuzzer reaches the
// decoding behind the framing; otherwise the raw bytes are the file.

#include "services/agent/checkpoint.hpp"
#include "services/agent/disk.hpp"
#include "tests/fuzz/fuzz_input.hpp"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <string>

namespace {

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::checkpoint;

// What the agent would have written: the message re-framed, when it is one.
std::string framed(std::string_view content) {
  if (content.empty() || content.size() % sizeof(capnp::word) != 0)
    return std::string(content);
  auto words = kj::heapArray<capnp::word>(content.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), content.data(), content.size());
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 1 << 16;
    capnp::FlatArrayMessageReader reader(words, options);
    capnp::MallocMessageBuilder builder;
    builder.setRoot(reader.getRoot<capnp::AnyStruct>());
    return frame_record(builder);
  } catch (const kj::Exception&) {
    return std::string(content);
  }
}

fs::path place(const fs::path& work, uint8_t kind, const std::string& id) {
  switch (kind % 5) {
    case 0:
      return agent_path(work);
    case 1:
      return framework_path(work, "f" + id);
    case 2:
      return executor_run_path(work, "f" + id, "e" + id, "r" + id);
    case 3:
      return task_path(work, "f" + id, "t" + id);
    default:
      return meta_dir(work) / ("stray" + id);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  MemoryDisk disk;
  const fs::path work = "/work";
  for (int i = 0; i < 8 && !in.empty(); ++i) {
    auto kind = in.u8();
    auto id = std::to_string(in.u8() % 4);
    bool frame = in.u8() & 1;
    auto content = in.piece(1 << 16);
    auto bytes = frame ? framed(content) : std::string(content);
    (void)write_atomically(place(work, kind, id), std::string_view(bytes), disk);
  }
  auto state = recover(work, disk);
  if (state)
    (void)state->records();
  return 0;
}
