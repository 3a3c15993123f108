#include "services/security/credentials.hpp"
#include "services/security/files.hpp"

#include "runtime/log.hpp"
#include "services/agent/base64.hpp"  // header-only, no link to the agent

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace tessera::security {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t salt_bytes = 16;
constexpr size_t hash_bytes = 32;
constexpr size_t token_id_hex = 12;
constexpr size_t token_secret_bytes = 32;
constexpr int pbkdf2_iterations_min = 1000;
constexpr int pbkdf2_iterations_max = 10'000'000;

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(n)) != 1)
    throw std::runtime_error("OpenSSL's RAND_bytes failed");  // no entropy: nothing safe to do
  return out;
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string base64url(std::string_view bytes) {
  auto out = base64_encode(bytes);
  for (auto& c : out)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  return out;
}

std::string sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out, &n, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL's SHA-256 failed");
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string pbkdf2(std::string_view secret, std::string_view salt, int iterations) {
  std::string out(hash_bytes, '\0');
  if (PKCS5_PBKDF2_HMAC(secret.data(), int(secret.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), int(salt.size()),
                        iterations, EVP_sha256(), int(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1)
    throw std::runtime_error("OpenSSL's PBKDF2 failed");
  return out;
}

bool same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    auto at = text.find(sep, start);
    out.push_back(text.substr(start, at - start));
    if (at == std::string_view::npos)
      return out;
    start = at + 1;
  }
}

// "pbkdf2-sha256$N$SALT$HASH" -> its parts, decoded.
struct Pbkdf2Hash {
  int iterations = 0;
  std::string salt, hash;
};
std::optional<Pbkdf2Hash> parse_pbkdf2(std::string_view stored) {
  auto parts = split(stored, '$');
  if (parts.size() != 4 || parts[0] != "pbkdf2-sha256")
    return std::nullopt;
  Pbkdf2Hash h;
  auto [end, ec] =
      std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), h.iterations);
  if (ec != std::errc() || end != parts[1].data() + parts[1].size() ||
      h.iterations < pbkdf2_iterations_min || h.iterations > pbkdf2_iterations_max)
    return std::nullopt;
  auto salt = base64_decode(parts[2]);
  auto hash = base64_decode(parts[3]);
  if (!salt || salt->empty() || !hash || hash->size() != hash_bytes)
    return std::nullopt;
  h.salt = std::move(*salt);
  h.hash = std::move(*hash);
  return h;
}

// "sha256$SALT$HASH" -> salt and hash, decoded.
std::optional<std::pair<std::string, std::string>> parse_sha256(std::string_view stored) {
  auto parts = split(stored, '$');
  if (parts.size() != 3 || parts[0] != "sha256")
    return std::nullopt;
  auto salt = base64_decode(parts[1]);
  auto hash = base64_decode(parts[2]);
  if (!salt || salt->empty() || !hash || hash->size() != hash_bytes)
    return std::nullopt;
  return std::pair{std::move(*salt), std::move(*hash)};
}

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The document of file, {"principals": []} when it does not exist.
expected<json> read_document(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec))
    return json{{"principals", json::array()}};
  auto text = read_file(file);
  if (!text)
    return text.error();
  try {
    return json::parse(*text);
  } catch (const json::exception& e) {
    return make_error(Errc::invalid_argument, file.string() + " is not JSON: " + e.what());
  }
}

// Checks doc parses as credentials, then writes it.
expected<void> write_document(const fs::path& file, const json& doc) {
  if (auto parsed = Credentials::parse(doc); !parsed)
    return parsed.error();
  return write_file_atomically(file, doc.dump(2) + "\n", 0600);
}

// doc after a read: an object with a list of principals, else an error.
expected<void> check_shape(const json& doc, const fs::path& file) {
  if (!doc.is_object() || !doc.contains("principals") || !doc["principals"].is_array())
    return make_error(Errc::invalid_argument,
                      file.string() + ": a credentials file is {\"principals\": [...]}");
  return {};
}

