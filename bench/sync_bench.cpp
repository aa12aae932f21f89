// sync_bench: stackless::lock against std::mutex and boost::fibers::mutex, in the same run.
//   uncontended: lock()+unlock() by one tasklet (one fiber, one thread), nobody else around;
//   hand-off:    two tasklets (fibers) take turns: lock, yield inside the critical section,
//                unlock, so every acquisition blocks and is handed over by the other's unlock.
//   timed wait:  an event wait_for that times out, under virtual time (the helper tasklet and
//                the poller's timer), per wait.
// Best (and median) of --reps runs, in ns per lock/unlock pair (per critical section).
// Usage: sync_bench [--n=2000000] [--reps=7]
#include <boost/fiber/all.hpp>
#include <stackless/stackless.hpp>

#include <cstdio>
#include <mutex>
#include <vector>

#include "bench_util.hpp"

namespace {

template <class M>
double uncontended(std::int64_t n) {
  M m;
  const std::int64_t t0 = bench::now_ns();
  for (std::int64_t i = 0; i < n; ++i) {
    m.lock();
    bench::do_not_optimize(i);
    m.unlock();
  }
  return static_cast<double>(bench::now_ns() - t0) / static_cast<double>(n);
}

double stackless_handoff(std::int64_t n) {
  stackless::lock m;
  std::int64_t count = 0;
  auto body = [&] {
    for (std::int64_t i = 0; i < n; ++i) {
      std::lock_guard g(m);
      ++count;
      stackless::schedule();
    }
  };
  stackless::tasklet a(body), b(body);
  a.setup();
  b.setup();
  const std::int64_t t0 = bench::now_ns();
  stackless::run();
  const std::int64_t t1 = bench::now_ns();
  bench::do_not_optimize(count);
  return static_cast<double>(t1 - t0) / static_cast<double>(2 * n);
}

double fiber_handoff(std::int64_t n) {
  boost::fibers::mutex m;
  std::int64_t count = 0;
  auto body = [&] {
    for (std::int64_t i = 0; i < n; ++i) {
      std::lock_guard g(m);
      ++count;
      boost::this_fiber::yield();
    }
  };
  const std::int64_t t0 = bench::now_ns();
  boost::fibers::fiber a(body), b(body);
  a.join();
  b.join();
  const std::int64_t t1 = bench::now_ns();
  bench::do_not_optimize(count);
  return static_cast<double>(t1 - t0) / static_cast<double>(2 * n);
}

double timed_wait_timeout(std::int64_t n) {
  stackless::virtual_time vt;
  stackless::event e;
  const std::int64_t t0 = bench::now_ns();
  for (std::int64_t i = 0; i < n; ++i) bench::do_not_optimize(e.wait_for(std::chrono::hours(1)));
  return static_cast<double>(bench::now_ns() - t0) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = bench::flag_value(argc, argv, "--n", 2'000'000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 7));
  std::vector<double> us, ustd, ufib, hs, hfib, tw;
  for (int r = 0; r < reps; ++r) {
    us.push_back(uncontended<stackless::lock>(n));
    ustd.push_back(uncontended<std::mutex>(n));
    ufib.push_back(uncontended<boost::fibers::mutex>(n));
    hs.push_back(stackless_handoff(n / 4));
    hfib.push_back(fiber_handoff(n / 4));
    tw.push_back(timed_wait_timeout(n / 100));
  }
  const auto s = bench::summarize(us), sstd = bench::summarize(ustd), sfib = bench::summarize(ufib),
             h = bench::summarize(hs), hf = bench::summarize(hfib), t = bench::summarize(tw);
  bench::table tab({"operation", "best ns", "median ns", "stackless / baseline (best)"});
  tab.row({"stackless::lock uncontended", bench::fmt("%.1f", s.best), bench::fmt("%.1f", s.median),
           ""});
  tab.row({"std::mutex uncontended", bench::fmt("%.1f", sstd.best), bench::fmt("%.1f", sstd.median),
           bench::ratio(s.best, sstd.best)});
  tab.row({"boost::fibers::mutex uncontended", bench::fmt("%.1f", sfib.best),
           bench::fmt("%.1f", sfib.median), bench::ratio(s.best, sfib.best)});
  tab.row({"stackless::lock hand-off (2 tasklets)", bench::fmt("%.1f", h.best),
           bench::fmt("%.1f", h.median), ""});
  tab.row({"boost::fibers::mutex hand-off (2 fibers)", bench::fmt("%.1f", hf.best),
           bench::fmt("%.1f", hf.median), bench::ratio(h.best, hf.best)});
  tab.row({"event::wait_for timing out (virtual time)", bench::fmt("%.1f", t.best),
           bench::fmt("%.1f", t.median), ""});
  tab.print();
  return 0;
}
