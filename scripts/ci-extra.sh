#!/usr/bin/env bash
# Extra CI lanes (issue 8), run by .ci/run after scripts/test.sh (which builds and tests the
# default and asan presets):
#   clang     - the default configuration built with clang/clang++ (build/ci-clang), all tests
#   valgrind  - the test binaries of build/default under valgrind memcheck (stacks are
#               registered with valgrind when valgrind/valgrind.h is present at build time)
#   tsan      - the tsan preset (build/tsan), all tests: the thread-pool I/O backend crosses
#               threads
#   fuzz      - the libFuzzer targets for FUZZ_SECONDS in all (default 60): the channel fuzzer
#               half, io_file_fuzz a quarter per I/O backend (scripts/fuzz.sh)
#   gdb       - the gdb script tests (live and core file) of build/default
#   windows   - the MinGW-w64 cross build (build/mingw) and its tests under Wine
#               (scripts/windows.sh, docs/windows.md)
# Each lane prints one summary line; the script runs every lane and fails if any failed.
# Usage: scripts/ci-extra.sh [lane...]   (default: all, in the order above)
# Warnings are errors (STACKLESS_WERROR, default ON here).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh clang libclang-rt-14-dev gdb valgrind || exit 1

lanes=("$@")
[ ${#lanes[@]} -eq 0 ] && lanes=(clang valgrind tsan fuzz gdb windows)
jobs=$(nproc)
werror=${STACKLESS_WERROR:-ON}
logdir=build/ci-extra-logs
mkdir -p "$logdir"
summary=()
failed=0

# ctest_counts LOG: "N/M tests passed" from a ctest log.
ctest_counts() {
  grep -Eo '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -1
}

lane_clang() {
  # With debug information: the gdb-script tests run in this lane too.
  CC=clang CXX=clang++ cmake -S . -B build/ci-clang -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSTACKLESS_WERROR="$werror" >/dev/null &&
    cmake --build build/ci-clang -j "$jobs" &&
    ctest --test-dir build/ci-clang -j "$jobs" --output-on-failure
  local rc=$?
  detail="clang $(clang++ -dumpversion): $(ctest_counts "$log")"
  return $rc
}

lane_valgrind() {
  # The default preset's binaries (built by scripts/test.sh; built here if missing).
  cmake --preset default -DSTACKLESS_WERROR="$werror" >/dev/null &&
    cmake --build --preset default -j "$jobs" || return 1
  # stack_pool.cpp registers stacks when __has_include(<valgrind/valgrind.h>) (deps.sh installs it).
  [ -f /usr/include/valgrind/valgrind.h ] ||
    echo "valgrind: note: no valgrind/valgrind.h: tasklet stacks are not registered"
  local rc=0 n=0 bad=() exe
  # Each suite, and the soak with a smaller load (valgrind is ~50x slower). Death tests and
  # tests that run other programs (consumer_install, gdb, samples) are not memchecked.
  local -a runs=("tests/test_runtime" "tests/test_channel" "tests/soak/soak 100000 2000 42")
  # permission_denied_is_eacces forks a child that checks its own exit code; under valgrind the
  # child reports the parent's threads' state as leaked (the threads don't exist after fork)
  # and exits with valgrind's error code.
  [ -x build/default/tests/test_io ] &&
    runs+=("tests/test_io --run_test=!Errors/permission_denied_is_eacces")
  # The binaries run side by side, $jobs at a time (valgrind runs a program on one core).
  local -a pids=() names=()
  for r in "${runs[@]}"; do
    exe=${r%% *}
    n=$((n + 1))
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
    # shellcheck disable=SC2086  # r holds the command and its arguments
    (cd build/default && STACKLESS_IO_BACKEND=threadpool valgrind --error-exitcode=99 -q \
      --child-silent-after-fork=yes --leak-check=full --errors-for-leak-kinds=definite \
      --show-leak-kinds=definite --max-stackframe=4194304 ./$r --log_level=nothing \
      --report_level=short) >"$logdir/valgrind-$(basename "$exe").log" 2>&1 &
    pids+=($!)
    names+=("$exe")
  done
  local i
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      bad+=("${names[$i]}")
      rc=1
    fi
    echo "--- valgrind ${names[$i]}"
    tail -n 40 "$logdir/valgrind-$(basename "${names[$i]}").log"
  done
  detail="valgrind $(valgrind --version | sed 's/valgrind-//'): $((n - ${#bad[@]}))/$n binaries clean${bad:+; failed: ${bad[*]}}"
  return $rc
}

lane_tsan() {
  cmake --preset tsan -DSTACKLESS_WERROR="$werror" >/dev/null &&
    cmake --build --preset tsan -j "$jobs" &&
    ctest --preset tsan -j "$jobs"
  local rc=$?
  detail="tsan preset: $(ctest_counts "$log")"
  return $rc
}

lane_fuzz() {
  STACKLESS_WERROR="$werror" scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
  local rc=$?
  detail=$(grep -E '^fuzz: ' "$log" | tail -1)
  return $rc
}

lane_gdb() {
  [ -f build/default/build.ninja ] || cmake --preset default -DSTACKLESS_WERROR="$werror" >/dev/null
  cmake --build --preset default -j "$jobs" --target gdb_target &&
    ctest --test-dir build/default -R '^gdb_script_' --output-on-failure
  local rc=$?
  detail="gdb $(gdb --version | head -1 | grep -Eo '[0-9]+\.[0-9]+' | head -1): $(ctest_counts "$log")"
  if grep -q 'gdb_script_core .*Not Run\|Skipped' "$log"; then detail+=" (core test skipped)"; fi
  return $rc
}

lane_windows() {
  STACKLESS_WERROR="$werror" scripts/windows.sh
  local rc=$?
  detail="mingw $(x86_64-w64-mingw32-g++-posix -dumpversion 2>/dev/null), wine: $(ctest_counts "$log")"
  return $rc
}

total0=$(date +%s)
for lane in "${lanes[@]}"; do
  log=$logdir/$lane.log
  detail=""
  echo "=== ci-extra: lane $lane (log: $log) ==="
  t0=$(date +%s)
  if "lane_$lane" >"$log" 2>&1; then status=PASS; else status=FAIL; failed=1; tail -n 60 "$log"; fi
  line=$(printf 'ci-extra: %-8s %s %4ds  %s' "$lane" "$status" $(($(date +%s) - t0)) "$detail")
  echo "$line"
  summary+=("$line")
done
echo "=== ci-extra summary ($(($(date +%s) - total0)) s) ==="
printf '%s\n' "${summary[@]}"
exit $failed
