// Sandbox files: listing and reading inside a task's sandbox on a real
// directory tree, against what an untrusted task can plant there (symlinks
// out, symlinks in, a FIFO, a directory swapped for a symlink). Every case
// runs under openat2, under the fallback walker and under the automatic
// choice, and one case checks that the two resolvers answer alike.

#include "services/agent/sandbox_files.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace tessera;
using detail::SandboxResolver;
namespace fs = std::filesystem;

namespace Catch {
template <>
struct StringMaker<SandboxFileError> {
  static std::string convert(SandboxFileError kind) { return to_string(kind); }
};
}  // namespace Catch

namespace {

const char* name_of(SandboxResolver resolver) {
  switch (resolver) {
    case SandboxResolver::automatic:
      return "automatic";
    case SandboxResolver::openat2:
      return "openat2";
    case SandboxResolver::walk:
      return "walk";
  }
  return "?";
}

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

// <tmp>/secret beside <tmp>/sandbox/, which holds what a task could make:
//   stdout, sub/inner.txt, sub/deeper/, a FIFO, and symlinks to /etc/passwd,
//   to /, to ../.. and ../secret (out), to stdout and sub (in).
struct Sandbox {
  testing::TempDir tmp;
  fs::path dir = tmp.path() / "sandbox";
  std::string root = dir.string();

  Sandbox() {
    fs::create_directories(dir / "sub" / "deeper");
    write_file(tmp.path() / "secret", "outside the sandbox\n");
    write_file(dir / "stdout", "0123456789abcdef");
    write_file(dir / "sub" / "inner.txt", "inner\n");
    fs::create_symlink("/etc/passwd", dir / "link_passwd");
    fs::create_directory_symlink("/", dir / "link_root");
    fs::create_directory_symlink("../..", dir / "link_up");
    fs::create_symlink("../secret", dir / "link_outside");
    fs::create_symlink("stdout", dir / "link_sibling");
    fs::create_directory_symlink("sub", dir / "link_subdir");
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  }
};

// One call's answer: the kind, whether it is a refusal (Errc::invalid_argument)
// and the message.
struct Outcome {
  SandboxFileError kind = SandboxFileError::none;
  bool refused = false;
  std::string message;
};

template <class T>
Outcome outcome_of(const expected<T>& result, SandboxFileError why) {
  Outcome out;
  out.kind = why;
  if (!result) {
    out.refused = is(result.error(), Errc::invalid_argument);
    out.message = what(result.error());
  }
  // `why` is none exactly when the call succeeded.
  CHECK(static_cast<bool>(result) == (why == SandboxFileError::none));
  return out;
}

Outcome try_read(SandboxResolver resolver, const std::string& root, const std::string& path) {
  auto why = SandboxFileError::io;
  auto chunk = detail::read_sandbox_file(resolver, root, path, 0, 64, &why);
  return outcome_of(chunk, why);
}

Outcome try_list(SandboxResolver resolver, const std::string& root, const std::string& path) {
  auto why = SandboxFileError::io;
  auto files = detail::list_sandbox_files(resolver, root, path, 100, &why);
  return outcome_of(files, why);
}

Outcome try_size(SandboxResolver resolver, const std::string& root, const std::string& path) {
  auto why = SandboxFileError::io;
  auto size = detail::sandbox_file_size(resolver, root, path, &why);
  return outcome_of(size, why);
}

size_t open_fd_count() {
  auto fds = fs::directory_iterator("/proc/self/fd");
  return static_cast<size_t>(std::distance(fds, fs::directory_iterator{}));
}

bool openat2_available(const std::string& root) {
  auto why = SandboxFileError::none;
  auto size = detail::sandbox_file_size(SandboxResolver::openat2, root, "stdout", &why);
  if (!size && what(size.error()).find("not implemented") != std::string::npos) {
    WARN("this kernel has no openat2: its cases are skipped");
    return false;
  }
  return true;
}

// The resolvers to run a case under; openat2 only where the kernel has it.
SandboxResolver pick_resolver() {
  return GENERATE(SandboxResolver::openat2, SandboxResolver::walk, SandboxResolver::automatic);
}

std::string owner_name(uid_t uid) {
  const passwd* entry = ::getpwuid(uid);
  return entry ? entry->pw_name : std::to_string(uid);
}

void require_refused_outside(const Outcome& out, const std::string& why_text) {
  CHECK(out.kind == SandboxFileError::outside_sandbox);
  CHECK(out.refused);
  CHECK(out.message.find("refused") != std::string::npos);
  CHECK(out.message.find(why_text) != std::string::npos);
}

}  // namespace

