#!/usr/bin/env bash
# Starts and stops ZooKeeper servers on 127.0.0.1 (or another address) for
# Tessera's tests and local clusters (Debian's `zookeeper` package;
# tools/bootstrap.sh installs it).
#
#   tools/zk.sh start DIR [--servers N] [--port P] [--host IP] [--netns NAME]
#       N servers (default 1; 3 makes an ensemble) with client ports P..P+N-1
#       (default 2181), their data and logs under DIR/zkI/. Short ticks (200 ms)
#       and a capped heap, as a test wants. Waits until every server takes
#       connections, then prints the registry spec: zk://127.0.0.1:P,.../tessera
#       --host IP: the servers listen on IP (client and quorum ports) instead
#       of 127.0.0.1, and the spec names IP.
#       --netns NAME: the servers run in network namespace NAME (`ip netns
#       exec`, root only; e.g. a host of tools/netns.sh), and so does the probe
#       of their readiness. DIR/zkI/pid is still the JVM's own pid.
#       Both are recorded in DIR/zk.env (host=, netns=); stop and kill need
#       neither: they signal by pid, and pids are the same in every network
#       namespace.
#   tools/zk.sh stop DIR
#       Stops every server started in DIR (SIGTERM by pid, then SIGKILL).
#   tools/zk.sh kill DIR I
#       SIGKILL of server I (1-based): a test of losing one.
set -euo pipefail

usage() {
  echo "usage: tools/zk.sh start DIR [--servers N] [--port P] [--host IP] [--netns NAME] | stop DIR | kill DIR I" >&2
  exit 2
}

classpath() {
  local cp="/etc/zookeeper/conf"
  for jar in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar /usr/share/java/*.jar; do
    cp+=":$jar"
  done
  echo "$cp"
}

# Waits (up to 60 s) until the server on host:port serves: standalone, or a
# leader or follower of a quorum (its "srvr" answer names its mode). The
# probe runs in a child shell: a refused connection must not end this one.
# With a network namespace, the probe runs in it (ip netns exec NAME bash).
wait_serving() {
  local host=$1 port=$2 netns=$3
  local in_ns=()
  [ -z "$netns" ] || in_ns=(ip netns exec "$netns")
  for _ in $(seq 1 600); do
    if timeout 2 "${in_ns[@]}" bash -c "exec 3<>/dev/tcp/$host/$port && echo srvr >&3 && cat <&3" \
        2>/dev/null | grep -q '^Mode: '; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

start() {
  local dir=$1; shift
  local servers=1 port=2181 host=127.0.0.1 netns=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --servers) servers=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --host) [ $# -ge 2 ] || usage; host=$2; shift 2 ;;
      --netns) [ $# -ge 2 ] || usage; netns=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ $host =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || { echo "zk.sh: --host wants an IPv4 address, not '$host'" >&2; exit 1; }
  # What runs a server (and the probe): here, or in the namespace.
  local in_ns=()
  if [ -n "$netns" ]; then
    ip netns exec "$netns" true 2>/dev/null \
      || { echo "zk.sh: cannot run in network namespace '$netns' (does it exist? are we root?)" >&2; exit 1; }
    in_ns=(ip netns exec "$netns")
  fi
  command -v java >/dev/null || { echo "zk.sh: java is not installed (tools/bootstrap.sh installs it)" >&2; exit 1; }
  [ -f /usr/share/java/zookeeper.jar ] || { echo "zk.sh: the zookeeper package is not installed (tools/bootstrap.sh installs it)" >&2; exit 1; }
  mkdir -p "$dir"
  printf 'host=%s\nnetns=%s\n' "$host" "$netns" > "$dir/zk.env"
  # Whatever goes wrong from here on, no server is left behind.
  trap 'stop "$dir"' EXIT
  local cp; cp=$(classpath)
  local spec=""
  for i in $(seq 1 "$servers"); do
    local d="$dir/zk$i"
    mkdir -p "$d/data"
    echo "$i" > "$d/data/myid"
    {
      echo "tickTime=200"
      echo "initLimit=20"
      echo "syncLimit=10"
      echo "minSessionTimeout=400"
      echo "maxSessionTimeout=60000"
      echo "dataDir=$d/data"
      echo "clientPort=$((port + i - 1))"
      echo "clientPortAddress=$host"
      echo "admin.enableServer=false"
      echo "4lw.commands.whitelist=*"
      if [ "$servers" -gt 1 ]; then
        for j in $(seq 1 "$servers"); do
          echo "server.$j=$host:$((port + 100 + j)):$((port + 200 + j))"
        done
      fi
    } > "$d/zoo.cfg"
    # nohup and ip netns exec both exec what follows: $! is the JVM's pid.
    ZOO_LOG_DIR="$d" nohup "${in_ns[@]}" java -Xmx128m -XX:+UseSerialGC -Dzookeeper.log.dir="$d" \
      -Dzookeeper.root.logger=WARN,CONSOLE -cp "$cp" \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" > "$d/server.log" 2>&1 &
    echo $! > "$d/pid"
    spec+="${spec:+,}$host:$((port + i - 1))"
  done
  for i in $(seq 1 "$servers"); do
    if ! wait_serving "$host" $((port + i - 1)) "$netns"; then
      echo "zk.sh: server $i did not take connections on $host:$((port + i - 1))${netns:+ in netns $netns}; see $dir/zk$i/server.log" >&2
      exit 1
    fi
  done
  trap - EXIT
  echo "zk://$spec/tessera"
}

stop() {
  local dir=$1
  for pidfile in "$dir"/zk*/pid; do
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

[ $# -ge 2 ] || usage
case "$1" in
  start) shift; start "$@" ;;
  stop) stop "$2" ;;
  kill)
    [ $# -eq 3 ] || usage
    kill -9 "$(cat "$2/zk$3/pid")"
    rm -f "$2/zk$3/pid"
    ;;
  *) usage ;;
esac
