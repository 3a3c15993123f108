#!/usr/bin/env bash
# Builds and tears down a "lab" of Linux network namespaces for multi-host
# tests on one machine: N hosts on one switched /24, reachable from the root
# namespace too. Root only; needs iproute2 (`ip`) and nothing else. A lab is
# named by PREFIX ([a-z0-9]{1,8}, e.g. ts1234); everything it creates is
# named after it, so labs with different prefixes and subnets coexist.
#
#   tools/netns.sh up PREFIX N [--subnet A.B.C]
#       Namespace PREFIX-sw holds a bridge br0; namespaces PREFIX-h1..PREFIX-hN
#       each have eth0 = A.B.C.I/24 (I the host number), whose veth peer vI is
#       a port of br0. The root namespace joins the bridge through a veth
#       PREFIX-r = A.B.C.254/24 (peer vr on br0), so a test process in it
#       reaches every host. Default subnet 10.213.0; N is 1..253. Refuses if
#       a namespace PREFIX-* or the link PREFIX-r exists, or the subnet is
#       already on an interface of the root namespace. Prints one line per
#       host, "hI A.B.C.I", and nothing else. A failure midway undoes it all.
#   tools/netns.sh down PREFIX
#       Deletes the root link PREFIX-r and every namespace PREFIX-*, after a
#       SIGKILL (by pid, from `ip netns pids`) of any process still in one,
#       which it reports on stderr. Exits 0 when there is nothing to delete.
#   tools/netns.sh cut PREFIX I  |  heal PREFIX I
#       Sets the switch-side link vI down / up: host I loses / regains every
#       peer. I may be r: the root namespace's link.
#   tools/netns.sh block PREFIX I J  |  unblock PREFIX I J
#       Partitions hosts I and J from each other only, both ways: a blackhole
#       route to J's address in I's namespace and to I's in J's (unblock
#       deletes them; both are idempotent). One of I, J may be r (the root
#       end, .254): that route is then added in the host's namespace only,
#       never in the root's, so the block is one-sided: packets from the root
#       still reach the host, but nothing it sends (replies included) gets
#       back; TCP in either direction cannot connect, ping fails.
#   tools/netns.sh exec PREFIX I CMD...
#       Runs CMD in host I's namespace: `exec ip netns exec PREFIX-hI CMD...`,
#       so the pid a caller starts is CMD's own.
#   tools/netns.sh addr PREFIX I
#       Prints host I's address (A.B.C.I, read from its eth0); I may be r.
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: tools/netns.sh up PREFIX N [--subnet A.B.C] | down PREFIX
         | cut PREFIX I | heal PREFIX I | block PREFIX I J | unblock PREFIX I J
         | exec PREFIX I CMD... | addr PREFIX I
       (PREFIX is [a-z0-9]{1,8}; I, J are host numbers, or r for the root end)
EOF
  exit 2
}

die() {
  echo "netns.sh: $*" >&2
  exit 1
}

check_prefix() {
  [[ $1 =~ ^[a-z0-9]{1,8}$ ]] || die "bad prefix '$1': want [a-z0-9]{1,8}"
}

# The lab's namespaces, one a line (none: no output).
lab_namespaces() {
  ip netns list | awk -v p="$1-" 'index($1, p) == 1 { print $1 }'
}

ns_exists() {
  ip netns list | awk -v n="$1" '$1 == n { found = 1 } END { exit !found }'
}

# Checks that I names host I (or r) of lab PREFIX, and that it exists.
check_member() {
  local prefix=$1 i=$2
  if [ "$i" = r ]; then
    ip link show "$prefix-r" >/dev/null 2>&1 || die "lab $prefix has no root link $prefix-r"
  else
    [[ $i =~ ^[1-9][0-9]*$ ]] || die "bad host '$i': want a host number or r"
    ns_exists "$prefix-h$i" || die "lab $prefix has no host $i (namespace $prefix-h$i)"
  fi
}

# Prints the IPv4 address of host I (or r) of lab PREFIX.
addr_of() {
  local prefix=$1 i=$2 a
  check_member "$prefix" "$i"
  if [ "$i" = r ]; then
    a=$(ip -4 -o addr show dev "$prefix-r" | awk '{ split($4, x, "/"); print x[1]; exit }')
  else
    a=$(ip -n "$prefix-h$i" -4 -o addr show dev eth0 | awk '{ split($4, x, "/"); print x[1]; exit }')
  fi
  [ -n "$a" ] || die "host $i of lab $prefix has no IPv4 address"
  echo "$a"
}

# Deletes whatever exists of lab PREFIX. Returns non-zero if something could
# not be deleted.
teardown() {
  local prefix=$1 rc=0 ns pids
  # The root link first: deleting a namespace frees its links asynchronously,
  # and PREFIX-r must be gone when this returns.
  if ip link show "$prefix-r" >/dev/null 2>&1; then
    ip link delete "$prefix-r" || rc=1
  fi
  for ns in $(lab_namespaces "$prefix"); do
    pids=$(ip netns pids "$ns" 2>/dev/null | grep -vx "$$" | paste -sd ' ' || true)
    if [ -n "$pids" ]; then
      echo "netns.sh: killing processes still in $ns (SIGKILL): $pids" >&2
      # shellcheck disable=SC2086 # one pid a word
      kill -9 $pids 2>/dev/null || true
      for _ in $(seq 1 50); do
        [ -z "$(ip netns pids "$ns" 2>/dev/null | grep -vx "$$" || true)" ] && break
        sleep 0.1
      done
    fi
    ip netns delete "$ns" || rc=1
  done
  return $rc
}

