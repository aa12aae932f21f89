// switch_bench: the cost of stackless::schedule() between two tasklets, beside the bare
// Boost.Context switch and Boost.Fiber's yield, measured in the same run.
//
// A round trip is A -> B -> A: two schedule() calls, two jump_fcontext calls, two yields.
// Each figure is the best (and median) of --reps runs of --n round trips.
// Usage: switch_bench [--n=2000000] [--reps=7] [--only-stackless]  (the last one for profiling)
#include <cstdint>
#include <cstdio>

#include "baselines.hpp"
#include "bench_util.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace {

double schedule_round_trip(std::int64_t n) {
  auto loop = [n] {
    for (std::int64_t i = 0; i < n; ++i) stackless::schedule();
  };
  stackless::tasklet a(loop), b(loop);
  a.setup();
  b.setup();
  const std::int64_t t0 = bench::now_ns();
  stackless::run();  // a and b alternate until both finish
  const std::int64_t t1 = bench::now_ns();
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = bench::flag_value(argc, argv, "--n", 2'000'000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 7));
  if (bench::has_flag(argc, argv, "--only-stackless")) {
    for (int r = 0; r < reps; ++r) std::printf("schedule() x2: %.1f ns\n", schedule_round_trip(n));
    return 0;
  }

  // Interleave the contenders rep by rep so that machine noise hits them alike.
  std::vector<double> bare, cfib, sched, fyield;
  for (int r = 0; r < reps; ++r) {
    bare.push_back(bench::fcontext_round_trip(n));
    cfib.push_back(bench::context_fiber_round_trip(n));
    sched.push_back(schedule_round_trip(n));
    fyield.push_back(bench::fiber_yield_round_trip(n / 4));
  }
  const auto sb = bench::summarize(bare), sc = bench::summarize(cfib), ss = bench::summarize(sched),
             sf = bench::summarize(fyield);

  std::printf("switch_bench: round trip A->B->A, %lld round trips, best of %d (median beside)\n",
              static_cast<long long>(n), reps);
  bench::table t({"contender", "ns/round trip", "median", "vs bare fcontext"});
  auto add = [&](const char* name, const bench::stats& s) {
    t.row({name, bench::fmt("%.1f", s.best), bench::fmt("%.1f", s.median),
           bench::ratio(s.best, sb.best)});
    bench::chart_bar("switch",
                     "switch round trip A->B->A, median: time / bare jump_fcontext's, same run "
                     "(lower is better)",
                     name, s.median / sb.median, bench::fmt("%.1f ns", s.median));
  };
  add("jump_fcontext (bare, baseline)", sb);
  add("boost::context::fiber resume", sc);
  add("stackless schedule() x2", ss);
  add("Boost.Fiber this_fiber::yield() x2", sf);
  t.print();
  const double r = ss.best / sb.best;
  std::printf("target: schedule() round trip <= 3x bare fcontext: %.2fx -> %s\n", r,
              r <= 3.0 ? "MET" : "MISSED");
  std::printf("stackless vs Boost.Fiber yield: %.2fx faster\n", sf.best / ss.best);
  return 0;
}
