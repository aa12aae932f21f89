// stack_prefault: what does the first page of a fresh tasklet stack cost, and how much of that
// can bulk population save? An experiment for issue 15 (cold skynet): it allocates stacks the
// way runtime/src/stack_pool.cpp does - slabs of 64 stacks of 128 KiB plus a guard page, mapped
// MAP_NORESERVE, the guard installed with MADV_GUARD_INSTALL where the kernel has it - and then
// brings the top page of every stack (the one a tasklet touches first: its context and first
// frames) into memory in one of these ways:
//
//   first-touch        write one byte per stack top: one page fault each (today's runtime)
//   populate/stack     madvise(MADV_POPULATE_WRITE) on each stack's top page, one call per stack
//   populate/slab-iov  process_madvise(self, 64 iovecs, MADV_POPULATE_WRITE): one system call for
//                      the 64 stack tops of a slab (needs Linux >= 6.13 for advice other than
//                      COLD/PAGEOUT/WILLNEED/COLLAPSE on one's own process)
//   populate/contig    MADV_POPULATE_WRITE over 64 contiguous pages per call: the floor for bulk
//                      population, reachable only if stack tops were laid out contiguously
//   contig first-touch first-touch faults on 64 contiguous pages: separates the cost of the
//                      layout (one page every 132 KiB) from the cost of the fault itself
//   refault            first-touch again after MADV_DONTNEED freed the tops: the page comes
//                      from the allocator's hot lists, so what remains is the cost of the fault
//                      and of installing the page-table entry (a control)
//   retouch            writes the already-populated tops again (what a pooled, warm stack costs)
//
// After every populate mode the tops are written once more and the faults counted, so a mode that
// did not really populate shows it. Modes are interleaved repetition by repetition; each
// repetition maps fresh slabs and unmaps them afterwards. Reported per page: median and best ns,
// and minor+major faults counted by getrusage (population through get_user_pages is accounted as
// minor faults too, so a populated stack still counts one "fault").
//
// Usage: stack_prefault [--stacks=65536] [--reps=5]
#include <cstdio>

