#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (docs/fuzzing.md).
#   tools/fuzz.sh                          every target for 60 s each
#   tools/fuzz.sh dns --seconds 600        one target for ten minutes
#   tools/fuzz.sh --runs 10000000          every target for 10 million executions
#   tools/fuzz.sh --list                   the targets
#   tools/fuzz.sh dns --no-build           run what build-fuzz/ holds, without building
# Builds in build-fuzz/ with clang-14 (libFuzzer, ASan, UBSan), installing
# clang-14, libclang-rt-14-dev and libfuzzer-14-dev when they are missing.
# A target's working corpus is build-fuzz/corpus/NAME, started from the
# checked-in seeds tests/fuzz/corpus/NAME; a crash or sanitizer report is
# written to build-fuzz/crashes/NAME/ and makes the run fail. Put a crash's
# file in tests/fuzz/regressions/NAME/ with the fix: the normal build then
# replays it in CTest (fuzz.NAME) for ever.
# Prints one line per target: executions, seconds, executions per second,
# corpus size, result. Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=()
seconds=60
runs=0
list=0
build_first=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds|--runs)
      [ $# -ge 2 ] || { echo "fuzz.sh: $1 takes a number" >&2; exit 2; }
      if [ "$1" = --seconds ]; then seconds="$2"; else runs="$2"; fi
      shift 2 ;;
    --list) list=1; shift ;;
    --no-build) build_first=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

all=()
for f in tests/fuzz/*.fuzz.cpp; do
  n=$(basename "$f" .fuzz.cpp)
  all+=("$n")
done
if [ "$list" = 1 ]; then
  printf '%s\n' "${all[@]}"
  exit 0
fi
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [ -f "tests/fuzz/$t.fuzz.cpp" ] || { echo "fuzz.sh: no target $t (tools/fuzz.sh --list)" >&2; exit 2; }
done
case "$seconds,$runs" in *[!0-9,]*|,*|*,) echo "fuzz.sh: --seconds and --runs take numbers" >&2; exit 2 ;; esac

build=build-fuzz
if [ "$build_first" = 1 ]; then
  tools/bootstrap.sh
  missing=()
  for p in clang-14 libclang-rt-14-dev libfuzzer-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "fuzz.sh: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi

  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DTESSERA_FUZZ=ON \
    -DTESSERA_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --parallel "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
printf '%-14s %12s %8s %10s %8s  %s\n' target executions seconds execs/s corpus result
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  crashes="$build/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  limit=(-max_total_time="$seconds")
  [ "$runs" -gt 0 ] && limit=(-runs="$runs")
  log="$build/fuzz-$t.log"
  start=$(date +%s)
  set +e
  "$build/bin/fuzz_$t" "${limit[@]}" -print_final_stats=1 -rss_limit_mb=4096 -timeout=20 \
    -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-0}
  result=ok
  if [ $rc -ne 0 ] && grep -q 'libFuzzer: run interrupted' "$log"; then
    result="interrupted (clean until then)"
    failed=1
  elif [ $rc -ne 0 ]; then
    result="CRASH (see $log and $crashes/)"
    failed=1
  fi
  printf '%-14s %12s %8s %10s %8s  %s\n' "$t" "$execs" "$took" "$(( execs / (took > 0 ? took : 1) ))" \
    "$(ls "$corpus" | wc -l)" "$result"
done
exit $failed
