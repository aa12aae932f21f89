#!/usr/bin/env bash
# Builds the benchmarks in Release and runs them one after another (never in parallel: the
# machine has two cores), printing their tables. Baselines (bare Boost.Context switch,
# Boost.Fiber) are measured inside the same binaries, so read the ratios, not the absolute
# figures, on a shared machine.
#
# Usage: scripts/bench.sh [--with-fiber-skynet] [--quick]
#   --with-fiber-skynet  also runs Boost.Fiber's skynet (10-30 s on this machine kind)
#   --quick              fewer repetitions (a smoke run, about 30 s)
# Environment: BUILD_DIR (default build-bench).
# Total time without Boost.Fiber's skynet is about 1-2 minutes; each program is bounded by a
# timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-bench}
fiber_skynet=--no-fiber
quick=0
for a in "$@"; do
  case "$a" in
    --with-fiber-skynet) fiber_skynet= ;;
    --quick) quick=1 ;;
    *) echo "bench.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target switch_bench channel_bench skynet parked hackysack >/dev/null

b="$build/bench"
run() {
  echo
  echo "\$ $*"
  timeout 300 "$@"
}
if [ "$quick" = 1 ]; then
  run "$b/switch_bench" --reps=3 --n=500000
  run "$b/channel_bench" --reps=3 --n=300000
  run "$b/skynet" --variants=dfs --reps=1 --no-fiber
  run "$b/parked"
  run "$b/hackysack" --reps=3 --max=10000
else
  run "$b/switch_bench"
  run "$b/channel_bench"
  # The dfs variants first; bfs and run keep ~1.1M tasklets alive (about 4.6 GiB, ~12 s of
  # page faults on the first pass).
  run "$b/skynet" --variants=dfs,run,bfs --reps=3 $fiber_skynet
  run "$b/parked"
  run "$b/hackysack"
fi