// The document of file, to edit: read and of the right shape.
expected<json> read_for_edit(const fs::path& file) {
  auto doc = read_document(file);
  if (!doc)
    return doc.error();
  if (auto shape = check_shape(*doc, file); !shape)
    return shape.error();
  return doc;
}

expected<void> check_principal_name(const std::string& principal) {
  if (valid_principal(principal))
    return {};
  return make_error(
      Errc::invalid_argument,
      "'" + principal + "' is not a principal name (1 to 128 of A-Z a-z 0-9 . _ @ -)");
}

// principal's entry in doc, added when it has none.
json& entry_of(json& doc, const std::string& principal) {
  for (auto& p : doc["principals"])
    if (p.is_object() && p.value("principal", "") == principal)
      return p;
  doc["principals"].push_back({{"principal", principal}});
  return doc["principals"].back();
}

}  // namespace

bool valid_principal(std::string_view name) {
  if (name.empty() || name.size() > 128)
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' ||
          c == '-'))
      return false;
  return true;
}

std::string hash_secret(std::string_view secret, int iterations) {
  auto salt = random_bytes(salt_bytes);
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + base64_encode(salt) + "$" +
         base64_encode(pbkdf2(secret, salt, iterations));
}

bool verify_secret(std::string_view secret, std::string_view stored) {
  auto h = parse_pbkdf2(stored);
  return h && same(pbkdf2(secret, h->salt, h->iterations), h->hash);
}

NewToken make_token() {
  NewToken t;
  t.id = hex(random_bytes(token_id_hex / 2));
  auto secret = base64url(random_bytes(token_secret_bytes));
  t.token = t.id + "." + secret;
  auto salt = random_bytes(salt_bytes);
  t.hash = "sha256$" + base64_encode(salt) + "$" + base64_encode(sha256(salt + secret));
  return t;
}

std::string random_secret() {
  return base64url(random_bytes(24));
}

// -- Credentials ----------------------------------------------------------------------

expected<std::shared_ptr<Credentials>> Credentials::parse(const json& doc) {
  std::shared_ptr<Credentials> out(new Credentials());
  std::vector<std::string> problems;
  auto problem = [&](const std::string& path, const std::string& message) {
    problems.push_back(path + ": " + message);
  };
  if (!doc.is_object() || !doc.contains("principals") || !doc["principals"].is_array()) {
    problem("(top)", "a credentials file is {\"principals\": [...]}");
  } else if (doc["principals"].size() > principals_max) {
    problem("/principals", "more than " + std::to_string(principals_max) + " principals");
  } else {
    const auto& list = doc["principals"];
    for (size_t i = 0; i < list.size(); ++i) {
      auto path = "/principals/" + std::to_string(i);
      const auto& p = list[i];
      if (!p.is_object()) {
        problem(path, "must be an object with \"principal\"");
        continue;
      }
      for (const auto& [key, v] : p.items())
        if (key != "principal" && key != "secret" && key != "tokens")
          problem(path + "/" + key, "unknown field (known: principal, secret, tokens)");
      auto name = p.contains("principal") && p["principal"].is_string()
                      ? p["principal"].get<std::string>()
                      : std::string();
      if (!valid_principal(name)) {
        problem(path + "/principal", "must be 1 to 128 of A-Z a-z 0-9 . _ @ -");
        continue;
      }
      if (out->principals_.count(name)) {
        problem(path + "/principal", "'" + name + "' is named twice");
        continue;
      }
      Entry e;
      if (p.contains("secret")) {
        if (!p["secret"].is_string() || !parse_pbkdf2(p["secret"].get<std::string>()))
          problem(path + "/secret",
                  "must be \"pbkdf2-sha256$ITERATIONS$SALT$HASH\" (make it with `tessera "
                  "credentials add`)");
        else
          e.secret = p["secret"].get<std::string>();
      }
      if (p.contains("tokens")) {
        if (!p["tokens"].is_array()) {
          problem(path + "/tokens", "must be a list");
        } else {
          for (size_t j = 0; j < p["tokens"].size(); ++j) {
            auto at = path + "/tokens/" + std::to_string(j);
            const auto& t = p["tokens"][j];
            auto id = t.is_object() ? t.value("id", json()) : json();
            auto hash = t.is_object() ? t.value("hash", json()) : json();
            if (!id.is_string() || id.get<std::string>().size() != token_id_hex ||
                id.get<std::string>().find_first_not_of("0123456789abcdef") != std::string::npos) {
              problem(at + "/id", "must be 12 hex digits");
              continue;
            }
            if (!hash.is_string() || !parse_sha256(hash.get<std::string>())) {
              problem(at + "/hash",
                      "must be \"sha256$SALT$HASH\" (make it with `tessera token create`)");
              continue;
            }
            auto [it, added] =
                out->tokens_.emplace(id.get<std::string>(), Token{name, hash.get<std::string>()});
            if (!added)
              problem(at + "/id", "token id '" + it->first + "' is used twice");
          }
        }
      }
      out->principals_.emplace(name, std::move(e));
    }
  }
  if (problems.empty())
    return out;
  std::string text = "invalid credentials:";
  for (auto& p : problems)
    text += "\n  " + p;
  return make_error(Errc::invalid_argument, text);
}

