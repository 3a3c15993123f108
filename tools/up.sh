#!/usr/bin/env bash
# Installs what is missing, builds, and runs a local cluster: a master and one
# agent sized to this machine, on 127.0.0.1, in one process. Ctrl-C stops it.
#   tools/up.sh                    master at 127.0.0.1:5050
#   tools/up.sh --listen 127.0.0.1:6060 --agents 2     (any `tessera cluster` flags)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/bootstrap.sh
cmake -S . -B build -G Ninja -DBUILD_TESTING=ON >/dev/null
cmake --build build --parallel "$(nproc)" --target tessera

args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--listen 127.0.0.1:5050 --agents 1)
echo "up: starting the cluster (Ctrl-C stops it); in another terminal:"
echo "up:   build/bin/tessera run --insecure --master 127.0.0.1:5050 -- sh -c 'echo hello from Tessera'"
echo "up:   (this local cluster speaks plaintext on 127.0.0.1: --insecure; see docs/security.md for TLS)"
echo "up:   build/bin/tessera tasks          (the CLI; the web UI: http://127.0.0.1:6050/)"
echo "up:   build/bin/tessera app add docs/examples/hello-app.json --wait   (a service: docs/apps.md)"
# exec: Ctrl-C goes straight to tessera, which stops its actors and exits.
exec build/bin/tessera cluster "${args[@]}"
