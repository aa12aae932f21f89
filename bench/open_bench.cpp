// open_bench: opening, reading and closing many small files - the before/after for routing
// open and close through the poll tasklet (issue 15: today io::open and file::close are plain
// blocking system calls, so 64 tasklets opening files take turns on one thread).
//
// Workload: 10,000 files of 1 KiB in one directory (made once, page cache and dentry cache warm;
// run it on a slow file system - NFS, FUSE - by passing a directory there). Contenders, same run,
// each repetition interleaved with the others:
//   stackless   64 tasklets, each opens, reads (file::read() to the end) and closes every 64th
//               file, unbuffered; once per I/O backend (STACKLESS_IO_BACKEND, in a forked child,
//               because the backend is chosen once per process)
//   blocking    one thread: open(2), read(2), close(2) in a loop (the baseline)
//   threads     a thread per file (at most 64 alive at once, the tasklets' concurrency)
// Figures: files per second, median and best; ratio of the medians to the blocking loop's.
//
// Usage: open_bench [--files=10000] [--reps=5] [scratch-dir] (default /tmp)
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <stackless/stackless.hpp>

#include "bench_util.hpp"

namespace {

namespace fs = std::filesystem;
using namespace stackless;

constexpr int kTasklets = 64;
constexpr std::size_t kFileBytes = 1024;

fs::path file_path(const fs::path& dir, int i) {
  char name[32];
  std::snprintf(name, sizeof name, "f%05d", i);
  return dir / name;
}

void make_files(const fs::path& dir, int n) {
  fs::create_directories(dir);
  const std::string body(kFileBytes, 'x');
  for (int i = 0; i < n; ++i) {
    const fs::path p = file_path(dir, i);
    std::error_code ec;
    if (fs::file_size(p, ec) == kFileBytes) continue;
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::write(fd, body.data(), body.size()) != static_cast<ssize_t>(body.size())) {
      std::fprintf(stderr, "open_bench: cannot write %s: %s\n", p.c_str(), std::strerror(errno));
      std::exit(1);
    }
    ::close(fd);
  }
}

// Reads one file with blocking calls; returns its size.
std::size_t blocking_read(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "open_bench: open %s: %s\n", p.c_str(), std::strerror(errno));
    std::exit(1);
  }
  char buf[4096];
  std::size_t total = 0;
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) total += static_cast<std::size_t>(n);
  ::close(fd);
  return total;
}

void check_total(std::size_t total, int n, const char* who) {
  if (total != static_cast<std::size_t>(n) * kFileBytes) {
    std::fprintf(stderr, "open_bench: %s read %zu bytes, want %zu\n", who, total,
                 static_cast<std::size_t>(n) * kFileBytes);
    std::exit(1);
  }
}

double files_per_sec(int n, std::int64_t ns) {
  return static_cast<double>(n) / (static_cast<double>(ns) * 1e-9);
}

double blocking_loop(const fs::path& dir, int n) {
  const std::int64_t t0 = bench::now_ns();
  std::size_t total = 0;
  for (int i = 0; i < n; ++i) total += blocking_read(file_path(dir, i));
  const std::int64_t t1 = bench::now_ns();
  check_total(total, n, "the blocking loop");
  return files_per_sec(n, t1 - t0);
}

double thread_per_file(const fs::path& dir, int n) {
  const std::int64_t t0 = bench::now_ns();
  std::vector<std::size_t> sizes(static_cast<std::size_t>(n));
  std::deque<std::thread> alive;
  for (int i = 0; i < n; ++i) {
    if (alive.size() == kTasklets) {
      alive.front().join();
      alive.pop_front();
    }
    alive.emplace_back([&dir, &sizes, i] {
      sizes[static_cast<std::size_t>(i)] = blocking_read(file_path(dir, i));
    });
  }
  for (auto& t : alive) t.join();
  const std::int64_t t1 = bench::now_ns();
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  check_total(total, n, "a thread per file");
  return files_per_sec(n, t1 - t0);
}

double stackless_tasklets(const fs::path& dir, int n) {
  std::size_t total = 0;
  const std::int64_t t0 = bench::now_ns();
  for (int k = 0; k < kTasklets; ++k)
    tasklet([&dir, &total, n, k] {
      for (int i = k; i < n; i += kTasklets) {
        io::file f = io::open(file_path(dir, i), "rb", 0);
        total += f.read().size();
        f.close();
      }
    })();
  run();
  const std::int64_t t1 = bench::now_ns();
  check_total(total, n, "stackless");
  return files_per_sec(n, t1 - t0);
}

// f() in a forked child with STACKLESS_IO_BACKEND=backend (chosen once per process).
template <class F>
double in_child(const char* backend, F&& f) {
  const double v = bench::in_child("STACKLESS_IO_BACKEND", backend, std::forward<F>(f));
  if (v < 0) {
    std::fprintf(stderr, "open_bench: the %s child failed\n", backend);
    std::exit(1);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const long files = bench::flag_value(argc, argv, "--files", 10'000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 5));
  if (files < 1 || files > 1'000'000 || reps < 1) {
    std::fprintf(stderr, "open_bench: --files must be 1..1000000 and --reps >= 1\n");
    return 2;
  }
  fs::path base = "/tmp";
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-') base = argv[i];
  const int n = static_cast<int>(files);
  const fs::path dir = base / "stackless-open-bench";
  make_files(dir, n);
  blocking_loop(dir, n);  // warms the dentry and page caches for everyone

  struct contender {
    const char* name;
    std::vector<double> v;
  };
  contender cs[] = {{"blocking loop, one thread (baseline)", {}},
                    {"a thread per file, 64 at a time", {}},
                    {"stackless, 64 tasklets, io_uring backend", {}},
                    {"stackless, 64 tasklets, thread-pool backend", {}}};
  for (int r = 0; r < reps; ++r) {
    cs[0].v.push_back(blocking_loop(dir, n));
    cs[1].v.push_back(thread_per_file(dir, n));
    cs[2].v.push_back(in_child("uring", [&] { return stackless_tasklets(dir, n); }));
    cs[3].v.push_back(in_child("threadpool", [&] { return stackless_tasklets(dir, n); }));
  }
  std::printf(
      "open_bench: open + read + close of %d files of %zu bytes in %s, page cache warm; "
      "%d repetitions, interleaved\n",
      n, kFileBytes, dir.c_str(), reps);
  bench::table t({"contender", "median files/s", "best files/s", "median vs blocking loop"});
  const double base_med = bench::summarize(cs[0].v).median;
  for (const auto& c : cs) {
    const auto s = bench::summarize(c.v);
    // Higher is better here; the best rate is the maximum.
    const double best = *std::max_element(c.v.begin(), c.v.end());
    t.row({c.name, bench::fmt("%.0f", s.median), bench::fmt("%.0f", best),
           bench::ratio(s.median, base_med)});
    // Charted as time per file relative to the loop's (lower is better, like the others).
    bench::chart_bar("open",
                     "open+read+close of small files, median: time per file / blocking loop's, "
                     "same run (lower is better)",
                     c.name, base_med / s.median, bench::fmt("%.1f us/file", 1e6 / s.median));
  }
  t.print();
  std::printf(
      "io::open, truncate and file::close go through the poller (io_uring OPENAT/CLOSE, or "
      "the pool's workers): the 64 tasklets overlap them\n");
  return 0;
}
