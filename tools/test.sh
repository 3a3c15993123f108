#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs every test through CTest.
#   tools/test.sh                     the normal build, in build/
#   tools/test.sh --sanitize          ASan+UBSan build of the whole suite, in build-sanitize/
#   tools/test.sh --sanitize-subset   ASan+UBSan build of what reads outside bytes: the
#                                     fuzz targets' replays (tests/fuzz) and the parsers'
#                                     and schemas' unit tests, in build-sanitize/ (CI runs
#                                     this: the whole sanitized suite takes longer than CI has)
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=OFF
subset=0
build_dir=build
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=ON; build_dir=build-sanitize ;;
    --sanitize-subset) sanitize=ON; subset=1; build_dir=build-sanitize ;;
    *) echo "usage: tools/test.sh [--sanitize | --sanitize-subset]" >&2; exit 2 ;;
  esac
done

tools/bootstrap.sh
tools/check-format.sh

cmake -S . -B "$build_dir" -G Ninja -DTESSERA_SANITIZE="$sanitize" -DBUILD_TESTING=ON >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

if [ "$subset" = 1 ]; then
  units=(tessera_services_tests tessera_capnp_tests)
  replays=()
  for f in tests/fuzz/*.fuzz.cpp; do replays+=("fuzz_replay_$(basename "$f" .fuzz.cpp)"); done
  cmake --build "$build_dir" --parallel "$(nproc)" --target "${units[@]}" "${replays[@]}"
  for u in "${units[@]}"; do
    echo "test.sh: $u (sanitized)"
    "$build_dir/bin/$u"
  done
  cd "$build_dir"
  ctest --output-on-failure --timeout 300 -j "$(nproc)" -R '^fuzz\.'
  exit 0
fi

cmake --build "$build_dir" --parallel "$(nproc)"
cd "$build_dir"
exclude=()
if [ "$sanitize" = ON ]; then
  # Load tests whose point is a deadline: under the sanitizers every process
  # runs several times slower, so they measure the sanitizer, not Tessera.
  slow="200 concurrent tessera run clients|stalled downloads delay no kill"
  echo "test.sh: not run under the sanitizers (deadlines under load): $slow"
  exclude=(-E "$slow")
fi
ctest --output-on-failure --timeout 300 -j "$(nproc)" "${exclude[@]}"
