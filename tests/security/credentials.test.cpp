// Credentials: salted hashes only, Bearer tokens and Basic secrets checked,
// the file edited by the CLI's functions, permissions enforced.

#include "services/security/credentials.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

using namespace tessera;
using namespace tessera::security;
using namespace tessera::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string basic(const std::string& user_pass) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= user_pass.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(user_pass[i])) << 16 | uint32_t(uint8_t(user_pass[i + 1])) << 8 |
                 uint32_t(uint8_t(user_pass[i + 2]));
    for (int s : {18, 12, 6, 0})
      out += alphabet[(v >> s) & 63];
  }
  if (auto rest = user_pass.size() - i) {
    uint32_t v = uint32_t(uint8_t(user_pass[i])) << 16;
    if (rest == 2)
      v |= uint32_t(uint8_t(user_pass[i + 1])) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return "Basic " + out;
}

}  // namespace

TEST_CASE("credentials: secrets are stored salted and verify", "[credentials]") {
  auto a = hash_secret("hunter2", 1000);
  auto b = hash_secret("hunter2", 1000);
  CHECK(a != b);  // a fresh salt each time
  CHECK(a.rfind("pbkdf2-sha256$1000$", 0) == 0);
  CHECK(a.find("hunter2") == std::string::npos);
  CHECK(verify_secret("hunter2", a));
  CHECK_FALSE(verify_secret("hunter3", a));
  CHECK_FALSE(verify_secret("hunter2", "pbkdf2-sha256$1000$bad"));
}

TEST_CASE("credentials: the file made by the CLI's functions authenticates", "[credentials]") {
  TempDir dir;
  auto file = dir.path() / "credentials.json";
  REQUIRE(put_principal(file, "alice", hash_secret("s3cret", 1000)));
  auto token = add_token(file, "ci");
  REQUIRE(token);
  auto second = add_token(file, "ci");
  REQUIRE(second);
  CHECK(token->id != second->id);

  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto text = read_file(file);
  CHECK(text.find(token->token.substr(13)) == std::string::npos);  // only its hash

  auto creds = Credentials::load(file);
  REQUIRE(creds);
  CHECK((*creds)->size() == 2);
  auto who = (*creds)->authenticate("Bearer " + token->token);
  REQUIRE(who);
  CHECK(*who == "ci");
  CHECK(*(*creds)->authenticate("bearer " + second->token) == "ci");
  auto bad = (*creds)->authenticate("Bearer " + token->token + "x");
  REQUIRE_FALSE(bad);
  CHECK(what(bad.error()) == "invalid or revoked token");
  CHECK_FALSE((*creds)->authenticate("Bearer nonsense"));
  CHECK_FALSE((*creds)->authenticate(""));
  CHECK_FALSE((*creds)->authenticate("Digest abc"));

  auto alice = (*creds)->authenticate(basic("alice:s3cret"));
  REQUIRE(alice);
  CHECK(*alice == "alice");
  CHECK(*(*creds)->authenticate(basic("alice:s3cret")) == "alice");  // remembered
  CHECK_FALSE((*creds)->authenticate(basic("alice:wrong")));
  CHECK_FALSE((*creds)->authenticate(basic("ci:anything")));  // ci has no secret

  auto listed = list_principals(file);
  REQUIRE(listed);
  CHECK(listed->size() == 2);
  CHECK((*listed)[1]["tokens"].size() == 2);

  REQUIRE(revoke_token(file, token->id));
  auto reloaded = Credentials::load(file);
  REQUIRE(reloaded);
  CHECK_FALSE((*reloaded)->authenticate("Bearer " + token->token));
  CHECK(*(*reloaded)->authenticate("Bearer " + second->token) == "ci");
  CHECK_FALSE(revoke_token(file, token->id));
  REQUIRE(remove_principal(file, "ci"));
  CHECK_FALSE((*Credentials::load(file))->authenticate("Bearer " + second->token));
  CHECK_FALSE(put_principal(file, "bad:name", ""));
}

TEST_CASE("credentials: uncached password checks are limited per second", "[credentials]") {
  TempDir dir;
  auto file = dir.path() / "c.json";
  REQUIRE(put_principal(file, "alice", hash_secret("right", 1000)));
  auto creds = Credentials::load(file);
  REQUIRE(creds);
  for (int i = 0; i < password_checks_per_second_max; ++i)
    CHECK(what((*creds)->authenticate(basic("alice:wrong" + std::to_string(i))).error()) ==
          "invalid principal or secret");
  auto limited = (*creds)->authenticate(basic("alice:right"));
  REQUIRE_FALSE(limited);
  CHECK(what(limited.error()).find("too many password checks") != std::string::npos);
}

TEST_CASE("credentials: bad files are refused with the path of each problem", "[credentials]") {
  TempDir dir;
  auto file = dir.path() / "c.json";
  {
    std::ofstream out(file);
    out << R"({"principals": [{"principal": "a", "secret": "plain"},
                              {"principal": "a"},
                              {"principal": "b", "tokens": [{"id": "xyz", "hash": "sha256$a$b"}]}]})";
  }
  ::chmod(file.c_str(), 0600);
  auto loaded = Credentials::load(file);
  REQUIRE_FALSE(loaded);
  auto text = what(loaded.error());
  CHECK(text.find("/principals/0/secret") != std::string::npos);
  CHECK(text.find("/principals/1/principal: 'a' is named twice") != std::string::npos);
  CHECK(text.find("/principals/2/tokens/0/id") != std::string::npos);

  REQUIRE(put_principal(dir.path() / "ok.json", "a", ""));
  ::chmod((dir.path() / "ok.json").c_str(), 0666);
  auto writable = Credentials::load(dir.path() / "ok.json");
  REQUIRE_FALSE(writable);
  CHECK(what(writable.error()).find("may be written by others (mode 666)") != std::string::npos);
  ::chmod((dir.path() / "ok.json").c_str(), 0644);  // readable: a warning only
  CHECK(Credentials::load(dir.path() / "ok.json"));
}