#ifdef __linux__
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../bench_util.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace {

constexpr std::size_t kStacksPerSlab = 64;   // stack_pool::stacks_per_slab
constexpr std::size_t kUsable = 128 * 1024;  // the default tasklet stack (release builds)
std::size_t g_page = 4096;
std::vector<double> g_setup_ns;  // per stack: mmap (one per slab) + MADV_GUARD_INSTALL

struct slabs {
  std::vector<char*> bases;
  std::size_t stack_bytes = 0;
  std::size_t slab_bytes = 0;
  std::vector<char*> tops;  // the top page of every stack (lowest address of that page)
  bool guard_install = false;

  slabs(std::size_t stacks, std::size_t stack_bytes_)
      : stack_bytes(stack_bytes_), slab_bytes(stack_bytes_ * kStacksPerSlab) {
    const std::size_t n = (stacks + kStacksPerSlab - 1) / kStacksPerSlab;
    const std::int64_t t0 = bench::now_ns();
    for (std::size_t i = 0; i < n; ++i) {
      void* p = ::mmap(nullptr, slab_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        std::fprintf(stderr, "stack_prefault: mmap of %zu bytes: %s\n", slab_bytes,
                     std::strerror(errno));
        std::exit(1);
      }
      char* base = static_cast<char*>(p);
      bases.push_back(base);
      for (std::size_t k = 0; k < kStacksPerSlab; ++k) {
        char* sb = base + k * stack_bytes;
        guard_install = ::madvise(sb, g_page, MADV_GUARD_INSTALL) == 0;
        tops.push_back(sb + stack_bytes - g_page);
      }
    }
    g_setup_ns.push_back(static_cast<double>(bench::now_ns() - t0) /
                         static_cast<double>(n * kStacksPerSlab));
  }
  ~slabs() {
    for (char* b : bases) ::munmap(b, slab_bytes);
  }
  slabs(const slabs&) = delete;
  slabs& operator=(const slabs&) = delete;
};

long faults_now() {
  const auto u = bench::get_usage();
  return u.minflt + u.majflt;
}

void touch_all(const std::vector<char*>& tops) {
  for (char* t : tops) *reinterpret_cast<volatile char*>(t + g_page - 64) = 1;
}

bool populate(char* addr, std::size_t len) {
  if (::madvise(addr, len, MADV_POPULATE_WRITE) == 0) return true;
  std::fprintf(stderr, "stack_prefault: madvise(MADV_POPULATE_WRITE): %s\n", std::strerror(errno));
  return false;
}

int g_pidfd = -1;
bool populate_iov(const std::vector<char*>& tops, std::size_t from, std::size_t n) {
  iovec iov[kStacksPerSlab];
  for (std::size_t i = 0; i < n; ++i) iov[i] = {tops[from + i], g_page};
  const long r = ::syscall(SYS_process_madvise, g_pidfd, iov, n, MADV_POPULATE_WRITE, 0u);
  if (r == static_cast<long>(n * g_page)) return true;
  std::fprintf(stderr, "stack_prefault: process_madvise(MADV_POPULATE_WRITE): %s\n",
               r < 0 ? std::strerror(errno) : "short");
  return false;
}

struct figure {
  double ns_per_page = 0;      // the bring-in step
  double faults_per_page = 0;  // during the bring-in step
  double later_faults = 0;     // faults per page when the tasklet then writes its top page
};

enum class mode { first_touch, per_stack, slab_iov, contig, contig_touch, refault, retouch };

// Returns false when the mode is unavailable on this kernel.
bool measure(mode m, std::size_t stacks, figure& f) {
  const std::size_t stack_bytes = kUsable + g_page;
  if (m == mode::contig || m == mode::contig_touch) {
    // stacks pages in contiguous runs of 64 (one slab-sized mapping per run of 64 pages).
    const std::size_t run = kStacksPerSlab * g_page;
    std::vector<char*> maps;
    for (std::size_t i = 0; i < stacks; i += kStacksPerSlab) {
      void* p = ::mmap(nullptr, run, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) std::exit(1);
      maps.push_back(static_cast<char*>(p));
    }
    const long f0 = faults_now();
    const std::int64_t t0 = bench::now_ns();
    bool ok = true;
    if (m == mode::contig) {
      for (char* p : maps) ok = ok && populate(p, run);
    } else {
      for (char* p : maps)
        for (std::size_t k = 0; k < kStacksPerSlab; ++k)
          *reinterpret_cast<volatile char*>(p + k * g_page) = 1;
    }
    const std::int64_t t1 = bench::now_ns();
    const long f1 = faults_now();
    for (char* p : maps)
      for (std::size_t k = 0; k < kStacksPerSlab; ++k)
        *reinterpret_cast<volatile char*>(p + k * g_page) = 1;
    const long f2 = faults_now();
    const double pages = static_cast<double>(maps.size() * kStacksPerSlab);
    f = {static_cast<double>(t1 - t0) / pages, static_cast<double>(f1 - f0) / pages,
         static_cast<double>(f2 - f1) / pages};
    for (char* p : maps) ::munmap(p, run);
    return ok;
  }
  slabs s(stacks, stack_bytes);
  const auto& tops = s.tops;
  if (m == mode::retouch || m == mode::refault) touch_all(tops);
  if (m == mode::refault)  // frees the pages again: the next touch gets a just-freed page
    for (char* b : s.bases) ::madvise(b, s.slab_bytes, MADV_DONTNEED);
  const long f0 = faults_now();
  const std::int64_t t0 = bench::now_ns();
  bool ok = true;
  switch (m) {
    case mode::first_touch:
    case mode::refault:
    case mode::retouch:
      touch_all(tops);
      break;
    case mode::per_stack:
      for (char* t : tops) ok = ok && populate(t, g_page);
      break;
    case mode::slab_iov:
      for (std::size_t i = 0; ok && i < tops.size(); i += kStacksPerSlab)
        ok = populate_iov(tops, i, std::min(kStacksPerSlab, tops.size() - i));
      break;
    case mode::contig:
    case mode::contig_touch:
      break;  // handled above
  }
  const std::int64_t t1 = bench::now_ns();
  const long f1 = faults_now();
  touch_all(tops);
  const long f2 = faults_now();
  const double pages = static_cast<double>(tops.size());
  f = {static_cast<double>(t1 - t0) / pages, static_cast<double>(f1 - f0) / pages,
       static_cast<double>(f2 - f1) / pages};
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  g_page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const long stacks = bench::flag_value(argc, argv, "--stacks", 65536);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 5));
  if (stacks < 1 || reps < 1) {
    std::fprintf(stderr, "stack_prefault: --stacks and --reps must be >= 1\n");
    return 2;
  }
  g_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0u));
  {
    slabs probe(1, kUsable + g_page);
    std::printf(
        "stack_prefault: %ld stacks of %zu KiB + guard page (%s), slabs of %zu, page %zu "
        "bytes; %d repetitions, interleaved, fresh slabs each\n",
        stacks, kUsable / 1024,
        probe.guard_install ? "MADV_GUARD_INSTALL" : "no MADV_GUARD_INSTALL: unguarded",
        kStacksPerSlab, g_page, reps);
  }
  struct row {
    const char* name;
    mode m;
    std::vector<double> ns, faults, later;
    bool ok = true;
  };
  std::vector<row> rows = {
      {"first-touch (one page fault per stack; today)", mode::first_touch, {}, {}, {}},
      {"MADV_POPULATE_WRITE, one call per stack top", mode::per_stack, {}, {}, {}},
      {"process_madvise, 64 stack tops per call", mode::slab_iov, {}, {}, {}},
      {"MADV_POPULATE_WRITE, 64 contiguous pages per call", mode::contig, {}, {}, {}},
      {"first-touch, 64 contiguous pages (layout control)", mode::contig_touch, {}, {}, {}},
      {"first-touch of a just-freed page (MADV_DONTNEED; control)", mode::refault, {}, {}, {}},
      {"re-touch a populated top (warm, pooled stack)", mode::retouch, {}, {}, {}},
  };
  for (int r = 0; r < reps; ++r)
    for (auto& rw : rows) {
      if (!rw.ok) continue;
      figure f;
      if (!measure(rw.m, static_cast<std::size_t>(stacks), f)) {
        rw.ok = false;
        continue;
      }
      rw.ns.push_back(f.ns_per_page);
      rw.faults.push_back(f.faults_per_page);
      rw.later.push_back(f.later_faults);
    }
  const double base = bench::summarize(rows[0].ns).median;
  bench::table t({"bring the top page in by", "median ns/page", "best ns/page", "vs first-touch",
                  "faults/page (getrusage)", "faults/page at first use"});
  for (const auto& rw : rows) {
    if (!rw.ok) {
      t.row({rw.name, "unavailable", "-", "-", "-", "-"});
      continue;
    }
    const auto s = bench::summarize(rw.ns);
    t.row({rw.name, bench::fmt("%.0f", s.median), bench::fmt("%.0f", s.best),
           bench::ratio(s.median, base), bench::fmt("%.3f", bench::summarize(rw.faults).median),
           bench::fmt("%.3f", bench::summarize(rw.later).median)});
    bench::chart_bar("stack_prefault",
                     "bringing in a fresh stack's top page, median: time / first-touch fault's, "
                     "same run (lower is better)",
                     rw.name, s.median / base, bench::fmt("%.0f ns", s.median));
  }
  t.print();
  const auto setup = bench::summarize(g_setup_ns);
  std::printf(
      "setting a stack up before any touch (mmap per %zu stacks + MADV_GUARD_INSTALL "
      "each): median %.0f ns, best %.0f ns per stack\n",
      kStacksPerSlab, setup.median, setup.best);
  if (g_pidfd >= 0) ::close(g_pidfd);
  return 0;
}

#else
int main() {
  std::puts("stack_prefault: Linux only (MADV_POPULATE_WRITE, process_madvise)");
  return 0;
}
#endif
