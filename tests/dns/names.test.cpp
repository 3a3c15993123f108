// Names as Mesos-DNS makes them: sanitised labels, app paths reversed.

#include "services/dns/names.hpp"

#include <catch2/catch.hpp>

using namespace tessera::dns;

TEST_CASE(
    "dns names: a label is lower case with invalid characters as '-' and no '-' at its ends") {
  CHECK(sanitize_label("Web_Server") == "web-server");
  CHECK(sanitize_label("a.b") == "a-b");
  CHECK(sanitize_label("--x--") == "x");
  CHECK(sanitize_label("___") == "");
  CHECK(sanitize_label("ünï") == "n");
  CHECK(sanitize_label(std::string(100, 'a')).size() == label_chars_max);
  // Cut to 63, then no '-' left at the end.
  CHECK(sanitize_label(std::string(62, 'a') + "_b") == std::string(62, 'a'));
}

TEST_CASE("dns names: a framework name keeps its dots as separate labels") {
  CHECK(sanitize_labels("My.Framework") == "my.framework");
  CHECK(sanitize_labels("a..b.") == "a.b");
  CHECK(sanitize_labels("tessera-apps") == "tessera-apps");
  CHECK(sanitize_labels("..") == "");
}

TEST_CASE("dns names: an app path is reversed, each part a label") {
  CHECK(reversed_app_path("/shop/web") == "web.shop");
  CHECK(reversed_app_path("/Shop/Web_1") == "web-1.shop");
  CHECK(reversed_app_path("/a//b/") == "b.a");
  CHECK_FALSE(reversed_app_path("shop/web"));
  CHECK_FALSE(reversed_app_path("/"));
  CHECK_FALSE(reversed_app_path("/__"));
}

TEST_CASE("dns names: a domain is normalised to lower case with one trailing dot, or refused") {
  CHECK(normalize_domain("tessera") == "tessera.");
  CHECK(normalize_domain("Tessera.") == "tessera.");
  CHECK(normalize_domain("dc1.tessera") == "dc1.tessera.");
  CHECK_FALSE(normalize_domain(""));
  CHECK_FALSE(normalize_domain("."));
  CHECK_FALSE(normalize_domain("bad_domain"));
}
