#pragma once
// Who a process runs as: a user's ids, groups and home, read from the
// system's user database (NSS: /etc/passwd, /etc/group, or LDAP and the
// like). Looked up in the parent, never in a child between fork and exec
// (NSS takes locks and loads modules: neither is safe there); the launcher's
// child only makes the setgroups, setgid and setuid system calls
// (ProcessSpec::user).
//
// Thread-safety: both functions are reentrant (getpwnam_r, getgrouplist)
// and may be called from any thread. They may block as long as NSS does
// (a remote directory).

#include "runtime/error.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

struct UserIdentity {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;              // the primary group
  std::vector<uint32_t> groups;  // supplementary groups, the primary one included
  std::string home;              // HOME, as the user database says
  std::string shell;
};

// Groups a user may be in, at most (getgrouplist's answer beyond it is an
// error, not a truncation that would silently drop a group).
constexpr size_t user_groups_max = 65536;

// The user named name. A name the database does not know:
// Errc::invalid_argument "user 'NAME' does not exist"; a lookup that fails
// (the database is unreachable): Errc::os_error.
expected<UserIdentity> lookup_user(const std::string& name);

// The user this process runs as (its effective uid).
expected<UserIdentity> effective_user();

}  // namespace tessera