# Runs one step of `up`; on failure says which and fails (the EXIT trap then
# undoes the lab).
step() {
  local out
  if ! out=$("$@" 2>&1); then
    echo "netns.sh: '$*' failed: $out" >&2
    return 1
  fi
}

up() {
  [ $# -ge 2 ] || usage
  local prefix=$1 n=$2 subnet=10.213.0
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --subnet) [ $# -ge 2 ] || usage; subnet=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  check_prefix "$prefix"
  if ! [[ $n =~ ^[1-9][0-9]{0,2}$ ]] || [ "$n" -gt 253 ]; then
    die "bad host count '$n': want 1..253"
  fi
  local o
  [[ $subnet =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "bad subnet '$subnet': want A.B.C"
  for o in ${subnet//./ }; do
    [ "$((10#$o))" -le 255 ] || die "bad subnet '$subnet': want A.B.C"
  done
  local existing
  existing=$(lab_namespaces "$prefix" | paste -sd ' ')
  [ -z "$existing" ] || die "lab $prefix exists already (namespaces: $existing); tools/netns.sh down $prefix removes it"
  ! ip link show "$prefix-r" >/dev/null 2>&1 || die "link $prefix-r exists already; tools/netns.sh down $prefix removes it"
  [ -z "$(ip -4 -o addr show to "$subnet.0/24")" ] \
    || die "subnet $subnet.0/24 is in use in the root namespace (another lab?); pick another with --subnet"

  # From here on, whatever fails (or interrupts) undoes the whole lab: nothing
  # named PREFIX-* existed before, so everything that does is ours. (Globals:
  # the trap may run outside this function.)
  up_prefix=$prefix up_done=0
  trap 'rc=$?; if [ "$up_done" != 1 ]; then
          teardown "$up_prefix" || true
          echo "netns.sh: up $up_prefix failed; undid what it had created" >&2
          exit $((rc ? rc : 1))
        fi' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local sw="$prefix-sw" h i
  step ip netns add "$sw"
  step ip -n "$sw" link set lo up
  step ip -n "$sw" link add br0 type bridge
  step ip -n "$sw" link set br0 up
  for i in $(seq 1 "$n"); do
    h="$prefix-h$i"
    step ip netns add "$h"
    step ip -n "$h" link set lo up
    step ip -n "$h" link add eth0 type veth peer name "v$i" netns "$sw"
    step ip -n "$h" addr add "$subnet.$i/24" dev eth0
    step ip -n "$h" link set eth0 up
    step ip -n "$sw" link set "v$i" master br0
    step ip -n "$sw" link set "v$i" up
  done
  step ip link add "$prefix-r" type veth peer name vr netns "$sw"
  step ip addr add "$subnet.254/24" dev "$prefix-r"
  step ip link set "$prefix-r" up
  step ip -n "$sw" link set vr master br0
  step ip -n "$sw" link set vr up
  up_done=1
  trap - EXIT INT TERM
  for i in $(seq 1 "$n"); do
    echo "h$i $subnet.$i"
  done
}

down() {
  [ $# -eq 1 ] || usage
  check_prefix "$1"
  teardown "$1" || die "could not delete all of lab $1"
}

# cut|heal PREFIX I
link_state() {
  local state=$1
  shift
  [ $# -eq 2 ] || usage
  local prefix=$1 i=$2
  check_prefix "$prefix"
  check_member "$prefix" "$i"
  ip -n "$prefix-sw" link set "v$i" "$state" || die "could not set link v$i $state"
}

# Adds (add) or deletes (del) the blackhole route to ADDR in namespace NS.
blackhole() {
  local op=$1 ns=$2 addr=$3
  if [ "$op" = add ]; then
    ip -n "$ns" route replace blackhole "$addr/32" || die "could not add a blackhole route to $addr in $ns"
  elif [ -n "$(ip -n "$ns" route show type blackhole "$addr/32")" ]; then
    ip -n "$ns" route del blackhole "$addr/32" || die "could not delete the blackhole route to $addr in $ns"
  fi
}

# block|unblock PREFIX I J
partition() {
  local op=$1
  shift
  [ $# -eq 3 ] || usage
  local prefix=$1 i=$2 j=$3
  check_prefix "$prefix"
  [ "$i" = r ] && { i=$j; j=r; }
  [ "$i" != r ] || die "at most one of I, J may be r"
  [ "$i" != "$j" ] || die "I and J are the same host"
  local ai aj
  ai=$(addr_of "$prefix" "$i")
  aj=$(addr_of "$prefix" "$j")
  blackhole "$op" "$prefix-h$i" "$aj"
  # The root end: host I's side only, the root namespace's routes stay as
  # they are (see the header).
  [ "$j" = r ] || blackhole "$op" "$prefix-h$j" "$ai"
}

[ $# -ge 2 ] || usage
cmd=$1
shift
case "$cmd" in
  up) up "$@" ;;
  down) down "$@" ;;
  cut) link_state down "$@" ;;
  heal) link_state up "$@" ;;
  block) partition add "$@" ;;
  unblock) partition del "$@" ;;
  exec)
    [ $# -ge 3 ] || usage
    check_prefix "$1"
    [ "$2" != r ] || die "exec runs in a host's namespace; r is the root one"
    check_member "$1" "$2"
    ns="$1-h$2"
    shift 2
    exec ip netns exec "$ns" "$@"
    ;;
  addr)
    [ $# -eq 2 ] || usage
    check_prefix "$1"
    addr_of "$1" "$2"
    ;;
  *) usage ;;
esac
