#!/usr/bin/env bash
# Builds the benchmarks in Release and runs them one after another (never in parallel: the
# machine has two cores), printing their tables. Baselines (bare Boost.Context switch,
# Boost.Fiber, Go when installed) are measured in the same run, so read the ratios, not the
# absolute figures, on a shared machine.
#
# Usage: scripts/bench.sh [--plot] [--quick] [--no-fiber-skynet]
#   --plot             also renders the tables as charts (scripts/plot_bench.sh, gnuplot): one PNG
#                      per benchmark, ratios against its same-run baseline, into docs/performance/
#   --quick            fewer repetitions, skynet at 100,000 leaves (a smoke run, about a minute)
#   --no-fiber-skynet  skips Boost.Fiber's skynet baseline (10-30 s a repetition here)
# Environment: BUILD_DIR (default build-bench); PLOT_DIR (default docs/performance).
# Skynet is the standard shape (spawn ten, receive ten) with every repetition in a fresh process:
# the stackless tree takes 30-45 s a repetition cold on this machine kind, so a full run is about
# 5-8 minutes. If `go` is installed (Debian: golang-go), bench/go/skynet.go is built and run as a
# baseline with GOMAXPROCS=1. Each program is bounded by a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-bench}
plot_dir=${PLOT_DIR:-docs/performance}
fiber_skynet=
quick=0
plot=0
for a in "$@"; do
  case "$a" in
    --with-fiber-skynet) ;;  # the default now; kept so old command lines still work
    --no-fiber-skynet) fiber_skynet=--no-fiber ;;
    --quick) quick=1 ;;
    --plot) plot=1 ;;
    *) echo "bench.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
if [ "$plot" = 1 ] && ! command -v gnuplot >/dev/null; then
  echo "bench.sh: --plot needs gnuplot (scripts/deps.sh gnuplot-nox)" >&2
  exit 2
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target switch_bench channel_bench skynet parked hackysack_bench stack_prefault open_bench select_bench >/dev/null

b="$build/bench"
go_skynet=()
go_select=()
go_hackysack=
if command -v go >/dev/null; then
  go build -o "$b/skynet-go" bench/go/skynet.go && go_skynet=(--go="$b/skynet-go")
  go build -o "$b/select-go" bench/go/select.go && go_select=(--go="$b/select-go")
  go build -o "$b/hackysack-go" bench/go/hackysack.go && go_hackysack="$b/hackysack-go"
else
  echo "bench.sh: go is not installed (golang-go): skynet runs without its Go baseline" >&2
fi
if [ "$plot" = 1 ]; then
  export STACKLESS_BENCH_CSV="$build/charts.tsv"
  : >"$STACKLESS_BENCH_CSV"
fi
run() {
  echo
  echo "\$ $*"
  timeout "${limit:-300}" "$@"
}
if [ "$quick" = 1 ]; then
  run "$b/switch_bench" --reps=3 --n=500000
  run "$b/channel_bench" --reps=3 --n=300000
  run "$b/skynet" --size=100000 --reps=1 "${go_skynet[@]}" $fiber_skynet
  run "$b/parked"
  run "$b/hackysack_bench" --reps=3 --max=10000
  if [ -n "$go_hackysack" ]; then run env GOMAXPROCS=1 "$go_hackysack" -reps 3 -max 10000; fi
  run "$b/open_bench" --files=2000 --reps=2
  run "$b/select_bench" --reps=3 --n=300000 "${go_select[@]}"
else
  run "$b/switch_bench"
  run "$b/channel_bench"
  # The standard shape (the headline) and the dfs variant beside it, each repetition cold.
  limit=1200 run "$b/skynet" --variants=standard,dfs --reps=3 "${go_skynet[@]}" $fiber_skynet
  # The fault-cost experiment behind skynet's cold figures (bench/experiments/stack_prefault.cpp).
  run "$b/stack_prefault"
  run "$b/parked"
  run "$b/hackysack_bench"
  if [ -n "$go_hackysack" ]; then run env GOMAXPROCS=1 "$go_hackysack"; fi
  # Small-file open/read/close: the before/after for asynchronous open and close.
  run "$b/open_bench"
  run "$b/select_bench" "${go_select[@]}"
fi
if [ "$plot" = 1 ]; then
  echo
  scripts/plot_bench.sh "$STACKLESS_BENCH_CSV" "$plot_dir"
fi
