#!/usr/bin/env bash
# Installs the Debian packages Tessera builds and tests with. Idempotent: when
# every package is present it prints nothing and exits 0.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libcaf-dev libssl-dev
  capnproto libcapnp-dev
  libuv1-dev libsqlite3-dev
  libzookeeper-mt-dev zookeeper default-jre-headless
  libcpp-httplib-dev libarchive-dev liburiparser-dev
  catch2
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libboost1.81-dev prometheus-cpp-dev libhowardhinnant-date-dev tzdata
  libldns-dev bind9-dnsutils dnsperf
  chromium chromium-driver python3-selenium
  clang-format openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
