#include "services/agent/fetcher.hpp"

#include "runtime/log.hpp"
#include "services/agent/sandbox.hpp"
#include "services/common/text.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <httplib.h>
#include <uriparser/Uri.h>
#include <openssl/evp.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

namespace tessera {

namespace fs = std::filesystem;

namespace {

constexpr size_t copy_buffer_bytes = size_t{1} << 16;
constexpr const char* temp_prefix = ".tmp-";
// openat2 may answer EAGAIN when a rename races the walk; tried this often more.
constexpr int openat2_eagain_retries_max = 3;

// Closes one descriptor on every path out.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

// A file made with mkstemp in a directory, removed unless committed by rename.
class TempFile {
 public:
  static expected<TempFile> create(const fs::path& dir) {
    std::string tmpl = (dir / (std::string(temp_prefix) + "XXXXXX")).string();
    int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0)
      return make_os_error(errno, "mkstemp(" + dir.string() + ")");
    TempFile t;
    t.fd_ = fd;
    t.path_ = tmpl;
    return t;
  }
  TempFile() = default;
  TempFile(TempFile&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {
    o.path_.clear();
  }
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (fd_ >= 0)
      ::close(fd_);
    if (!path_.empty())
      ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const fs::path& path() const { return path_; }
  caf::error commit(const fs::path& dest, mode_t mode) {
    if (::fchmod(fd_, mode) != 0)
      return make_os_error(errno, "chmod(" + path_.string() + ")");
    if (::rename(path_.c_str(), dest.c_str()) != 0)
      return make_os_error(errno, "rename(" + path_.string() + ", " + dest.string() + ")");
    path_.clear();
    return caf::none;
  }

 private:
  int fd_ = -1;
  fs::path path_;
};

caf::error write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return make_os_error(errno, "write");
    data += n;
    size -= static_cast<size_t>(n);
  }
  return caf::none;
}

// Copies from the current offset of in to out; more than bytes_max bytes is
// an Errc::oversized error (the source may grow while it is copied).
expected<uint64_t> copy_fd(int in, int out, uint64_t bytes_max) {
  std::vector<char> buf(copy_buffer_bytes);
  uint64_t total = 0;
  for (;;) {
    auto n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return make_os_error(errno, "read");
    if (n == 0)
      return total;
    total += static_cast<uint64_t>(n);
    if (total > bytes_max)
      return make_error(Errc::oversized, "more than " + std::to_string(bytes_max) + " bytes");
    if (auto err = write_all(out, buf.data(), static_cast<size_t>(n)))
      return err;
  }
}

caf::error reset(int fd) {
  if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0)
    return make_os_error(errno, "truncate");
  return caf::none;
}

// Prefixes an error's text with what failed: "fetch <uri>: <cause>".
caf::error with_context(const caf::error& err, const std::string& context) {
  auto code = static_cast<Errc>(err.code());
  return make_error(err.category() == error_category ? code : Errc::os_error,
                    context + ": " + what(err));
}

// ---------------------------------------------------------------------------
// URIs

// What a URI names: a local file, or a resource on an HTTP(S) server.
struct Source {
  bool http = false;   // http:// or https://
  bool tls = false;    // https://
  std::string path;    // file: the absolute path
  std::string host;    // http: a name or an address, IPv6 without brackets
  int port = 80;       // http
  std::string target;  // http: path and query as sent, "/" at least
  std::string name;    // the last path segment, decoded: the name in the sandbox
  std::string uri;     // http: the URI itself, the base that redirects resolve against
};

// A URI parsed by uriparser, freed on every path out.
class ParsedUri {
 public:
  explicit ParsedUri(const std::string& text) {
    const char* error_at = nullptr;
    ok_ = uriParseSingleUriA(&uri_, text.c_str(), &error_at) == URI_SUCCESS;
    error_offset_ = error_at ? static_cast<size_t>(error_at - text.c_str()) : 0;
  }
  ~ParsedUri() {
    if (ok_)
      uriFreeUriMembersA(&uri_);
  }
  ParsedUri(const ParsedUri&) = delete;
  ParsedUri& operator=(const ParsedUri&) = delete;
  bool ok() const { return ok_; }
  size_t error_offset() const { return error_offset_; }
  const UriUriA& get() const { return uri_; }

