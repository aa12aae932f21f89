// skynet: a 10-ary tree of 1,111,111 tasklets; each of the 1,000,000 leaves sends its number up
// a channel, each inner node sums its ten children and sends the sum to its parent; the root
// total must be 499999500000.
//
// Variants (the order in which the tree is expanded decides how many tasklets, and stacks, are
// alive at once; see bench/README in the report and the comments below):
//   bfs      spawn all ten children (tasklet(f)(args): appended to the run queue), then receive
//            ten times. The FIFO run queue expands the tree breadth-first: ~1.1M tasklets alive.
//   run      create each child and start it at once with t.run() (Stackless tasklet.run()), then
//            receive ten times.
//   dfs      create one child, insert() it and receive its result before creating the next
//            (one subtree at a time): O(depth) tasklets alive, stacks recycled hot.
// Each variant runs with result-channel preference -1 (default) and 1 (sender preferred).
// Boost.Fiber's skynet (round_robin, as in Boost's own performance/ example: launch::dispatch,
// buffered_channel(16); fixedsize_stack of 16 KiB, as the example's 8 KiB overflows with this
// toolchain) runs last; skip it with --no-fiber.
//
// Usage: skynet [--variants=bfs,run,dfs] [--reps=3] [--no-fiber] [--size=1000000]
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <boost/fiber/all.hpp>

#include "bench_util.hpp"
#include "stackless/channel.hpp"

