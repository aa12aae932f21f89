// parked: 100,000 tasklets parked at once, each blocked receiving on a channel, then released.
// Reports the time to create and park them, the time to release them, peak RSS, page faults per
// tasklet and the stack pool's statistics (guard pages).
//
// Modes (run in this order in one process; the second finds the stack pool warm):
//   own     every tasklet blocks on its own channel; main sends to each in turn
//   shared  all block on one channel; main sends N times
// Usage: parked [--n=100000] [--mode=own|shared|both]
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "stackless/channel.hpp"

namespace {

struct result {
  double create_ms = 0, release_ms = 0;
  long rss_mib = 0;
  double faults_per_tasklet = 0;
  stackless::stack_stats stacks{};
  std::size_t parked = 0;
};

std::uint64_t g_sum = 0;

result run_mode(std::size_t n, bool shared) {
  result r;
  const auto u0 = bench::get_usage();
  const std::int64_t t0 = bench::now_ns();
  std::vector<stackless::channel<int>> chans;
  stackless::channel<int> one;
  chans.reserve(shared ? 0 : n);
  for (std::size_t i = 0; i < n; ++i) {
    stackless::channel<int> c = shared ? one : stackless::channel<int>();
    stackless::tasklet([c]() mutable { g_sum += static_cast<std::uint64_t>(c.receive()); }).setup();
    if (!shared) chans.push_back(c);
  }
  stackless::run();  // every tasklet runs up to its receive and blocks
  const std::int64_t t1 = bench::now_ns();
  const auto u1 = bench::get_usage();
  r.stacks = stackless::get_stack_stats();
  r.parked = stackless::alive_tasklets();
  for (std::size_t i = 0; i < n; ++i) (shared ? one : chans[i]).send(static_cast<int>(i));
  const std::int64_t t2 = bench::now_ns();
  r.create_ms = static_cast<double>(t1 - t0) / 1e6;
  r.release_ms = static_cast<double>(t2 - t1) / 1e6;
  r.rss_mib = u1.maxrss_kib / 1024;
  r.faults_per_tasklet = static_cast<double>(u1.minflt - u0.minflt) / static_cast<double>(n);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const auto n = static_cast<std::size_t>(bench::flag_value(argc, argv, "--n", 100'000));
  std::string mode = "both";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--mode=", 0) == 0) mode = a.substr(7);
  }
  const long rss0 = bench::get_usage().maxrss_kib / 1024;
  std::printf(
      "parked: %zu tasklets blocked receiving at once, default stack %zu KiB "
      "(process RSS before: %ld MiB)\n",
      n, stackless::default_stack_size() / 1024, rss0);
  bench::table t({"mode", "create+park ms", "us/tasklet", "release ms", "peak RSS MiB",
                  "KiB/tasklet", "faults/tasklet", "parked", "stacks mapped", "guarded",
                  "guard_install"});
  long worst_rss = 0;
  for (const char* m : {"own", "shared"}) {
    if (mode != "both" && mode != m) continue;
    const result r = run_mode(n, std::string(m) == "shared");
    if (stackless::alive_tasklets() != 0) {
      std::fprintf(stderr, "parked: %zu tasklets still alive after release\n",
                   stackless::alive_tasklets());
      return 1;
    }
    worst_rss = std::max(worst_rss, r.rss_mib);
    t.row({m, bench::fmt("%.1f", r.create_ms),
           bench::fmt("%.2f", r.create_ms * 1000.0 / static_cast<double>(n)),
           bench::fmt("%.1f", r.release_ms), std::to_string(r.rss_mib),
           bench::fmt("%.1f",
                      static_cast<double>(r.rss_mib - rss0) * 1024.0 / static_cast<double>(n)),
           bench::fmt("%.3f", r.faults_per_tasklet), std::to_string(r.parked),
           std::to_string(r.stacks.mapped), std::to_string(r.stacks.guarded),
           r.stacks.guard_install ? "yes" : "no"});
  }
  t.print();
  const std::uint64_t want = static_cast<std::uint64_t>(n) * (n - 1) / 2 * (mode == "both" ? 2 : 1);
  if (g_sum != want) {
    std::fprintf(stderr, "parked: wrong sum %llu\n", static_cast<unsigned long long>(g_sum));
    return 1;
  }
  std::printf("target: peak RSS <= 1024 MiB: %ld MiB -> %s\n", worst_rss,
              worst_rss <= 1024 ? "MET" : "MISSED");
  return 0;
}
