#pragma once
// Who is calling (issue #14): the principals that may use Tessera's HTTP
// APIs, read from a JSON credentials file (`--credentials FILE`), and the
// check of a request's Authorization header against it.
//
//   {"principals": [
//     {"principal": "alice",
//      "secret": "pbkdf2-sha256$100000$<salt, base64>$<hash, base64>",
//      "tokens": [{"id": "5f0c2a9e41d7", "hash": "sha256$<salt>$<hash>",
//                  "created": "2025-01-01T00:00:00Z"}]}
//   ]}
//
// Nothing secret is stored: a principal's secret (for HTTP Basic, what
// people type) as PBKDF2-HMAC-SHA256 with a random 16-byte salt per entry;
// a bearer token (what programs and the web UI send) as SHA-256 of a
// random salt and the token's secret part. A token is "ID.SECRET": ID (12
// hex digits) names its entry, so a check costs one hash; SECRET is 32
// random bytes in base64url. It is shown once, when made (make_token), and
// cannot be recovered from the file. Comparisons are constant-time.
//
// Accepted headers: "Bearer ID.SECRET" and "Basic base64(principal:secret)".
// A Basic check costs a PBKDF2 (tens of milliseconds): successes are
// remembered (by a hash of the header value, at most
// verified_cache_entries_max of them), and at most
// password_checks_per_second_max uncached checks run per second; beyond
// that the check fails at once, so a flood of wrong passwords cannot take
// the calling I/O thread.
//
// Thread-safety: a Credentials is immutable once loaded, except for the
// cache and the rate limit (guarded by a mutex): any thread may call
// authenticate() at once.

#include "runtime/error.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tessera::security {

inline constexpr int pbkdf2_iterations_default = 100'000;
inline constexpr size_t verified_cache_entries_max = 1024;
inline constexpr int password_checks_per_second_max = 5;
inline constexpr size_t principals_max = 100'000;
inline constexpr size_t authorization_bytes_max = 4096;

// A principal's name: 1..128 of [A-Za-z0-9._@-] (no ':', which ends the
// name in a Basic header).
bool valid_principal(std::string_view name);

// "pbkdf2-sha256$ITERATIONS$SALT$HASH" for secret, with a fresh salt.
std::string hash_secret(std::string_view secret, int iterations = pbkdf2_iterations_default);
// Whether secret is the one stored hashes (constant-time compare); false
// for a stored text that does not parse.
bool verify_secret(std::string_view secret, std::string_view stored);

struct NewToken {
  std::string id;     // 12 hex digits
  std::string token;  // "ID.SECRET": give it to the caller, once
  std::string hash;   // "sha256$SALT$HASH": what the file keeps
};
NewToken make_token();
// A random secret for a principal made without one: 24 bytes, base64url.
std::string random_secret();

class Credentials {
 public:
  // Errors: not an object of "principals", a principal named twice, a bad
  // name, a hash that does not parse, a token id used twice: each with its
  // JSON pointer path.
  static expected<std::shared_ptr<Credentials>> parse(const nlohmann::json& document);
  // The same from a file. A file others may write is refused (they could
  // add themselves); one others may read is accepted with a warning (it
  // holds only hashes, but they help a guesser).
  static expected<std::shared_ptr<Credentials>> load(const std::filesystem::path& file);

  // The principal an Authorization header value names, or why not
  // (Errc::invalid_argument, a message safe to show the caller).
  expected<std::string> authenticate(std::string_view authorization) const;

  size_t size() const { return principals_.size(); }
  bool has(const std::string& principal) const { return principals_.count(principal) > 0; }

 private:
  struct Entry {
    std::string secret;  // the stored hash; empty: no Basic for it
  };
  struct Token {
    std::string principal;
    std::string hash;
  };
  expected<std::string> basic(std::string_view encoded) const;
  expected<std::string> bearer(std::string_view token) const;

  std::map<std::string, Entry> principals_;
  std::unordered_map<std::string, Token> tokens_;  // by id

  mutable std::mutex mu_;
  // SHA-256 of a Basic header that verified -> its principal.
  mutable std::unordered_map<std::string, std::string> verified_;
  mutable std::chrono::steady_clock::time_point window_start_{};
  mutable int checks_in_window_ = 0;
};

// -- editing a credentials file (`tessera credentials`, `tessera token`) --------
// Each reads FILE (a missing one is empty), changes it, checks it parses,
// and writes it back atomically with mode 0600.

// Adds principal, or sets its secret when it exists (secret_hash empty:
// keeps the one it has).
expected<void> put_principal(const std::filesystem::path& file, const std::string& principal,
                             const std::string& secret_hash);
expected<void> remove_principal(const std::filesystem::path& file, const std::string& principal);
// Adds a token for principal (made if absent, without a secret); the token
// to show once.
expected<NewToken> add_token(const std::filesystem::path& file, const std::string& principal);
expected<void> revoke_token(const std::filesystem::path& file, const std::string& id);
// Principals with their token ids, for `tessera credentials list`.
expected<nlohmann::json> list_principals(const std::filesystem::path& file);

}  // namespace tessera::security