expected<std::shared_ptr<Credentials>> Credentials::load(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    return make_error(Errc::invalid_argument, "cannot read the credentials file " + file.string() +
                                                  ": " + std::strerror(errno));
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", unsigned(st.st_mode & 0777));
    return make_error(Errc::invalid_argument, "the credentials file " + file.string() +
                                                  " may be written by others (mode " + mode +
                                                  "): chmod 600 it");
  }
  if (st.st_mode & S_IROTH)
    log().warn(
        "the credentials file {} may be read by anyone: it holds only salted hashes, "
        "but chmod 600 it",
        file.string());
  auto text = read_file(file);
  if (!text)
    return text.error();
  json doc;
  try {
    doc = json::parse(*text);
  } catch (const json::exception& e) {
    return make_error(Errc::invalid_argument,
                      "the credentials file " + file.string() + " is not JSON: " + e.what());
  }
  auto parsed = parse(doc);
  if (!parsed)
    return make_error(Errc::invalid_argument, file.string() + ": " + what(parsed.error()));
  return parsed;
}

expected<std::string> Credentials::authenticate(std::string_view header) const {
  if (header.empty())
    return make_error(Errc::invalid_argument,
                      "credentials are needed (Authorization: Bearer TOKEN)");
  if (header.size() > authorization_bytes_max)
    return make_error(Errc::invalid_argument, "the Authorization header is too long");
  auto space = header.find(' ');
  auto scheme = header.substr(0, space);
  auto rest = space == std::string_view::npos ? std::string_view() : header.substr(space + 1);
  while (!rest.empty() && rest.front() == ' ')
    rest.remove_prefix(1);
  auto is = [&](std::string_view name) {
    if (scheme.size() != name.size())
      return false;
    for (size_t i = 0; i < name.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(scheme[i])) != name[i])
        return false;
    return true;
  };
  if (is("bearer"))
    return bearer(rest);
  if (is("basic"))
    return basic(rest);
  return make_error(Errc::invalid_argument,
                    "unsupported Authorization scheme (use Bearer TOKEN or Basic)");
}

expected<std::string> Credentials::bearer(std::string_view token) const {
  auto bad = make_error(Errc::invalid_argument, "invalid or revoked token");
  auto dot = token.find('.');
  if (dot != token_id_hex)
    return bad;
  auto it = tokens_.find(std::string(token.substr(0, dot)));
  if (it == tokens_.end())
    return bad;
  auto stored = parse_sha256(it->second.hash);  // checked at load
  if (!stored || !same(sha256(stored->first + std::string(token.substr(dot + 1))), stored->second))
    return bad;
  return it->second.principal;
}

