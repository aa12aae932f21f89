#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, coverage on the runtime, channel and io layers)
# and runs them for N seconds in all (default 60) on persistent corpora under build/:
#   tasklet_channel_fuzz  half of the time          corpus build/fuzz-corpus
#   io_file_fuzz          the other half, split between the io_uring and thread-pool backends
#                         (STACKLESS_IO_BACKEND is per process: one run each)
#                                                   corpus build/fuzz-corpus-io (shared)
# Usage: scripts/fuzz.sh [seconds] [extra libFuzzer flags...]
#   scripts/fuzz.sh            # the bounded CI run (60 s: 30 + 15 + 15)
#   scripts/fuzz.sh 3600 -jobs=2 -workers=2   # a longer run on both cores
#   FUZZ_TARGETS=io_file_fuzz scripts/fuzz.sh 1200   # only the io target: 600 s per backend
#   FUZZ_IO_BACKENDS=threadpool FUZZ_TARGETS=io_file_fuzz scripts/fuzz.sh 300
# A crash leaves crash-<hash> (channel) or io_file_fuzz-<backend>-crash-<hash> in
# build/fuzz-artifacts/; replay it with
#   build/fuzz/fuzz/tasklet_channel_fuzz build/fuzz-artifacts/crash-<hash>
#   STACKLESS_IO_BACKEND=<backend> build/fuzz/fuzz/io_file_fuzz build/fuzz-artifacts/io_file_fuzz-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=(${FUZZ_TARGETS:-tasklet_channel_fuzz io_file_fuzz})
backends=(${FUZZ_IO_BACKENDS:-uring threadpool})
bdir=build/fuzz
artifacts=build/fuzz-artifacts
mkdir -p "$artifacts"
CC=clang CXX=clang++ cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTACKLESS_BUILD_FUZZ=ON -DSTACKLESS_BUILD_TESTS=OFF -DSTACKLESS_BUILD_BENCH=OFF \
  -DSTACKLESS_BUILD_SAMPLES=OFF -DSTACKLESS_SANITIZE=address,undefined \
  -DSTACKLESS_WERROR="${STACKLESS_WERROR:-OFF}" >/dev/null
cmake --build "$bdir" --target "${targets[@]}" -j "$(nproc)"
# detect_stack_use_after_return=0: fake stacks and fiber switches don't mix.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
share=$((secs / ${#targets[@]}))
status=0
total=0
summary=()
# run_one NAME SECONDS CORPUS PREFIX MAXLEN [extra flags...]: one bounded libFuzzer run.
run_one() {
  local name=$1 t=$2 corpus=$3 prefix=$4 maxlen=$5
  shift 5
  local log=$artifacts/last-run-$name.log rc execs
  mkdir -p "$corpus"
  set +e
  # -rss_limit_mb=0: no libFuzzer RSS-watch thread. The runtime waits up to 500 ms for threads
  # that never used the library before it reports a deadlock (docs/threads.md), and that thread
  # would turn every modelled deadlock into a 500 ms wait with a different message.
  "$bdir/fuzz/${name%%@*}" -max_total_time="$t" -max_len="$maxlen" -timeout=10 -rss_limit_mb=0 \
    -artifact_prefix="$prefix" -print_final_stats=1 "$@" "$corpus" 2>"$log"
  rc=$?
  set -e
  tail -n 25 "$log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "fuzz: $name: ${execs:-?} executions in ${t}s, corpus $(ls "$corpus" | wc -l) inputs, exit $rc"
  summary+=("$name ${execs:-?}")
  total=$((total + ${execs:-0}))
  [ "$rc" -eq 0 ] || status=$rc
}
for target in "${targets[@]}"; do
  case $target in
    tasklet_channel_fuzz)
      run_one tasklet_channel_fuzz "$share" build/fuzz-corpus "$artifacts/" 256 "$@"
      ;;
    io_file_fuzz)
      for be in "${backends[@]}"; do
        export STACKLESS_IO_BACKEND=$be
        run_one "io_file_fuzz@$be" $((share / ${#backends[@]})) build/fuzz-corpus-io \
          "$artifacts/io_file_fuzz-$be-" 512 "$@"
      done
      unset STACKLESS_IO_BACKEND
      ;;
    *)
      echo "fuzz.sh: unknown target $target" >&2
      exit 2
      ;;
  esac
done
echo "fuzz: ${total} executions in ${secs}s (${summary[*]}), exit $status"
exit $status
