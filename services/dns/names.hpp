#pragma once
// DNS names for what runs on the cluster, after Mesos-DNS's naming:
//
//   TASK.FRAMEWORK.DOMAIN.            A     each listed instance's agent
//   _TASK._tcp.FRAMEWORK.DOMAIN.      SRV   each allocated port (also _udp)
//   APP-PATH-REVERSED.apps.DOMAIN.    A     tasks of the apps framework whose
//   _APP-PATH-REVERSED._tcp.apps...   SRV   name is an app id ("/shop/web"
//                                           is web.shop.apps.DOMAIN.)
//   AGENT-ID.agents.DOMAIN.           A     the agent
//   leader.DOMAIN. master.DOMAIN.     A     the leading master
//   _leader._tcp.DOMAIN.              SRV   its port
//
// Sanitising (what Mesos-DNS does to its labels): lower case; every
// character outside [a-z0-9-] becomes '-'; leading and trailing '-' go; a
// label is cut to 63 characters, a name to 253. A task name is one label (its
// dots become '-'); a framework name may hold dots and then spans several
// labels. A name that sanitises to nothing has no record.
//
// Names here are relative to the domain and carry no trailing dot
// ("web.shop.apps"); the domain is kept as "tessera." (lower case, one
// trailing dot).

#include <optional>
#include <string>
#include <string_view>

namespace tessera::dns {

inline constexpr size_t label_chars_max = 63;
inline constexpr size_t name_chars_max = 253;  // without the trailing dot

// One label: lower case, [a-z0-9-], no '-' at either end, at most 63
// characters. Empty when nothing valid is left.
std::string sanitize_label(std::string_view text);

// Dot-separated labels, each sanitised, empty ones dropped ("My.Fw" is
// "my.fw"). Empty when none is left.
std::string sanitize_labels(std::string_view text);

// "tessera", "Tessera." -> "tessera."; errors (nullopt) for an empty or
// invalid domain.
std::optional<std::string> normalize_domain(std::string_view text);

// The app id "/shop/web" as "web.shop"; nullopt when text is not an
// absolute app path or sanitises to nothing.
std::optional<std::string> reversed_app_path(std::string_view text);

// Lower-cases ASCII in place.
void lower_ascii(std::string& text);

}  // namespace tessera::dns