 private:
  UriUriA uri_{};
  bool ok_ = false;
  size_t error_offset_ = 0;
};

std::string range(const UriTextRangeA& r) {
  return r.first && r.afterLast ? std::string(r.first, r.afterLast) : std::string();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// %XX sequences decoded; a NUL among them is refused.
expected<std::string> unescape(std::string text) {
  text.push_back('\0');
  auto* end = uriUnescapeInPlaceExA(text.data(), URI_FALSE, URI_BR_DONT_TOUCH);
  text.resize(static_cast<size_t>(end - text.data()));
  if (text.find('\0') != std::string::npos)
    return make_error(Errc::invalid_argument, "an escaped NUL byte");
  return text;
}

// The path's segments: raw (as they are sent) or decoded (as they name files).
std::vector<std::string> segments(const UriUriA& u) {
  std::vector<std::string> out;
  for (auto* seg = u.pathHead; seg; seg = seg->next)
    out.push_back(range(seg->text));
  return out;
}

caf::error set_name(Source& src, const std::vector<std::string>& parts) {
  auto name = unescape(parts.empty() ? std::string() : parts.back());
  if (!name)
    return name.error();
  if (!sandbox::valid_path_id(*name))
    return make_error(Errc::invalid_argument, "no usable file name in the URI's path");
  src.name = *name;
  return caf::none;
}

expected<Source> parse_file(const UriUriA& u) {
  auto host = lower(range(u.hostText));
  if (!host.empty() && host != "localhost")
    return make_error(Errc::invalid_argument, "file URIs must name a local absolute path");
  Source src;
  auto parts = segments(u);
  for (const auto& part : parts) {
    auto decoded = unescape(part);
    if (!decoded)
      return decoded.error();
    src.path += "/" + *decoded;
  }
  if (src.path.empty())
    return make_error(Errc::invalid_argument, "file URIs must name a local absolute path");
  if (auto err = set_name(src, parts))
    return err;
  return src;
}

expected<Source> parse_remote(const UriUriA& u, const std::string& text, bool tls) {
  Source src;
  src.http = true;
  src.tls = tls;
  src.uri = text;
  src.port = tls ? 443 : 80;
  if (u.userInfo.first)
    return make_error(Errc::invalid_argument, "user information is not supported");
  if (u.hostData.ipFuture.first)
    return make_error(Errc::invalid_argument, "future IP address formats are not supported");
  src.host = range(u.hostText);  // an IPv6 address comes without its brackets
  if (src.host.empty())
    return make_error(Errc::invalid_argument, "no host");
  if (u.portText.first) {
    uint64_t port = 0;
    if (!text::parse_u64(range(u.portText), port) || port == 0 || port > 65535)
      return make_error(Errc::invalid_argument, "bad port");
    src.port = static_cast<int>(port);
  }
  auto parts = segments(u);
  for (const auto& part : parts)
    src.target += "/" + part;
  if (src.target.empty())
    src.target = "/";
  if (u.query.first)
    src.target += "?" + range(u.query);
  if (auto err = set_name(src, parts))
    return err;
  return src;
}

// An absolute URI (file, http or https) parsed by uriparser.
expected<Source> parse_absolute(const std::string& text) {
  ParsedUri parsed(text);
  if (!parsed.ok())
    return make_error(Errc::invalid_argument, "not a valid URI (at character " +
                                                  std::to_string(parsed.error_offset()) + ")");
  auto scheme = lower(range(parsed.get().scheme));
  if (scheme == "http" || scheme == "https")
    return parse_remote(parsed.get(), text, scheme == "https");
  if (scheme == "file")
    return parse_file(parsed.get());
  return make_error(Errc::invalid_argument,
                    (scheme.empty() ? std::string("unsupported URI")
                                    : "unsupported URI scheme '" + scheme + "'") +
                        " (only file://, http://, https:// and absolute paths)");
}

expected<Source> parse_uri(std::string_view uri) {
  if (uri.find('\0') != std::string_view::npos)
    return make_error(Errc::invalid_argument, "a NUL byte");
  if (!uri.starts_with('/'))
    return parse_absolute(std::string(uri));
  // A plain path, taken as it is (no escapes).
  Source src;
  src.path = std::string(uri);
  auto slash = uri.rfind('/');
  auto name = uri.substr(slash + 1);
  if (!sandbox::valid_path_id(name))
    return make_error(Errc::invalid_argument, "no usable file name in the URI's path");
  src.name = std::string(name);
  return src;
}

// A Location header resolved against the URI that answered with it
// (RFC 3986 section 5, by uriparser); it must lead to http:// or https://.
expected<Source> follow(const Source& src, const std::string& location) {
  auto refused = make_error(Errc::invalid_argument,
                            "redirect to unsupported location '" + location.substr(0, 200) + "'");
  ParsedUri base(src.uri), relative(location);
  if (location.empty() || !base.ok() || !relative.ok())
    return refused;
  UriUriA resolved{};
  if (uriAddBaseUriA(&resolved, &relative.get(), &base.get()) != URI_SUCCESS)
    return refused;
  int chars = 0;
  std::string text;
  if (uriToStringCharsRequiredA(&resolved, &chars) == URI_SUCCESS) {
    text.resize(static_cast<size_t>(chars) + 1);
    if (uriToStringA(text.data(), &resolved, chars + 1, nullptr) != URI_SUCCESS)
      text.clear();
    text.resize(static_cast<size_t>(chars));
  }
  uriFreeUriMembersA(&resolved);
  auto next = parse_absolute(text);
  if (!next || !next->http)
    return refused;
  next->name = src.name;  // the sandbox name comes from the URI as given
  return next;
}

// ---------------------------------------------------------------------------
// Copies and downloads into an open temporary file

// Whether path lies in dir (both absolute and free of "." and ".."),
// component by component: /a/bc is not in /a/b.
bool lies_in(const fs::path& path, const fs::path& dir) {
  auto [end, _] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return end == dir.end() || (std::next(end) == dir.end() && end->empty());
}

// openat2 from dir_fd, beneath it and through no symlink at all; -1 and
// errno on failure (ENOSYS: the kernel has no openat2).
int open_beneath(int dir_fd, const fs::path& relative) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN || attempt == openat2_eagain_retries_max)
      return static_cast<int>(fd);
  }
}