TEST_CASE("sandbox files: the root and a subdirectory are listed, links not followed",
          "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  timespec times[2] = {{1'600'000'000, 0}, {1'600'000'000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (box.dir / "stdout").c_str(), times, 0) == 0);

  auto why = SandboxFileError::io;
  auto root = detail::list_sandbox_files(resolver, box.root, "", 100, &why);
  REQUIRE(root);
  CHECK(why == SandboxFileError::none);
  std::vector<std::string> names;
  for (const auto& f : *root)
    names.push_back(f.name);
  CHECK(names == std::vector<std::string>{"fifo", "link_outside", "link_passwd", "link_root",
                                          "link_sibling", "link_subdir", "link_up", "stdout",
                                          "sub"});
  auto entry = [&](const std::string& name) {
    auto it = std::find_if(root->begin(), root->end(),
                           [&](const SandboxFile& f) { return f.name == name; });
    REQUIRE(it != root->end());
    return *it;
  };
  auto out = entry("stdout");
  CHECK(out.path == "stdout");
  CHECK_FALSE(out.directory);
  CHECK_FALSE(out.symlink);
  CHECK(S_ISREG(out.mode));
  CHECK(out.size_bytes == 16);
  CHECK(out.mtime_s == 1'600'000'000);
  CHECK(out.nlink == 1);
  CHECK(out.uid == owner_name(::getuid()));
  CHECK_FALSE(out.gid.empty());
  auto sub = entry("sub");
  CHECK(sub.directory);
  CHECK(S_ISDIR(sub.mode));
  CHECK(sub.nlink == 3);  // ".", "sub" and deeper's ".."
  // Links are listed as links: their own size (the target's length), not followed.
  auto passwd = entry("link_passwd");
  CHECK(passwd.symlink);
  CHECK_FALSE(passwd.directory);
  CHECK(S_ISLNK(passwd.mode));
  CHECK(passwd.size_bytes == std::string("/etc/passwd").size());
  auto slash = entry("link_root");
  CHECK(slash.symlink);
  CHECK_FALSE(slash.directory);
  CHECK(slash.size_bytes == 1);
  CHECK(S_ISFIFO(entry("fifo").mode));

  auto dot = detail::list_sandbox_files(resolver, box.root, ".", 100, nullptr);
  REQUIRE(dot);
  CHECK(dot->size() == root->size());

  for (std::string path : {"sub", "./sub/", "sub//"}) {
    INFO("path: " << path);
    auto files = detail::list_sandbox_files(resolver, box.root, path, 100, nullptr);
    REQUIRE(files);
    REQUIRE(files->size() == 2);
    CHECK((*files)[0].path == "sub/deeper");
    CHECK((*files)[0].directory);
    CHECK((*files)[1].path == "sub/inner.txt");
    CHECK((*files)[1].size_bytes == 6);
  }
  auto empty = detail::list_sandbox_files(resolver, box.root, "sub/deeper", 100, nullptr);
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("sandbox files: reads honour offset and length and report the size", "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  auto read = [&](const std::string& path, uint64_t offset, uint64_t length) {
    auto chunk = detail::read_sandbox_file(resolver, box.root, path, offset, length, nullptr);
    REQUIRE(chunk);
    CHECK(chunk->offset == offset);
    CHECK(chunk->file_size_bytes == 16);
    return chunk->data;
  };
  CHECK(read("stdout", 0, 100) == "0123456789abcdef");
  CHECK(read("stdout", 4, 6) == "456789");
  CHECK(read("./stdout", 10, 100) == "abcdef");
  CHECK(read("stdout", 3, 0).empty());
  // At or past the end: no data, but the size, so a follower knows where it is.
  CHECK(read("stdout", 16, 10).empty());
  CHECK(read("stdout", 1000, 10).empty());
  CHECK(read("stdout", UINT64_MAX, 10).empty());

  auto inner = detail::read_sandbox_file(resolver, box.root, "sub/inner.txt", 0, 100, nullptr);
  REQUIRE(inner);
  CHECK(inner->data == "inner\n");

  auto size = detail::sandbox_file_size(resolver, box.root, "stdout", nullptr);
  REQUIRE(size);
  CHECK(*size == 16);
  std::ofstream(box.dir / "stdout", std::ios::app) << "more";
  size = detail::sandbox_file_size(resolver, box.root, "stdout", nullptr);
  REQUIRE(size);
  CHECK(*size == 20);
}

TEST_CASE("sandbox files: a 20 MiB read is clamped to 16 MiB", "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  constexpr uint64_t twenty_mib = uint64_t{20} << 20;
  write_file(box.dir / "big", "");
  fs::resize_file(box.dir / "big", twenty_mib + 1);  // sparse: reads as zeros
  auto chunk = detail::read_sandbox_file(resolver, box.root, "big", 0, twenty_mib, nullptr);
  REQUIRE(chunk);
  CHECK(sandbox_read_bytes_max == uint64_t{16} << 20);
  CHECK(chunk->data.size() == sandbox_read_bytes_max);
  CHECK(chunk->file_size_bytes == twenty_mib + 1);
  auto tail =
      detail::read_sandbox_file(resolver, box.root, "big", twenty_mib - 4, twenty_mib, nullptr);
  REQUIRE(tail);
  CHECK(tail->data.size() == 5);
}

TEST_CASE("sandbox files: entries_max bounds a listing", "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  fs::create_directory(box.dir / "many");
  for (int i = 0; i < 50; ++i)
    write_file(box.dir / "many" / ("f" + std::to_string(i)), "x");
  auto all = detail::list_sandbox_files(resolver, box.root, "many", 1000, nullptr);
  REQUIRE(all);
  CHECK(all->size() == 50);
  auto some = detail::list_sandbox_files(resolver, box.root, "many", 10, nullptr);
  REQUIRE(some);
  CHECK(some->size() == 10);
  CHECK(std::is_sorted(some->begin(), some->end(),
                       [](const auto& a, const auto& b) { return a.name < b.name; }));
  auto none = detail::list_sandbox_files(resolver, box.root, "many", 0, nullptr);
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("sandbox files: missing files, directories and files used the wrong way",
          "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  for (auto out :
       {try_read(resolver, box.root, "missing"), try_list(resolver, box.root, "sub/missing/x"),
        try_size(resolver, box.root, "sub/missing")}) {
    CHECK(out.kind == SandboxFileError::not_found);
    CHECK_FALSE(out.refused);
    CHECK(out.message.find("No such file") != std::string::npos);
  }
  for (auto out : {try_read(resolver, box.root, "sub"), try_read(resolver, box.root, ""),
                   try_size(resolver, box.root, "sub/deeper")}) {
    CHECK(out.kind == SandboxFileError::not_a_file);
    CHECK(out.refused);
    CHECK(out.message.find("is a directory") != std::string::npos);
  }
  for (auto out : {try_list(resolver, box.root, "stdout"), try_read(resolver, box.root, "stdout/x"),
                   try_list(resolver, box.root, "fifo")}) {
    CHECK(out.kind == SandboxFileError::not_a_directory);
    CHECK(out.refused);
  }
  auto gone = try_list(resolver, (box.tmp.path() / "no-such-sandbox").string(), "");
  CHECK(gone.kind == SandboxFileError::io);
  CHECK(gone.message.find("sandbox root") != std::string::npos);
}

TEST_CASE("sandbox files: absolute paths, '..' and malformed paths are refused",
          "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  // <tmp>/secret exists: each of these would reach it, or /etc/passwd, if
  // the checks were missing, so "not found" would be a failure too.
  for (std::string path : {"../secret", "sub/../../secret", "..", "./../secret"}) {
    INFO("path: " << path);
    require_refused_outside(try_read(resolver, box.root, path), "'..'");
    require_refused_outside(try_size(resolver, box.root, path), "'..'");
  }
  require_refused_outside(try_list(resolver, box.root, ".."), "'..'");
  // ".." is refused even where it would stay inside: no path arithmetic.
  require_refused_outside(try_read(resolver, box.root, "sub/../stdout"), "'..'");
  require_refused_outside(try_read(resolver, box.root, "/etc/passwd"), "leaves the sandbox");
  require_refused_outside(try_list(resolver, box.root, "/"), "leaves the sandbox");
  require_refused_outside(try_read(resolver, box.root, box.root + "/stdout"), "leaves the sandbox");

  const char with_nul[] = "stdout\0/../../secret";
  for (auto path : {std::string(with_nul, sizeof with_nul - 1), std::string(5000, 'a'),
                    "sub/" + std::string(300, 'b')}) {
    auto out = try_read(resolver, box.root, path);
    CHECK(out.kind == SandboxFileError::invalid_path);
    CHECK(out.refused);
    CHECK(out.message.find("refused") != std::string::npos);
    CHECK(out.message.size() < 400);  // a long path is cut in the message
  }
}

TEST_CASE("sandbox files: symlinks planted by the task are never followed", "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  // Out of the sandbox: to a file, to /, to ../.., to ../secret.
  require_refused_outside(try_read(resolver, box.root, "link_passwd"), "symlink");
  require_refused_outside(try_size(resolver, box.root, "link_passwd"), "symlink");
  require_refused_outside(try_read(resolver, box.root, "link_root/etc/passwd"), "symlink");
  require_refused_outside(try_size(resolver, box.root, "link_root/etc/passwd"), "symlink");
  require_refused_outside(try_list(resolver, box.root, "link_root"), "symlink");
  require_refused_outside(try_list(resolver, box.root, "link_root/etc"), "symlink");
  require_refused_outside(try_list(resolver, box.root, "link_up"), "symlink");
  require_refused_outside(try_read(resolver, box.root, "link_up/secret"), "symlink");
  require_refused_outside(try_read(resolver, box.root, "link_outside"), "symlink");
  // Inside the sandbox too: the documented rule, no exceptions.
  require_refused_outside(try_read(resolver, box.root, "link_sibling"), "symlink");
  require_refused_outside(try_read(resolver, box.root, "link_subdir/inner.txt"), "symlink");
  require_refused_outside(try_list(resolver, box.root, "link_subdir"), "symlink");
  require_refused_outside(try_list(resolver, box.root, "link_subdir/deeper"), "symlink");
  // The targets themselves stay readable by their own paths.
  CHECK(try_read(resolver, box.root, "stdout").kind == SandboxFileError::none);
  CHECK(try_read(resolver, box.root, "sub/inner.txt").kind == SandboxFileError::none);
}

TEST_CASE("sandbox files: a directory swapped for a symlink after listing is refused",
          "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  REQUIRE(try_list(resolver, box.root, "sub").kind == SandboxFileError::none);
  REQUIRE(try_read(resolver, box.root, "sub/inner.txt").kind == SandboxFileError::none);

  fs::rename(box.dir / "sub", box.dir / "sub_moved");
  SECTION("to /") {
    fs::create_directory_symlink("/", box.dir / "sub");
    require_refused_outside(try_list(resolver, box.root, "sub"), "symlink");
    require_refused_outside(try_list(resolver, box.root, "sub/etc"), "symlink");
    require_refused_outside(try_read(resolver, box.root, "sub/etc/passwd"), "symlink");
  }
  SECTION("to where it went, inside the sandbox") {
    fs::create_directory_symlink("sub_moved", box.dir / "sub");
    require_refused_outside(try_list(resolver, box.root, "sub"), "symlink");
    require_refused_outside(try_read(resolver, box.root, "sub/inner.txt"), "symlink");
    CHECK(try_read(resolver, box.root, "sub_moved/inner.txt").kind == SandboxFileError::none);
  }
}

TEST_CASE("sandbox files: a FIFO planted by the task does not hang a read", "[sandbox_files]") {
  auto resolver = pick_resolver();
  INFO("resolver: " << name_of(resolver));
  Sandbox box;
  if (resolver == SandboxResolver::openat2 && !openat2_available(box.root))
    return;
  // Were the read to block in open(), this opens the FIFO's other end after
  // 5 s to set it free, and the elapsed time fails the case instead of a hang.
  std::atomic<bool> done{false};
  auto fifo = box.dir / "fifo";
  std::thread rescuer([&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!done) {
      int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0)
        ::close(fd);
    }
  });
  auto start = std::chrono::steady_clock::now();
  auto read = try_read(resolver, box.root, "fifo");
  auto size = try_size(resolver, box.root, "fifo");
  auto elapsed = std::chrono::steady_clock::now() - start;
  done = true;
  rescuer.join();
  CHECK(elapsed < std::chrono::seconds(2));
  for (const auto& out : {read, size}) {
    CHECK(out.kind == SandboxFileError::not_a_file);
    CHECK(out.refused);
    CHECK(out.message.find("not a regular file") != std::string::npos);
  }
}

