#include "runtime/os_user.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>

namespace tessera {

namespace {

// A passwd entry's strings live in the caller's buffer, grown on ERANGE up
// to this (glibc's entries are far smaller; a bound keeps a broken NSS
// module from taking all memory).
constexpr size_t passwd_buffer_bytes_max = size_t{1} << 20;

// by_name: getpwnam_r(name); otherwise getpwuid_r(uid).
expected<UserIdentity> lookup(const std::string& name, uid_t uid, bool by_name) {
  auto who = by_name ? "user '" + name + "'" : "uid " + std::to_string(uid);
  long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(hint > 0 ? static_cast<size_t>(hint) : 4096);
  passwd entry{};
  passwd* found = nullptr;
  int rc = 0;
  for (;;) {
    rc = by_name ? ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)
                 : ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
    if (rc != ERANGE || buffer.size() >= passwd_buffer_bytes_max)
      break;
    buffer.resize(buffer.size() * 2);
  }
  // glibc answers a missing entry with 0 and no result; some modules with
  // ENOENT, ESRCH, EBADF or EPERM (getpwnam_r(3)).
  bool missing = rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM;
  if (found == nullptr && missing)
    return make_error(Errc::invalid_argument, who + " does not exist");
  if (found == nullptr)
    return make_os_error(rc, "looking up " + who);
  UserIdentity out;
  out.name = entry.pw_name;
  out.uid = entry.pw_uid;
  out.gid = entry.pw_gid;
  out.home = entry.pw_dir != nullptr ? entry.pw_dir : "";
  out.shell = entry.pw_shell != nullptr ? entry.pw_shell : "";
  // getgrouplist() says how many groups there are when the array is too small.
  std::vector<gid_t> groups(64);
  for (;;) {
    int count = static_cast<int>(groups.size());
    if (::getgrouplist(out.name.c_str(), out.gid, groups.data(), &count) >= 0) {
      groups.resize(static_cast<size_t>(count));
      break;
    }
    if (count <= static_cast<int>(groups.size()) || static_cast<size_t>(count) > user_groups_max)
      return make_error(Errc::os_error, "looking up the groups of user '" + out.name +
                                            "': more than " + std::to_string(user_groups_max) +
                                            " groups, or the group database failed");
    groups.resize(static_cast<size_t>(count));
  }
  out.groups.assign(groups.begin(), groups.end());
  return out;
}

}  // namespace

expected<UserIdentity> lookup_user(const std::string& name) {
  if (name.empty())
    return make_error(Errc::invalid_argument, "empty user name");
  return lookup(name, 0, true);
}

expected<UserIdentity> effective_user() {
  return lookup({}, ::geteuid(), false);
}

}  // namespace tessera
