#!/usr/bin/env bash
# Builds the libFuzzer target (clang, ASan+UBSan, coverage on the runtime and channel layers)
# and runs it for N seconds (default 60) on a persistent corpus under build/fuzz-corpus.
# Usage: scripts/fuzz.sh [seconds] [extra libFuzzer flags...]
#   scripts/fuzz.sh            # the bounded CI run (60 s)
#   scripts/fuzz.sh 3600 -jobs=2 -workers=2   # a longer run on both cores
# A crash leaves crash-<hash> in build/fuzz-artifacts/; replay it with
#   build/fuzz/fuzz/tasklet_channel_fuzz build/fuzz-artifacts/crash-<hash>
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
bdir=build/fuzz
corpus=build/fuzz-corpus
artifacts=build/fuzz-artifacts
mkdir -p "$corpus" "$artifacts"
CC=clang CXX=clang++ cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTACKLESS_BUILD_FUZZ=ON -DSTACKLESS_BUILD_TESTS=OFF -DSTACKLESS_BUILD_BENCH=OFF \
  -DSTACKLESS_BUILD_SAMPLES=OFF -DSTACKLESS_SANITIZE=address,undefined \
  -DSTACKLESS_WERROR="${STACKLESS_WERROR:-OFF}" >/dev/null
cmake --build "$bdir" --target tasklet_channel_fuzz -j "$(nproc)"
# detect_stack_use_after_return=0: fake stacks and fiber switches don't mix (docs/peers.md §5.1).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log=$artifacts/last-run.log
set +e
"$bdir/fuzz/tasklet_channel_fuzz" -max_total_time="$secs" -max_len=256 -timeout=10 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" "$corpus" 2>"$log"
rc=$?
set -e
tail -n 25 "$log"
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
echo "fuzz: ${execs:-?} executions in ${secs}s, corpus $(ls "$corpus" | wc -l) inputs, exit $rc"
exit $rc