namespace {

using u64 = std::uint64_t;
using chan = stackless::channel<u64>;
constexpr u64 kDiv = 10;

std::size_t g_peak_alive = 0;
int g_pref = -1;

inline void note_alive() {
  g_peak_alive = std::max(g_peak_alive, stackless::alive_tasklets());
}

chan make_chan() {
  chan c;
  c.set_preference(g_pref);
  return c;
}

void skynet_bfs(chan c, u64 num, u64 size) {
  if (size == 1) {
    note_alive();
    c.send(num);
    return;
  }
  chan rc = make_chan();
  const u64 sub = size / kDiv;
  for (u64 i = 0; i < kDiv; ++i) stackless::tasklet{skynet_bfs}(rc, num + i * sub, sub);
  u64 sum = 0;
  for (u64 i = 0; i < kDiv; ++i) sum += rc.receive();
  c.send(sum);
}

void skynet_run(chan c, u64 num, u64 size) {
  if (size == 1) {
    note_alive();
    c.send(num);
    return;
  }
  chan rc = make_chan();
  const u64 sub = size / kDiv;
  for (u64 i = 0; i < kDiv; ++i) {
    stackless::tasklet t(skynet_run, rc, num + i * sub, sub);  // alive, paused
    t.run();                                                   // run it now
  }
  u64 sum = 0;
  for (u64 i = 0; i < kDiv; ++i) sum += rc.receive();
  c.send(sum);
}

void skynet_dfs(chan c, u64 num, u64 size) {
  if (size == 1) {
    note_alive();
    c.send(num);
    return;
  }
  chan rc = make_chan();
  const u64 sub = size / kDiv;
  u64 sum = 0;
  for (u64 i = 0; i < kDiv; ++i) {
    stackless::tasklet{skynet_dfs}(rc, num + i * sub, sub);  // appended to the run queue
    sum += rc.receive();                                     // blocks: the child runs
  }
  c.send(sum);
}

struct result {
  double ms = 0;
  long rss_mib = 0;
  double faults_per_tasklet = 0;
  std::size_t peak_alive = 0;
};

template <class F>
result run_stackless(F root_fn, u64 size, u64 tasklets) {
  g_peak_alive = 0;
  const auto u0 = bench::get_usage();
  const std::int64_t t0 = bench::now_ns();
  chan rc = make_chan();
  stackless::tasklet{root_fn}(rc, u64{0}, size);
  const u64 sum = rc.receive();  // main blocks; the tree runs
  const std::int64_t t1 = bench::now_ns();
  const auto u1 = bench::get_usage();
  const u64 want = size * (size - 1) / 2;
  if (sum != want) {
    std::fprintf(stderr, "skynet: wrong sum %llu (want %llu)\n",
                 static_cast<unsigned long long>(sum), static_cast<unsigned long long>(want));
    std::exit(1);
  }
  stackless::run();  // lets finished-but-runnable senders end
  if (stackless::alive_tasklets() != 0) {
    std::fprintf(stderr, "skynet: %zu tasklets still alive\n", stackless::alive_tasklets());
    std::exit(1);
  }
  result r;
  r.ms = static_cast<double>(t1 - t0) / 1e6;
  r.rss_mib = u1.maxrss_kib / 1024;
  r.faults_per_tasklet = static_cast<double>(u1.minflt - u0.minflt) / static_cast<double>(tasklets);
  r.peak_alive = g_peak_alive;
  return r;
}

// ---- Boost.Fiber (Boost's performance/fiber/skynet_round_robin.cpp, same structure) --------
using fiber_alloc = boost::fibers::fixedsize_stack;
using fiber_chan = boost::fibers::buffered_channel<u64>;

void fiber_skynet(fiber_alloc& salloc, fiber_chan& c, u64 num, u64 size, u64 div) {
  if (size == 1) {
    c.push(num);
    return;
  }
  fiber_chan rc{16};
  for (u64 i = 0; i < div; ++i) {
    const u64 sub_num = num + i * size / div;
    boost::fibers::fiber{boost::fibers::launch::dispatch,
                         std::allocator_arg,
                         salloc,
                         fiber_skynet,
                         std::ref(salloc),
                         std::ref(rc),
                         sub_num,
                         size / div,
                         div}
        .detach();
  }
  u64 sum = 0;
  for (u64 i = 0; i < div; ++i) sum += rc.value_pop();
  c.push(sum);
}

result run_fiber(u64 size, u64 tasklets) {
  const auto u0 = bench::get_usage();
  const std::int64_t t0 = bench::now_ns();
  fiber_alloc salloc{16 * 1024};  // Boost's example uses 8 KiB; that overflows here
  fiber_chan rc{2};
  boost::fibers::fiber root{boost::fibers::launch::dispatch,
                            std::allocator_arg,
                            salloc,
                            fiber_skynet,
                            std::ref(salloc),
                            std::ref(rc),
                            u64{0},
                            size,
                            kDiv};
  const u64 sum = rc.value_pop();
  root.join();
  const std::int64_t t1 = bench::now_ns();
  const auto u1 = bench::get_usage();
  if (sum != size * (size - 1) / 2) {
    std::fprintf(stderr, "skynet: Boost.Fiber wrong sum\n");
    std::exit(1);
  }
  result r;
  r.ms = static_cast<double>(t1 - t0) / 1e6;
  r.rss_mib = u1.maxrss_kib / 1024;
  r.faults_per_tasklet = static_cast<double>(u1.minflt - u0.minflt) / static_cast<double>(tasklets);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const u64 size = static_cast<u64>(bench::flag_value(argc, argv, "--size", 1'000'000));
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 3));
  std::string variants = "dfs,run,bfs";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--variants=", 0) == 0) variants = a.substr(11);
  }
  u64 tasklets = 0;
  for (u64 s = size; s >= 1; s /= kDiv) {
    tasklets += size / s;
    if (s == 1) break;
  }
  const u64 want = size * (size - 1) / 2;
  std::printf(
      "skynet: %llu leaves, %llu tasklets, sum %llu; best of %d (peak RSS is the "
      "process's running maximum, so it can only grow down the table)\n",
      static_cast<unsigned long long>(size), static_cast<unsigned long long>(tasklets),
      static_cast<unsigned long long>(want), reps);

  bench::table t({"variant", "pref", "best ms", "first ms", "median ms", "vs Go 1000 ms",
                  "peak RSS MiB", "faults/tasklet (first)", "faults/tasklet (best)", "peak alive"});
  double headline = 0, headline_faults = 0, fiber_ms = 0;
  auto run_variant = [&](const char* name, void (*fn)(chan, u64, u64), int pref) {
    g_pref = pref;
    std::vector<result> rs;
    for (int r = 0; r < reps; ++r) rs.push_back(run_stackless(fn, size, tasklets));
    const result first = rs.front();
    std::vector<double> ms;
    for (auto& x : rs) ms.push_back(x.ms);
    const auto s = bench::summarize(ms);
    const result best =
        *std::min_element(rs.begin(), rs.end(), [](auto& a, auto& b) { return a.ms < b.ms; });
    t.row({name, std::to_string(pref), bench::fmt("%.1f", s.best), bench::fmt("%.1f", s.first),
           bench::fmt("%.1f", s.median), bench::fmt("%.2fx faster", 1000.0 / s.best),
           std::to_string(best.rss_mib), bench::fmt("%.4f", first.faults_per_tasklet),
           bench::fmt("%.4f", best.faults_per_tasklet), std::to_string(first.peak_alive)});
    if (std::string(name) == "dfs" && (headline == 0 || s.best < headline)) {
      headline = s.best;
      headline_faults = best.faults_per_tasklet;
    }
  };
  // Cheapest first: peak RSS only grows.
  for (const char* v : {"dfs", "run", "bfs"}) {
    if (variants.find(v) == std::string::npos) continue;
    void (*fn)(chan, u64, u64) = std::string(v) == "dfs"   ? skynet_dfs
                                 : std::string(v) == "run" ? skynet_run
                                                           : skynet_bfs;
    run_variant(v, fn, -1);
    run_variant(v, fn, 1);
  }
  if (!bench::has_flag(argc, argv, "--no-fiber")) {
    const result f = run_fiber(size, tasklets);
    fiber_ms = f.ms;
    t.row({"Boost.Fiber round_robin (dispatch, buffered_channel 16)", "-", bench::fmt("%.1f", f.ms),
           bench::fmt("%.1f", f.ms), "-", bench::fmt("%.2fx faster", 1000.0 / f.ms),
           std::to_string(f.rss_mib), bench::fmt("%.4f", f.faults_per_tasklet), "-", "-"});
  }
  t.print();
  const auto ss = stackless::get_stack_stats();
  std::printf("stack pool after the runs: mapped %zu, pooled %zu, in use %zu\n", ss.mapped,
              ss.pooled, ss.in_use);
  if (headline > 0) {
    std::printf("target: dfs <= 333 ms (3x faster than Go's ~1 s): %.1f ms -> %s\n", headline,
                headline <= 333.0 ? "MET" : "MISSED");
    std::printf("target: <= 0.05 faults/tasklet (dfs, best run): %.4f -> %s\n", headline_faults,
                headline_faults <= 0.05 ? "MET" : "MISSED");
    if (fiber_ms > 0) std::printf("dfs vs Boost.Fiber: %.1fx faster\n", fiber_ms / headline);
  }
  return 0;
}
