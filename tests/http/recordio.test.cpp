// RecordIO framing: what Mesos's event streams carry inside HTTP chunks.

#include "services/http/recordio.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace tessera::http;

namespace {

std::vector<std::string> drain(RecordIoReader& reader) {
  std::vector<std::string> out;
  while (auto record = reader.next())
    out.push_back(*record);
  return out;
}

}  // namespace

TEST_CASE("http recordio: a record is framed as its decimal length, a newline, and the bytes",
          "[recordio]") {
  CHECK(recordio_frame("hello") == "5\nhello");
  CHECK(recordio_frame("") == "0\n");
  CHECK(recordio_frame(std::string(12, 'x')) == "12\n" + std::string(12, 'x'));
}

TEST_CASE("http recordio: records round trip, whole or fed one byte at a time", "[recordio]") {
  std::vector<std::string> records = {"first", "", std::string(1000, 'z'), "a\nb\n", "last"};
  std::string wire;
  for (const auto& r : records)
    wire += recordio_frame(r);

  SECTION("in one piece") {
    RecordIoReader reader;
    reader.feed(wire);
    CHECK(drain(reader) == records);
    CHECK_FALSE(reader.error());
  }
  SECTION("split at every byte, reading as it goes") {
    RecordIoReader reader;
    std::vector<std::string> got;
    for (char c : wire) {
      reader.feed(std::string_view(&c, 1));
      for (auto& r : drain(reader))
        got.push_back(r);
    }
    CHECK(got == records);
    CHECK_FALSE(reader.error());
  }
  SECTION("split inside the length digits") {
    RecordIoReader reader;
    reader.feed("1");
    CHECK_FALSE(reader.next());
    reader.feed("1\nhello");
    CHECK_FALSE(reader.next());
    reader.feed(" world");
    CHECK(reader.next() == std::optional<std::string>("hello world"));
    CHECK_FALSE(reader.error());
  }
}

TEST_CASE("http recordio: a bad length is an error the reader does not recover from",
          "[recordio]") {
  SECTION("not a number") {
    RecordIoReader reader;
    reader.feed("abc\nxyz");
    CHECK_FALSE(reader.next());
    CHECK(reader.error());
    reader.feed("3\nabc");
    CHECK_FALSE(reader.next());
  }
  SECTION("no digits") {
    RecordIoReader reader;
    reader.feed("\nx");
    CHECK_FALSE(reader.next());
    CHECK(reader.error());
  }
  SECTION("a non-digit before the newline has arrived") {
    RecordIoReader reader;
    reader.feed("12x");
    CHECK_FALSE(reader.next());
    CHECK(reader.error());
  }
  SECTION("larger than the maximum record") {
    RecordIoReader reader(1024);
    reader.feed("1025\n");
    CHECK_FALSE(reader.next());
    CHECK(reader.error());
  }
  SECTION("a length with more digits than any size") {
    RecordIoReader reader;
    reader.feed(std::string(30, '9'));
    CHECK_FALSE(reader.next());
    CHECK(reader.error());
  }
  SECTION("a good record before the bad one is still delivered") {
    RecordIoReader reader;
    reader.feed("2\nok-5\n");
    CHECK(reader.next() == std::optional<std::string>("ok"));
    CHECK_FALSE(reader.next());
    CHECK(reader.error());
  }
}
