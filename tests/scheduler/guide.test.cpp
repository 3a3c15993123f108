// docs/framework-guide.md quotes the hello example whole; the quotes must be
// the files in the repository, byte for byte.

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace tessera::testing;

TEST_CASE("the framework guide quotes the hello example as it is", "[scheduler][docs]") {
  // Not __FILE__: ccache's base_dir makes it relative to the build directory.
  auto root = std::filesystem::path(TESSERA_SOURCE_DIR);
  auto guide = read_file(root / "docs/framework-guide.md");
  REQUIRE(!guide.empty());
  const std::string marker = "<!-- quoted: ";
  int quotes = 0;
  for (auto pos = guide.find(marker); pos != std::string::npos; pos = guide.find(marker, pos)) {
    auto name_end = guide.find(" -->\n```cpp\n", pos);
    REQUIRE(name_end != std::string::npos);
    auto file = guide.substr(pos + marker.size(), name_end - pos - marker.size());
    auto body_begin = name_end + std::string(" -->\n```cpp\n").size();
    auto body_end = guide.find("```\n", body_begin);
    REQUIRE(body_end != std::string::npos);
    INFO(file);
    CHECK(guide.substr(body_begin, body_end - body_begin) == read_file(root / file));
    ++quotes;
    pos = body_end;
  }
  CHECK(quotes == 2);
}
