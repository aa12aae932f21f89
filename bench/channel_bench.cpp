// channel_bench: channel ping-pong between two tasklets (A sends on `ping`, B answers on
// `pong`), with preference -1 (default), 0 and 1, beside the bare Boost.Context round trip and
// Boost.Fiber's unbuffered_channel and buffered_channel ping-pong, all in the same run.
//
// A round trip is one value A -> B and one B -> A. Best (and median) of --reps runs.
// Usage: channel_bench [--n=1000000] [--reps=7] [--only-stackless]  (the last one for profiling)
#include <cstdint>
#include <cstdio>

#include "baselines.hpp"
#include "bench_util.hpp"
#include "stackless/channel.hpp"

namespace {

double channel_round_trip(std::int64_t n, int preference) {
  stackless::channel<int> ping, pong;
  ping.set_preference(preference);
  pong.set_preference(preference);
  stackless::tasklet a([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      ping.send(static_cast<int>(i));
      bench::do_not_optimize(pong.receive());
    }
  });
  stackless::tasklet b([&] {
    for (std::int64_t i = 0; i < n; ++i) pong.send(ping.receive());
  });
  a.setup();
  b.setup();
  const std::int64_t t0 = bench::now_ns();
  stackless::run();
  const std::int64_t t1 = bench::now_ns();
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = bench::flag_value(argc, argv, "--n", 1'000'000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 7));
  if (bench::has_flag(argc, argv, "--only-stackless")) {
    for (int r = 0; r < reps; ++r)
      std::printf("channel pref -1: %.1f ns\n", channel_round_trip(n, -1));
    return 0;
  }
  using bench::fiber_channel_round_trip;
  using ufch = boost::fibers::unbuffered_channel<int>;
  using bfch = boost::fibers::buffered_channel<int>;

  std::vector<double> bare, pm1, p0, p1, fu, fb;
  for (int r = 0; r < reps; ++r) {
    bare.push_back(bench::fcontext_round_trip(n));
    pm1.push_back(channel_round_trip(n, -1));
    p0.push_back(channel_round_trip(n, 0));
    p1.push_back(channel_round_trip(n, 1));
    fu.push_back(fiber_channel_round_trip<ufch>(n / 4));
    fb.push_back(fiber_channel_round_trip<bfch>(n / 4, std::size_t{2}));
  }
  const auto sb = bench::summarize(bare), sm1 = bench::summarize(pm1), s0 = bench::summarize(p0),
             s1 = bench::summarize(p1), su = bench::summarize(fu), sf = bench::summarize(fb);

  std::printf("channel_bench: ping-pong round trip, %lld round trips, best of %d (median beside)\n",
              static_cast<long long>(n), reps);
  bench::table t({"contender", "ns/round trip", "median", "vs bare fcontext",
                  "Boost.Fiber unbuf / this", "Boost.Fiber buf(2) / this"});
  auto add = [&](const char* name, const bench::stats& s) {
    t.row({name, bench::fmt("%.1f", s.best), bench::fmt("%.1f", s.median),
           bench::ratio(s.best, sb.best), bench::ratio(su.best, s.best),
           bench::ratio(sf.best, s.best)});
    bench::chart_bar("channel",
                     "channel ping-pong round trip, one thread, median: time / bare "
                     "jump_fcontext round trip's, same run (lower is better)",
                     name, s.median / sb.median, bench::fmt("%.1f ns", s.median));
  };
  add("jump_fcontext round trip (baseline)", sb);
  add("stackless channel<int>, preference -1", sm1);
  add("stackless channel<int>, preference 0", s0);
  add("stackless channel<int>, preference 1", s1);
  add("Boost.Fiber unbuffered_channel<int>", su);
  add("Boost.Fiber buffered_channel<int>(2)", sf);
  t.print();
  const double worst = std::max({sm1.best, s0.best, s1.best});
  const double vs_bare = sm1.best / sb.best;
  const double vs_fiber = std::min(su.best, sf.best) / sm1.best;
  std::printf("target: preference -1 round trip <= 4x bare: %.2fx -> %s (worst preference %.2fx)\n",
              vs_bare, vs_bare <= 4.0 ? "MET" : "MISSED", worst / sb.best);
  std::printf("target: >= 4x faster than the faster Boost.Fiber channel: %.2fx -> %s\n", vs_fiber,
              vs_fiber >= 4.0 ? "MET" : "MISSED");
  return 0;
}