// Opens a local source if it lies under one of the allowed directories once
// resolved (realpath: every symlink and ".." followed). The open then goes
// from that directory through no symlink, so the file opened is the one
// checked even if a link is swapped in meanwhile (ELOOP or EXDEV then).
expected<int> open_allowed(const std::string& path, const std::vector<fs::path>& allowed) {
  if (allowed.empty())
    return make_error(Errc::invalid_argument,
                      "local files may not be fetched on this agent (no --fetcher-allowed-paths)");
  auto outside = [&] {
    std::string dirs;
    for (const auto& dir : allowed)
      dirs += (dirs.empty() ? "" : ",") + dir.string();
    return make_error(Errc::invalid_argument, "outside the agent's --fetcher-allowed-paths (" +
                                                  dirs + ") once symlinks and '..' are resolved");
  };
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
  if (!real) {
    // A missing file says so only where it would be allowed: elsewhere the
    // answer must not tell which files exist.
    int err = errno;
    auto normal = fs::path(path).lexically_normal();
    for (const auto& dir : allowed)
      if (lies_in(normal, dir.lexically_normal()))
        return make_error(Errc::os_error, std::strerror(err));
    return outside();
  }
  fs::path target(real.get());
  for (const auto& dir : allowed) {
    std::unique_ptr<char, decltype(&std::free)> root(::realpath(dir.c_str(), nullptr), &std::free);
    if (!root || !lies_in(target, root.get()))
      continue;
    Fd dir_fd{::open(root.get(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
    if (dir_fd.fd < 0)
      return make_os_error(errno, "open " + dir.string());
    auto relative = target.lexically_relative(root.get());
    if (relative.empty() || relative == ".")
      return make_error(Errc::invalid_argument, "not a regular file");
    int fd = open_beneath(dir_fd.fd, relative);
    if (fd < 0 && (errno == ENOSYS || errno == EPERM))
      fd = ::open(target.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);  // no openat2 here
    if (fd < 0 && (errno == ELOOP || errno == EXDEV))
      return outside();  // a link appeared since realpath
    if (fd < 0)
      return make_error(Errc::os_error, std::strerror(errno));
    return fd;
  }
  return outside();
}

// Copies a local source opened by open_allowed().
expected<uint64_t> copy_local(const Fd& in, int out, const FetcherConfig& config, mode_t& mode) {
  // The URI names the file, so the errors name only the cause.
  struct stat st {};
  if (::fstat(in.fd, &st) != 0)
    return make_error(Errc::os_error, std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return make_error(Errc::invalid_argument, "not a regular file");
  if (static_cast<uint64_t>(st.st_size) > config.download_bytes_max)
    return make_error(Errc::oversized, std::to_string(st.st_size) + " bytes, over " +
                                           "download_bytes_max " +
                                           std::to_string(config.download_bytes_max));
  mode = st.st_mode & 0777;
  auto copied = copy_fd(in.fd, out, config.download_bytes_max);
  if (!copied && is(copied.error(), Errc::oversized))
    return make_error(Errc::oversized,
                      "over download_bytes_max " + std::to_string(config.download_bytes_max));
  return copied;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

struct Attempt {
  int status = 0;
  std::string location;
  uint64_t bytes = 0;
  caf::error failure;
};

// "host:port", "[::1]:port".
std::string authority(const Source& src) {
  auto host = src.host.find(':') != std::string::npos ? "[" + src.host + "]" : src.host;
  return host + ":" + std::to_string(src.port);
}

// Whether this build of cpp-httplib speaks TLS (Debian's does: its .pc
// defines CPPHTTPLIB_OPENSSL_SUPPORT).
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
constexpr bool tls_supported = true;
#else
constexpr bool tls_supported = false;
#endif

caf::error describe_failure(httplib::Error error, const Source& src) {
  auto where = authority(src);
  switch (error) {
    case httplib::Error::Connection:
      return make_error(Errc::connect_failed, "cannot connect to " + where);
    case httplib::Error::ConnectionTimeout:
      return make_error(Errc::timeout, "connecting to " + where + " timed out");
    case httplib::Error::SSLConnection:
      return make_error(Errc::connect_failed, "TLS handshake with " + where + " failed");
    case httplib::Error::SSLServerVerification:
      return make_error(Errc::connect_failed,
                        "the TLS certificate of " + where +
                            " could not be verified (FetcherConfig::ca_file names the CAs)");
    default:
      return make_error(Errc::connect_failed,
                        "transfer from " + where + " failed (" + httplib::to_string(error) + ")");
  }
}

Attempt get_once(const Source& src, int out, const FetcherConfig& config,
                 std::chrono::steady_clock::time_point deadline) {
  Attempt a;
  if (auto err = reset(out)) {
    a.failure = err;
    return a;
  }
  if (src.tls && !tls_supported) {
    a.failure = make_error(Errc::invalid_argument,
                           "https:// is not supported: this cpp-httplib was built without "
                           "OpenSSL (CPPHTTPLIB_OPENSSL_SUPPORT)");
    return a;
  }
  httplib::Client client((src.tls ? "https://" : "http://") + authority(src));
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  if (src.tls) {
    client.enable_server_certificate_verification(true);
    if (!config.ca_file.empty())
      client.set_ca_cert_path(config.ca_file.string());
  }
#endif
  client.set_connection_timeout(config.connect_timeout_ms);
  client.set_read_timeout(config.read_timeout_ms);
  client.set_write_timeout(config.read_timeout_ms);
  client.set_follow_location(false);  // followed here, bounded by redirects_max
  client.set_decompress(false);       // the bytes as served
  client.set_keep_alive(false);
  auto on_response = [&](const httplib::Response& r) {
    a.status = r.status;
    if (r.status != 200) {
      a.location = r.get_header_value("Location");
      return false;  // no need for the body of an error or a redirect
    }
    uint64_t length = 0;
    if (r.has_header("Content-Length") &&
        text::parse_u64(r.get_header_value("Content-Length"), length) &&
        length > config.download_bytes_max) {
      a.failure = make_error(Errc::oversized, "Content-Length " + std::to_string(length) +
                                                  " over download_bytes_max " +
                                                  std::to_string(config.download_bytes_max));
      return false;
    }
    return true;
  };
  auto on_data = [&](const char* data, size_t size) {
    a.bytes += size;
    if (a.bytes > config.download_bytes_max) {
      a.failure = make_error(
          Errc::oversized, "over download_bytes_max " + std::to_string(config.download_bytes_max));
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      a.failure = make_error(Errc::timeout, "over download_timeout_ms");
      return false;
    }
    a.failure = write_all(out, data, size);
    return !a.failure;
  };
  httplib::Headers headers{{"Accept-Encoding", "identity"}};
  auto result = client.Get(src.target, headers, on_response, on_data);
  if (a.status == 0 && result)
    a.status = result->status;  // statuses without a body (204) skip on_response
  if (a.failure || (a.status != 0 && a.status != 200) || result.error() == httplib::Error::Success)
    return a;
  a.failure = describe_failure(result.error(), src);
  return a;
}

expected<uint64_t> download(Source src, int out, const FetcherConfig& config) {
  auto deadline = std::chrono::steady_clock::now() + config.download_timeout_ms;
  for (uint32_t redirects = 0;; ++redirects) {
    auto a = get_once(src, out, config, deadline);
    if (a.failure)
      return a.failure;
    if (a.status == 200)
      return a.bytes;
    if (!is_redirect(a.status) || a.location.empty())
      return make_error(Errc::connect_failed, "HTTP " + std::to_string(a.status));
    if (redirects >= config.redirects_max)
      return make_error(Errc::oversized, "more than redirects_max " +
                                             std::to_string(config.redirects_max) + " redirects");
    auto next = follow(src, a.location);
    if (!next)
      return next.error();
    src = std::move(*next);
  }
}

// ---------------------------------------------------------------------------
// Archives

bool is_archive(const std::string& name) {
  constexpr std::array<std::string_view, 6> suffixes{".tar",     ".tar.gz", ".tgz",
                                                     ".tar.bz2", ".tar.xz", ".zip"};
  return std::any_of(suffixes.begin(), suffixes.end(),
                     [&](std::string_view s) { return name.ends_with(s); });
}

struct ArchiveReader {
  struct archive* a = archive_read_new();
  ~ArchiveReader() { archive_read_free(a); }
};
struct ArchiveWriter {
  struct archive* a = archive_write_disk_new();
  ~ArchiveWriter() { archive_write_free(a); }
};

std::string archive_message(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// An entry's path as root/<path>, or an error when it would leave root.
// Sets skip for entries naming root itself ("./").
expected<std::string> entry_path(const char* raw, const fs::path& root, bool& skip) {
  if (!raw || !*raw)
    return make_error(Errc::invalid_argument, "entry without a usable path");
  fs::path p(raw);
  if (p.is_absolute())
    return make_error(Errc::invalid_argument, std::string("entry '") + raw + "' is absolute");
  for (const auto& part : p)
    if (part == "..")
      return make_error(Errc::invalid_argument,
                        std::string("entry '") + raw + "' leaves the sandbox");
  auto normal = p.lexically_normal();
  skip = normal.empty() || normal == ".";
  return (root / normal).string();
}

caf::error copy_entry_data(struct archive* in, struct archive* out, uint64_t& total,
                           const FetcherConfig& config) {
  for (;;) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(in, &buf, &size, &offset);
    if (r == ARCHIVE_EOF)
      return caf::none;
    if (r < ARCHIVE_WARN)
      return make_error(Errc::malformed, archive_message(in));
    total += size;
    if (total > config.extract_bytes_max)
      return make_error(Errc::oversized,
                        "over extract_bytes_max " + std::to_string(config.extract_bytes_max));
    if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
      return make_error(Errc::os_error, archive_message(out));
  }
}

// Writes one entry below root, or skips it when it names root itself.
caf::error extract_entry(struct archive* in, struct archive* out, struct archive_entry* entry,
                         const fs::path& root, uint64_t& total, const FetcherConfig& config) {
  auto type = archive_entry_filetype(entry);
  const char* raw = archive_entry_pathname(entry);
  if (!raw)
    raw = archive_entry_pathname_utf8(entry);
  if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
    return make_error(Errc::invalid_argument, std::string("entry '") + (raw ? raw : "?") +
                                                  "' is not a file, directory or link");
  bool skip = false;
  auto path = entry_path(raw, root, skip);
  if (!path)
    return path.error();
  if (skip)
    return caf::none;
  archive_entry_set_pathname(entry, path->c_str());
  if (const char* link = archive_entry_hardlink(entry)) {
    bool link_skip = false;
    auto target = entry_path(link, root, link_skip);
    if (!target)
      return target.error();
    archive_entry_set_hardlink(entry, target->c_str());
  }
  archive_entry_set_perm(entry, archive_entry_perm(entry) & 0777);
  if (archive_write_header(out, entry) < ARCHIVE_WARN)
    return make_error(Errc::invalid_argument, archive_message(out));
  if (type == AE_IFREG)
    if (auto err = copy_entry_data(in, out, total, config))
      return err;
  if (archive_write_finish_entry(out) < ARCHIVE_WARN)
    return make_error(Errc::os_error, archive_message(out));
  return caf::none;
}

expected<uint64_t> extract(const fs::path& archive, const fs::path& root,
                           const FetcherConfig& config) {
  ArchiveReader in;
  ArchiveWriter out;
  archive_read_support_filter_gzip(in.a);
  archive_read_support_filter_bzip2(in.a);
  archive_read_support_filter_xz(in.a);
  archive_read_support_format_tar(in.a);
  archive_read_support_format_gnutar(in.a);
  archive_read_support_format_zip(in.a);
  // Paths are made absolute below root after they are checked, so the
  // NOABSOLUTEPATHS flag cannot be used; SECURE_SYMLINKS refuses to write
  // through a symlink an earlier entry made.
  archive_write_disk_set_options(out.a, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  if (archive_read_open_filename(in.a, archive.c_str(), copy_buffer_bytes) != ARCHIVE_OK)
    return make_error(Errc::malformed, archive_message(in.a));
  uint64_t entries = 0;
  uint64_t total = 0;
  for (;;) {
    struct archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.a, &entry);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return make_error(Errc::malformed, archive_message(in.a));
    if (++entries > config.extract_entries_max)
      return make_error(Errc::oversized, "more than extract_entries_max " +
                                             std::to_string(config.extract_entries_max) +
                                             " entries");
    if (auto err = extract_entry(in.a, out.a, entry, root, total, config))
      return err;
  }
  if (archive_write_close(out.a) < ARCHIVE_WARN)
    return make_error(Errc::os_error, archive_message(out.a));
  return entries;
}

}  // namespace

// ---------------------------------------------------------------------------
// FetcherCache

std::string FetcherCache::key(const std::string& uri) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  EVP_Digest(uri.data(), uri.size(), md.data(), &size, EVP_sha256(), nullptr);
  constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(digits[md[i] >> 4]);
    hex.push_back(digits[md[i] & 0xf]);
  }
  return hex;
}

namespace {

bool is_key(const std::string& name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

int64_t mtime_ns(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

FetcherCache::FetcherCache(fs::path dir, uint64_t bytes_max)
    : dir_(std::move(dir)), bytes_max_(bytes_max) {
}

expected<std::unique_ptr<FetcherCache>> FetcherCache::open(fs::path dir, uint64_t bytes_max) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return make_os_error(ec.value(), "fetcher cache " + dir.string());
  std::unique_ptr<FetcherCache> cache(new FetcherCache(std::move(dir), bytes_max));
  if (auto err = cache->rebuild())
    return err;
  return cache;
}

caf::error FetcherCache::rebuild() {
  struct Found {
    int64_t stamp_ns;
    std::string key;
    uint64_t bytes;
  };
  std::vector<Found> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.starts_with(temp_prefix)) {
      ::unlink(it->path().c_str());  // an insert that never finished
      continue;
    }
    struct stat st {};
    if (!is_key(name) || ::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      continue;  // not ours
    found.push_back({mtime_ns(st), name, static_cast<uint64_t>(st.st_size)});
  }
  if (ec)
    return make_os_error(ec.value(), "fetcher cache " + dir_.string());
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return std::tie(a.stamp_ns, a.key) < std::tie(b.stamp_ns, b.key);
  });
  std::lock_guard lock(mutex_);
  for (auto& f : found) {
    lru_.push_back({f.key, f.bytes});
    index_[f.key] = std::prev(lru_.end());
    bytes_ += f.bytes;
    last_stamp_ns_ = std::max(last_stamp_ns_, f.stamp_ns);
  }
  evict_for(0);
  return caf::none;
}

void FetcherCache::evict_for(uint64_t bytes) {
  while (!lru_.empty() && bytes_ + bytes > bytes_max_) {
    auto& victim = lru_.front();
    ::unlink((dir_ / victim.key).c_str());
    bytes_ -= victim.bytes;
    index_.erase(victim.key);
    lru_.pop_front();
    ++counters_.evictions;
  }
}

void FetcherCache::stamp(int fd) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  last_stamp_ns_ = std::max<int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(), last_stamp_ns_ + 1);
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = last_stamp_ns_ / 1000000000;
  times[1].tv_nsec = last_stamp_ns_ % 1000000000;
  // Recency on disk only matters after a restart; a failure here costs at
  // most the order of that one entry then.
  (void)::futimens(fd, times);
}

