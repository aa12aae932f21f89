// scope_bench: what structured concurrency costs. Spawn-and-join of tasklets that yield once:
//   bare    - tasklet(f)() for each, then run() (the caller keeps no handle);
//   join    - tasklet(f)() for each, keeping the handles, then join() each;
//   scope   - scope::spawn(f) for each; the scope's destructor waits for all.
// Each figure is ns per child, best and median of --reps batches of --n children, measured in
// the same run (interleaved batch by batch); the ratio is against `bare`.
// Usage: scope_bench [--n=1000] [--reps=15]
#include <cstdint>
#include <cstdio>
#include <vector>

#include "bench_util.hpp"
#include "stackless/runtime/scope.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace {

int g_sink = 0;
void child(int k) {
  stackless::schedule();
  g_sink += k;
}

double bare(std::int64_t n) {
  const std::int64_t t0 = bench::now_ns();
  for (std::int64_t i = 0; i < n; ++i) stackless::tasklet{child}(static_cast<int>(i));
  stackless::run();
  return static_cast<double>(bench::now_ns() - t0) / static_cast<double>(n);
}

double joined(std::int64_t n) {
  std::vector<stackless::tasklet> ts;
  ts.reserve(static_cast<std::size_t>(n));
  const std::int64_t t0 = bench::now_ns();
  for (std::int64_t i = 0; i < n; ++i) ts.push_back(stackless::tasklet{child}(static_cast<int>(i)));
  for (auto& t : ts) t.join();
  return static_cast<double>(bench::now_ns() - t0) / static_cast<double>(n);
}

double scoped(std::int64_t n) {
  const std::int64_t t0 = bench::now_ns();
  {
    stackless::scope s;
    for (std::int64_t i = 0; i < n; ++i) s.spawn(child, static_cast<int>(i));
  }
  return static_cast<double>(bench::now_ns() - t0) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = bench::flag_value(argc, argv, "--n", 1000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 15));
  std::vector<double> b, j, s;
  for (int r = 0; r < reps; ++r) {
    b.push_back(bare(n));
    j.push_back(joined(n));
    s.push_back(scoped(n));
  }
  const auto sb = bench::summarize(b), sj = bench::summarize(j), ss = bench::summarize(s);
  std::printf("spawn-and-join of %lld children that yield once (ns per child)\n",
              static_cast<long long>(n));
  std::printf("%-8s %10s %10s %8s\n", "", "best", "median", "ratio");
  std::printf("%-8s %10.1f %10.1f %8.2f\n", "bare", sb.best, sb.median, 1.0);
  std::printf("%-8s %10.1f %10.1f %8.2f\n", "join", sj.best, sj.median, sj.median / sb.median);
  std::printf("%-8s %10.1f %10.1f %8.2f\n", "scope", ss.best, ss.median, ss.median / sb.median);
  return g_sink == 0;  // keeps the children's work
}
