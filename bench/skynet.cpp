// skynet: a 10-ary tree of 1,111,111 tasklets; each of the 1,000,000 leaves sends its number up
// a channel, each inner node sums its ten children and sends the sum to its parent; the root
// total must be 499999500000.
//
// The headline is the program every peer runs (github.com/atemerev/skynet): each inner node
// spawns its ten children, then receives ten results. With Stackless's FIFO run queue and the
// default preference (-1) the tree expands breadth-first, so ~1.1M tasklets are alive at once.
// Every repetition runs in a fresh process (this binary re-executes itself), so every figure is
// cold: a fresh stack pool, fresh heap, every stack page touched for the first time.
//
// Contenders (--variants, in this order, each repetition interleaved with the others so that
// noise on a shared machine hits them alike):
//   standard  spawn ten children (tasklet(f)(args): appended to the run queue), then receive
//             ten times. The headline. ("bfs" is accepted as its old name.)
//   run       create each child and start it at once with t.run() (Stackless tasklet.run()),
//             then receive ten times. A variant: it changes the program.
//   dfs       create one child and receive its result before creating the next (one subtree at
//             a time): O(depth) tasklets alive, stacks recycled hot. A variant: no peer runs it.
// Each stackless contender runs once per --prefs value (default -1, the Stackless default).
// Baselines, same run, same cold-process treatment:
//   Boost.Fiber round_robin, as Boost's performance/ example (launch::dispatch,
//   buffered_channel(16), fixedsize_stack of 16 KiB: the example's 8 KiB overflows with this
//   toolchain). Skip it with --no-fiber.
//   Go (bench/go/skynet.go, unbuffered channels, GOMAXPROCS=1) when --go=PATH names its binary;
//   scripts/bench.sh builds it when `go` is installed.
//
// Figures per contender: median and best wall time of the tree (process start-up excluded),
// peak RSS of the whole process (wait4), page faults (minor + major, getrusage) during the tree
// per tasklet, and for stackless the same tree run a second time in the same process ("warm":
// stacks pooled) - reported beside the cold figure, never instead of it; the peak number of
// tasklets alive (each holds a stack today) and of tasklets started and not yet returned (what
// lazily allocated stacks would need).
//
// Usage: skynet [--variants=standard,dfs] [--prefs=-1] [--reps=3] [--size=1000000]
//               [--no-fiber] [--go=PATH]
// (--child=KIND:PREF is the internal per-process mode: it prints one line of figures.)
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

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

// Tasklets that have started and not yet returned. If a tasklet got its stack only when it first
// ran (one of the levers issue 15 names), the peak of this is the most stacks the tree would hold
// at once; measured here with today's scheduler, without changing it.
std::size_t g_started = 0;
std::size_t g_peak_started = 0;
struct started_guard {
  started_guard() noexcept { g_peak_started = std::max(g_peak_started, ++g_started); }
  ~started_guard() { --g_started; }
  started_guard(const started_guard&) = delete;
  started_guard& operator=(const started_guard&) = delete;
};

chan make_chan() {
  chan c;
  c.set_preference(g_pref);
  return c;
}

void skynet_standard(chan c, u64 num, u64 size) {
  const started_guard started;
  if (size == 1) {
    note_alive();
    c.send(num);
    return;
  }
  chan rc = make_chan();
  const u64 sub = size / kDiv;
  for (u64 i = 0; i < kDiv; ++i) stackless::tasklet{skynet_standard}(rc, num + i * sub, sub);
  u64 sum = 0;
  for (u64 i = 0; i < kDiv; ++i) sum += rc.receive();
  c.send(sum);
}