expected<bool> FetcherCache::copy_out(const std::string& uri, const fs::path& dest) {
  auto k = key(uri);
  int fd = -1;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(k);
    if (it != index_.end()) {
      fd = ::open((dir_ / k).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {  // removed behind the cache's back: forget it
        bytes_ -= it->second->bytes;
        lru_.erase(it->second);
        index_.erase(it);
      } else {
        stamp(fd);
        lru_.splice(lru_.end(), lru_, it->second);
      }
    }
    ++(fd >= 0 ? counters_.hits : counters_.misses);
  }
  if (fd < 0)
    return false;
  Fd in{fd};
  Fd out{::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (out.fd < 0)
    return make_os_error(errno, "open(" + dest.string() + ")");
  auto copied = copy_fd(in.fd, out.fd, UINT64_MAX);
  if (!copied)
    return copied.error();
  return true;
}

expected<bool> FetcherCache::insert(const std::string& uri, const fs::path& source) {
  Fd in{::open(source.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0)
    return make_os_error(errno, "open(" + source.string() + ")");
  auto temp = TempFile::create(dir_);
  if (!temp)
    return temp.error();
  auto bytes = copy_fd(in.fd, temp->fd(), bytes_max_);
  if (!bytes && is(bytes.error(), Errc::oversized))
    return false;
  if (!bytes)
    return bytes.error();
  if (::fsync(temp->fd()) != 0)
    return make_os_error(errno, "fsync(" + temp->path().string() + ")");
  auto k = key(uri);
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(k); it != index_.end()) {  // replaced by the rename
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  evict_for(*bytes);
  stamp(temp->fd());
  if (auto err = temp->commit(dir_ / k, 0644))
    return err;
  lru_.push_back({k, *bytes});
  index_[k] = std::prev(lru_.end());
  bytes_ += *bytes;
  return true;
}

bool FetcherCache::contains(const std::string& uri) const {
  std::lock_guard lock(mutex_);
  return index_.count(key(uri)) > 0;
}

FetcherCache::Stats FetcherCache::stats() const {
  std::lock_guard lock(mutex_);
  auto s = counters_;
  s.entries = lru_.size();
  s.bytes = bytes_;
  return s;
}

// ---------------------------------------------------------------------------
// Fetcher

Fetcher::Fetcher(FetcherConfig config, FetcherCache* cache)
    : config_(std::move(config)), cache_(cache) {
}

expected<FetchedFile> Fetcher::fetch_one(const FetchUri& uri, const fs::path& root) const {
  auto context = "fetch " + uri.value;
  auto src = parse_uri(uri.value);
  if (!src)
    return with_context(src.error(), context);
  FetchedFile file;
  file.uri = uri.value;
  file.path = root / src->name;
  auto temp = TempFile::create(root);
  if (!temp)
    return with_context(temp.error(), context);
  // A local source is checked even when cached: the cache must not serve
  // what the allowed paths no longer allow. One that is allowed but cannot
  // be opened (gone since it was cached) may still come from the cache.
  std::optional<Fd> local;
  caf::error unopened;
  if (!src->http) {
    auto opened = open_allowed(src->path, config_.allowed_paths);
    if (!opened && is(opened.error(), Errc::invalid_argument))
      return with_context(opened.error(), context);
    if (opened)
      local.emplace(*opened);
    else
      unopened = opened.error();
  }
  bool use_cache = uri.cache && cache_;
  if (use_cache) {
    auto hit = cache_->copy_out(uri.value, temp->path());
    if (!hit)
      return with_context(hit.error(), context);
    file.from_cache = *hit;
  }
  mode_t mode = 0644;
  if (!file.from_cache && unopened)
    return with_context(unopened, context);
  if (!file.from_cache) {
    auto bytes = src->http ? download(*src, temp->fd(), config_)
                           : copy_local(*local, temp->fd(), config_, mode);
    if (!bytes)
      return with_context(bytes.error(), context);
  }
  if (auto err = temp->commit(file.path, uri.executable ? 0755 : mode))
    return with_context(err, context);
  std::error_code ec;
  file.bytes = fs::file_size(file.path, ec);
  if (ec)
    return make_os_error(ec.value(), context);
  if (use_cache && !file.from_cache) {
    // The task can run without the cached copy; a full or broken cache
    // must not fail it.
    if (auto cached = cache_->insert(uri.value, file.path); !cached)
      log().warn("fetcher: not caching {}: {}", uri.value, what(cached.error()));
  }
  if (uri.extract && !uri.executable && is_archive(src->name)) {
    auto entries = extract(file.path, root, config_);
    if (!entries)
      return with_context(entries.error(), "extract " + src->name);
    file.extracted = true;
    file.entries = *entries;
  }
  return file;
}

expected<FetchReport> Fetcher::fetch(const std::vector<FetchUri>& uris,
                                     const fs::path& sandbox) const {
  std::error_code ec;
  auto root = fs::canonical(sandbox, ec);  // no symlinks: SECURE_SYMLINKS checks every component
  if (ec)
    return make_os_error(ec.value(), "sandbox " + sandbox.string());
  FetchReport report;
  for (const auto& uri : uris) {
    auto file = fetch_one(uri, root);
    if (!file)
      return file.error();
    report.files.push_back(std::move(*file));
  }
  return report;
}

}  // namespace tessera