expected<std::string> Credentials::basic(std::string_view encoded) const {
  auto bad = make_error(Errc::invalid_argument, "invalid principal or secret");
  auto decoded = base64_decode(encoded);
  if (!decoded)
    return make_error(Errc::invalid_argument,
                      "a Basic credential must be base64(principal:secret)");
  auto colon = decoded->find(':');
  if (colon == std::string::npos)
    return make_error(Errc::invalid_argument,
                      "a Basic credential must be base64(principal:secret)");
  auto name = decoded->substr(0, colon);
  auto secret = std::string_view(*decoded).substr(colon + 1);
  auto key = sha256(*decoded);
  {
    std::lock_guard guard(mu_);
    if (auto hit = verified_.find(key); hit != verified_.end())
      return hit->second;
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      checks_in_window_ = 0;
    }
    if (checks_in_window_ >= password_checks_per_second_max)
      return make_error(Errc::invalid_argument,
                        "too many password checks; try again in a second (or use a token)");
    ++checks_in_window_;
  }
  auto it = principals_.find(name);
  if (it == principals_.end() || it->second.secret.empty() ||
      !verify_secret(secret, it->second.secret))
    return bad;
  std::lock_guard guard(mu_);
  if (verified_.size() >= verified_cache_entries_max)
    verified_.clear();  // rare: a thousand distinct good passwords
  verified_.emplace(key, name);
  return name;
}

// -- editing ----------------------------------------------------------------------------

expected<void> put_principal(const fs::path& file, const std::string& principal,
                             const std::string& secret_hash) {
  if (auto name = check_principal_name(principal); !name)
    return name;
  auto doc = read_for_edit(file);
  if (!doc)
    return doc.error();
  auto& entry = entry_of(*doc, principal);
  if (!secret_hash.empty())
    entry["secret"] = secret_hash;
  return write_document(file, *doc);
}

expected<void> remove_principal(const fs::path& file, const std::string& principal) {
  auto doc = read_for_edit(file);
  if (!doc)
    return doc.error();
  auto& list = (*doc)["principals"];
  auto before = list.size();
  for (size_t i = 0; i < list.size(); ++i)
    if (list[i].is_object() && list[i].value("principal", "") == principal) {
      list.erase(i);
      break;
    }
  if (list.size() == before)
    return make_error(Errc::invalid_argument,
                      "no principal '" + principal + "' in " + file.string());
  return write_document(file, *doc);
}

expected<NewToken> add_token(const fs::path& file, const std::string& principal) {
  if (auto name = check_principal_name(principal); !name)
    return name.error();
  auto doc = read_for_edit(file);
  if (!doc)
    return doc.error();
  auto* p = &entry_of(*doc, principal);
  auto token = make_token();
  if (!p->contains("tokens"))
    (*p)["tokens"] = json::array();
  (*p)["tokens"].push_back({{"id", token.id}, {"hash", token.hash}, {"created", now_utc()}});
  if (auto written = write_document(file, *doc); !written)
    return written.error();
  return token;
}

expected<void> revoke_token(const fs::path& file, const std::string& id) {
  auto doc = read_for_edit(file);
  if (!doc)
    return doc.error();
  for (auto& p : (*doc)["principals"]) {
    if (!p.is_object() || !p.contains("tokens") || !p["tokens"].is_array())
      continue;
    auto& tokens = p["tokens"];
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i].is_object() && tokens[i].value("id", "") == id) {
        tokens.erase(i);
        return write_document(file, *doc);
      }
  }
  return make_error(Errc::invalid_argument, "no token '" + id + "' in " + file.string());
}

expected<json> list_principals(const fs::path& file) {
  auto doc = read_document(file);
  if (!doc)
    return doc.error();
  if (auto parsed = Credentials::parse(*doc); !parsed)
    return parsed.error();
  auto out = json::array();
  for (auto& p : (*doc)["principals"]) {
    auto tokens = json::array();
    for (auto& t : p.value("tokens", json::array()))
      tokens.push_back({{"id", t.value("id", "")}, {"created", t.value("created", "")}});
    out.push_back({{"principal", p.value("principal", "")},
                   {"secret", p.contains("secret")},
                   {"tokens", tokens}});
  }
  return out;
}

}  // namespace tessera::security