void skynet_run(chan c, u64 num, u64 size) {
  const started_guard started;
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
  const started_guard started;
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

// What one child process reports (one line on its stdout).
struct sample {
  double ms = 0;        // the tree, cold
  double warm_ms = -1;  // the same tree again in the same process (stackless only)
  long faults = 0;      // minor + major page faults during the cold tree
  long peak_alive = -1;
  long peak_started = -1;  // stackless only: see started_guard
};

void check_sum(u64 sum, u64 size, const char* who) {
  const u64 want = size * (size - 1) / 2;
  if (sum != want) {
    std::fprintf(stderr, "skynet: %s: wrong sum %llu (want %llu)\n", who,
                 static_cast<unsigned long long>(sum), static_cast<unsigned long long>(want));
    std::exit(1);
  }
}

// One tree; returns wall ms and adds the faults it took to *faults.
double stackless_tree(void (*root_fn)(chan, u64, u64), u64 size, long* faults) {
  g_peak_alive = 0;
  g_peak_started = 0;
  const auto u0 = bench::get_usage();
  const std::int64_t t0 = bench::now_ns();
  chan rc = make_chan();
  stackless::tasklet{root_fn}(rc, u64{0}, size);
  const u64 sum = rc.receive();  // main blocks; the tree runs
  const std::int64_t t1 = bench::now_ns();
  const auto u1 = bench::get_usage();
  check_sum(sum, size, "stackless");
  stackless::run();  // lets finished-but-runnable senders end
  if (stackless::alive_tasklets() != 0) {
    std::fprintf(stderr, "skynet: %zu tasklets still alive\n", stackless::alive_tasklets());
    std::exit(1);
  }
  if (faults) *faults = (u1.minflt - u0.minflt) + (u1.majflt - u0.majflt);
  return static_cast<double>(t1 - t0) / 1e6;
}

sample run_stackless(void (*root_fn)(chan, u64, u64), u64 size) {
  sample s;
  s.ms = stackless_tree(root_fn, size, &s.faults);
  s.peak_alive = static_cast<long>(g_peak_alive);
  s.peak_started = static_cast<long>(g_peak_started);
  s.warm_ms = stackless_tree(root_fn, size, nullptr);
  return s;
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

sample run_fiber(u64 size) {
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
  check_sum(sum, size, "Boost.Fiber");
  sample s;
  s.ms = static_cast<double>(t1 - t0) / 1e6;
  s.faults = (u1.minflt - u0.minflt) + (u1.majflt - u0.majflt);
  return s;
}

using tree_fn = void (*)(chan, u64, u64);
tree_fn stackless_fn(std::string_view kind) {
  if (kind == "standard" || kind == "bfs") return skynet_standard;
  if (kind == "run") return skynet_run;
  if (kind == "dfs") return skynet_dfs;
  return nullptr;
}

// The child: runs one contender once and prints "ms warm_ms faults peak_alive peak_started"
// (bench/go/skynet.go prints the first four).
int child_main(std::string_view spec, u64 size) {
  const auto colon = spec.find(':');
  const std::string kind(spec.substr(0, colon));
  if (colon != std::string_view::npos)
    g_pref = std::atoi(std::string(spec.substr(colon + 1)).c_str());
  sample s;
  if (kind == "fiber") {
    s = run_fiber(size);
  } else if (tree_fn fn = stackless_fn(kind)) {
    s = run_stackless(fn, size);
  } else {
    std::fprintf(stderr, "skynet: unknown contender '%s'\n", kind.c_str());
    return 2;
  }
  std::printf("%.3f %.3f %ld %ld %ld\n", s.ms, s.warm_ms, s.faults, s.peak_alive, s.peak_started);
  return 0;
}

// ---- the parent: one fresh process per repetition ----------------------------------------
struct cold_run {
  sample s;
  long maxrss_kib = 0;  // the whole child process's peak RSS (wait4)
};

// Runs argv (argv[0] is the program) with GOMAXPROCS=1, reads the child's figure line.
bool spawn(const std::vector<std::string>& args, cold_run& out) {
  int fds[2];
  if (::pipe(fds) != 0) {
    std::perror("skynet: pipe");
    return false;
  }
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("skynet: fork");
    return false;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::setenv("GOMAXPROCS", "1", 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "skynet: cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string text;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  rusage ru{};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFSIGNALED(status))
      std::fprintf(stderr, "\nskynet: %s %s was killed by signal %d\n", args[0].c_str(),
                   args.size() > 2 ? args[2].c_str() : "", WTERMSIG(status));
    else
      std::fprintf(stderr, "\nskynet: %s %s exited with %d\n", args[0].c_str(),
                   args.size() > 2 ? args[2].c_str() : "", WEXITSTATUS(status));
    return false;
  }
  if (std::sscanf(text.c_str(), "%lf %lf %ld %ld %ld", &out.s.ms, &out.s.warm_ms, &out.s.faults,
                  &out.s.peak_alive, &out.s.peak_started) < 4) {
    std::fprintf(stderr, "skynet: %s printed no figures: '%s'\n", args[0].c_str(), text.c_str());
    return false;
  }
  out.maxrss_kib = ru.ru_maxrss;
  return true;
}

struct contender {
  std::string label;
  std::string kind;  // standard, run, dfs, fiber, go
  int pref = 0;
  std::vector<std::string> args;
  std::vector<cold_run> runs;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t b = 0;
  while (b <= s.size()) {
    const std::size_t e = std::min(s.find(',', b), s.size());
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

std::string flag_string(int argc, char** argv, std::string_view name, std::string dflt) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=')
      return std::string(a.substr(name.size() + 1));
  }
  return dflt;
}

}  // namespace

int main(int argc, char** argv) {
  const long size_arg = bench::flag_value(argc, argv, "--size", 1'000'000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 3));
  bool power_of_ten = size_arg >= 10;
  for (long v = size_arg; power_of_ten && v > 1; v /= 10) power_of_ten = v % 10 == 0;
  if (!power_of_ten || reps < 1) {
    std::fprintf(stderr,
                 "skynet: --size must be a power of ten >= 10 (got %ld) and --reps >= 1 "
                 "(got %d)\n",
                 size_arg, reps);
    return 2;
  }
  const u64 size = static_cast<u64>(size_arg);
  const std::string child = flag_string(argc, argv, "--child", "");
  if (!child.empty()) return child_main(child, size);

  u64 tasklets = 0;
  for (u64 s = size; s >= 1; s /= kDiv) {
    tasklets += size / s;
    if (s == 1) break;
  }
  // The children run this very binary (even if it is rebuilt meanwhile): /proc/self/exe.
  const std::string exe = "/proc/self/exe";
  const std::string size_flag = "--size=" + std::to_string(size);

  std::vector<contender> cs;
  const std::string go = flag_string(argc, argv, "--go", "");
  if (!go.empty())
    cs.push_back({"Go goroutines, GOMAXPROCS=1 (baseline)", "go", 0, {go, size_flag}, {}});
  if (!bench::has_flag(argc, argv, "--no-fiber"))
    cs.push_back({"Boost.Fiber round_robin, buffered_channel(16) (baseline)",
                  "fiber",
                  0,
                  {exe, size_flag, "--child=fiber"},
                  {}});
  const auto prefs = split(flag_string(argc, argv, "--prefs", "-1"));
  for (const std::string& v : split(flag_string(argc, argv, "--variants", "standard,dfs"))) {
    const std::string kind = v == "bfs" ? "standard" : v;
    if (!stackless_fn(kind)) {
      std::fprintf(stderr, "skynet: unknown variant '%s' (standard, run, dfs)\n", v.c_str());
      return 2;
    }
    for (const std::string& p : prefs) {
      if (p != "-1" && p != "0" && p != "1") {
        std::fprintf(stderr, "skynet: --prefs takes -1, 0 and 1 (got '%s')\n", p.c_str());
        return 2;
      }
      const int pref = std::atoi(p.c_str());
      const std::string label = kind == "standard" ? "stackless standard (spawn 10, receive 10)"
                                : kind == "run"    ? "stackless variant: run (t.run() each child)"
                                                   : "stackless variant: dfs (one child at a time)";
      cs.push_back({label, kind, pref, {exe, size_flag, "--child=" + kind + ":" + p}, {}});
    }
  }

  std::printf(
      "skynet: %llu leaves, %llu tasklets, sum %llu; %d repetitions, each in a fresh process "
      "(cold), interleaved\n",
      static_cast<unsigned long long>(size), static_cast<unsigned long long>(tasklets),
      static_cast<unsigned long long>(size * (size - 1) / 2), reps);
  std::fflush(stdout);
  for (int r = 0; r < reps; ++r)
    for (auto& c : cs) {
      cold_run cr;
      std::fprintf(stderr, "skynet: rep %d/%d %s pref %d ...", r + 1, reps, c.kind.c_str(), c.pref);
      if (!spawn(c.args, cr)) return 1;
      std::fprintf(stderr, " %.1f ms\n", cr.s.ms);
      c.runs.push_back(cr);
    }

  struct summary {
    bench::stats ms, warm;
    double rss_mib = 0, faults = 0;
    long peak_alive = -1, peak_started = -1;
  };
  auto summarize = [&](const contender& c) {
    std::vector<double> ms, warm, rss, faults;
    for (const auto& r : c.runs) {
      ms.push_back(r.s.ms);
      if (r.s.warm_ms >= 0) warm.push_back(r.s.warm_ms);
      rss.push_back(static_cast<double>(r.maxrss_kib) / 1024.0);
      faults.push_back(static_cast<double>(r.s.faults) / static_cast<double>(tasklets));
    }
    summary s;
    s.ms = bench::summarize(ms);
    s.warm = bench::summarize(warm);
    s.rss_mib = bench::summarize(rss).median;
    s.faults = bench::summarize(faults).median;
    s.peak_alive = c.runs.front().s.peak_alive;
    s.peak_started = c.runs.front().s.peak_started;
    return s;
  };
  double go_med = 0, fiber_med = 0;
  for (const auto& c : cs) {
    if (c.kind == "go") go_med = summarize(c).ms.median;
    if (c.kind == "fiber") fiber_med = summarize(c).ms.median;
  }

  bench::table t({"contender", "pref", "median ms", "best ms", "median / Go", "median / Fiber",
                  "peak RSS MiB", "faults/tasklet", "warm median ms", "peak alive",
                  "peak started"});
  const double base = go_med > 0 ? go_med : fiber_med;
  const std::string base_name = go_med > 0 ? "Go (GOMAXPROCS=1)" : "Boost.Fiber";
  const std::string chart_title = "skynet, " + std::to_string(size) +
                                  " leaves, cold process, median: time / " + base_name +
                                  "'s, same run (lower is better)";
  const summary* head = nullptr;
  std::vector<summary> sums;
  sums.reserve(cs.size());
  for (const auto& c : cs) {
    sums.push_back(summarize(c));
    const summary& s = sums.back();
    const bool sl = c.kind != "go" && c.kind != "fiber";
    t.row({c.label, sl ? std::to_string(c.pref) : "-", bench::fmt("%.1f", s.ms.median),
           bench::fmt("%.1f", s.ms.best), go_med > 0 ? bench::ratio(s.ms.median, go_med) : "-",
           fiber_med > 0 ? bench::ratio(s.ms.median, fiber_med) : "-",
           bench::fmt("%.0f", s.rss_mib), bench::fmt("%.4f", s.faults),
           s.warm.median > 0 ? bench::fmt("%.1f", s.warm.median) : "-",
           s.peak_alive >= 0 ? std::to_string(s.peak_alive) : "-",
           s.peak_started >= 0 ? std::to_string(s.peak_started) : "-"});
    if (c.kind == "standard" && c.pref == -1 && !head) head = &s;
    if (base > 0) {
      std::string bar = c.kind == "go"         ? "Go, GOMAXPROCS=1"
                        : c.kind == "fiber"    ? "Boost.Fiber round_robin"
                        : c.kind == "standard" ? "stackless standard"
                                               : "stackless " + c.kind + " (variant)";
      if (sl && prefs.size() > 1) bar += " pref " + std::to_string(c.pref);
      bench::chart_bar("skynet", chart_title, bar, s.ms.median / base,
                       bench::fmt("%.0f ms", s.ms.median));
    }
  }
  t.print();
  std::printf(
      "page faults are minor + major during the tree (getrusage); peak RSS is the whole "
      "child process's (wait4); warm = the same tree again in the same process; peak alive = "
      "tasklets alive at once (each holds a stack today); peak started = those started and not "
      "returned (the stacks needed if a tasklet got one when it first ran)\n");
  if (head) {
    std::printf(
        "headline: skynet standard shape, preference -1, cold, median of %d: %.1f ms "
        "(best %.1f ms), peak RSS %.0f MiB, %.4f faults/tasklet\n",
        reps, head->ms.median, head->ms.best, head->rss_mib, head->faults);
    if (go_med > 0)
      std::printf("target: <= Go's median in the same run (%.1f ms): %.2fx -> %s\n", go_med,
                  head->ms.median / go_med, head->ms.median <= go_med ? "MET" : "MISSED");
    if (fiber_med > 0)
      std::printf("vs Boost.Fiber's median in the same run (%.1f ms): %.2fx\n", fiber_med,
                  head->ms.median / fiber_med);
    if (size == 1'000'000) {  // the RSS target is for the full tree
      std::printf("target: peak RSS <= 1024 MiB: %.0f MiB -> %s\n", head->rss_mib,
                  head->rss_mib <= 1024 ? "MET" : "MISSED");
    } else {
      std::printf("(the peak RSS target, <= 1024 MiB, is for --size=1000000)\n");
    }
    std::printf("target: <= 0.05 faults/tasklet: %.4f -> %s\n", head->faults,
                head->faults <= 0.05 ? "MET" : "MISSED");
  }
  return 0;
}