TEST_CASE("sandbox files: openat2 and the walker give the same answers", "[sandbox_files]") {
  Sandbox box;
  if (!openat2_available(box.root))
    return;
  fs::create_directory_symlink("/", box.dir / "sub" / "deeper" / "escape");
  const std::vector<std::string> paths = {"",
                                          ".",
                                          "stdout",
                                          "./stdout",
                                          "sub",
                                          "sub/",
                                          "sub/deeper",
                                          "sub/inner.txt",
                                          "sub/inner.txt/x",
                                          "missing",
                                          "sub/nope/x",
                                          "fifo",
                                          "link_passwd",
                                          "link_root",
                                          "link_root/etc",
                                          "link_up",
                                          "link_up/x",
                                          "link_outside",
                                          "link_sibling",
                                          "link_subdir",
                                          "../secret",
                                          "/etc/passwd",
                                          "sub/../stdout",
                                          "sub/deeper/escape",
                                          "sub/deeper/escape/etc",
                                          "stdout/..",
                                          "a\nb",
                                          std::string(300, 'c')};
  auto fds_before = open_fd_count();
  using Try = Outcome (*)(SandboxResolver, const std::string&, const std::string&);
  for (Try call : {Try{try_read}, Try{try_list}, Try{try_size}}) {
    for (const auto& path : paths) {
      INFO("path: " << path);
      auto a = call(SandboxResolver::openat2, box.root, path);
      auto b = call(SandboxResolver::walk, box.root, path);
      CHECK(a.kind == b.kind);
      CHECK(a.refused == b.refused);
      CHECK(a.message == b.message);
    }
  }
  CHECK(open_fd_count() == fds_before);  // every failure path closes what it opened
}
