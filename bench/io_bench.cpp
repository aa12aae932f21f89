// io_bench: stackless::io against fio and plain threads on the same files, in the same run.
//
//   1. 4 KiB random reads by 64 tasklets through file::pread, page cache cold (posix_fadvise
//      DONTNEED first) and warm, beside fio io_uring iodepth 64 and fio psync (--invalidate=0
//      for warm), on both backends;
//   2. the seed's copy workload scaled up, page-cache warm: 8 x 64 MiB and 20 x 1 MiB copies in
//      128 KiB chunks by tasklets, beside one thread per file with blocking read/write and one
//      sequential blocking copy.
// Each stackless figure is taken in a forked child with STACKLESS_IO_BACKEND set, because the
// backend is chosen once per process. Usage: io_bench [scratch-dir] (default /tmp).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <stackless/stackless.hpp>

#include "bench_util.hpp"

namespace {

namespace fs = std::filesystem;
using namespace stackless;

constexpr std::size_t kMiB = 1 << 20;
constexpr std::size_t kRandFile = 256 * kMiB;
constexpr int kTasklets = 64;
constexpr std::size_t kChunk = 128 * 1024;

void make_file(const fs::path& p, std::size_t size) {
  if (fs::exists(p) && fs::file_size(p) == size) return;
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char> buf(kMiB);
  std::mt19937_64 rng(42);
  for (std::size_t done = 0; done < size; done += buf.size()) {
    for (auto& c : buf) c = static_cast<char>(rng());
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) std::abort();
  }
  ::fsync(fd);
  ::close(fd);
}

void drop_cache(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

void warm(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  std::vector<char> buf(kMiB);
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
}

// run_in_child(backend, f): f() in a forked child with the backend forced.
template <class F>
double run_in_child(const char* backend, F&& f) {
  return bench::in_child("STACKLESS_IO_BACKEND", backend, std::forward<F>(f));
}

// ---- 1. random reads ---------------------------------------------------------------------------
double stackless_randread(const fs::path& file, int reads_per_tasklet) {
  io::file f = io::open(file, "rb", 0);
  const std::int64_t t0 = bench::now_ns();
  for (int i = 0; i < kTasklets; ++i)
    tasklet([&f, i, reads_per_tasklet] {
      std::mt19937_64 rng(static_cast<unsigned>(i) + 1);
      alignas(4096) char buf[4096];
      for (int k = 0; k < reads_per_tasklet; ++k) {
        const std::uint64_t off = (rng() % (kRandFile / 4096)) * 4096;
        if (f.pread(std::span(buf), off) != sizeof buf) std::abort();
      }
    })();
  run();
  const double secs = static_cast<double>(bench::now_ns() - t0) * 1e-9;
  return kTasklets * reads_per_tasklet / secs;  // IOPS
}

double fio_iops(const fs::path& file, const char* engine, int depth, bool cold, int ios) {
  std::string cmd = "fio --name=b --filename=" + file.string() +
                    " --rw=randread --bs=4k --size=" + std::to_string(kRandFile) +
                    " --io_size=" + std::to_string(static_cast<long>(ios) * 4096) +
                    " --ioengine=" + engine + " --iodepth=" + std::to_string(depth) +
                    " --invalidate=" + (cold ? "1" : "0") +
                    " --output-format=terse --terse-version=3 2>/dev/null";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  ::pclose(pipe);
  // terse v3: field 8 (1-based) is the read IOPS.
  std::size_t pos = 0;
  for (int field = 1; field < 8 && pos != std::string::npos; ++field) pos = out.find(';', pos) + 1;
  return pos ? std::atof(out.c_str() + pos) : -1;
}

// ---- 2. copies ----------------------------------------------------------------------------------
void blocking_copy(const fs::path& from, const fs::path& to) {
  int in = ::open(from.c_str(), O_RDONLY);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char> buf(kChunk);
  for (ssize_t n; (n = ::read(in, buf.data(), buf.size())) > 0;)
    if (::write(out, buf.data(), static_cast<std::size_t>(n)) != n) std::abort();
  ::close(in);
  ::close(out);
}

struct copy_set {
  fs::path src;
  int count;
  std::size_t size;
};

double gbps(const std::vector<copy_set>& sets, std::int64_t ns) {
  double bytes = 0;
  for (auto& s : sets) bytes += static_cast<double>(s.size) * s.count;
  return bytes / static_cast<double>(ns);
}

fs::path dst(const fs::path& dir, std::size_t set, int i) {
  return dir / ("copy-" + std::to_string(set) + "-" + std::to_string(i));
}

double stackless_copy(const fs::path& dir, const std::vector<copy_set>& sets) {
  const std::int64_t t0 = bench::now_ns();
  for (std::size_t s = 0; s < sets.size(); ++s)
    for (int i = 0; i < sets[s].count; ++i)
      tasklet([from = sets[s].src, to = dst(dir, s, i)] {
        io::file in = io::open(from, "rb", 0);
        io::file out = io::open(to, "wb", 0);
        std::vector<std::byte> buf(kChunk);
        for (std::size_t n; (n = in.readinto(std::span(buf))) > 0;)
          out.write(std::span<const std::byte>(buf.data(), n));
      })();
  run();
  return gbps(sets, bench::now_ns() - t0);
}

double threads_copy(const fs::path& dir, const std::vector<copy_set>& sets) {
  const std::int64_t t0 = bench::now_ns();
  std::vector<std::thread> ts;
  for (std::size_t s = 0; s < sets.size(); ++s)
    for (int i = 0; i < sets[s].count; ++i)
      ts.emplace_back(blocking_copy, sets[s].src, dst(dir, s, i));
  for (auto& t : ts) t.join();
  return gbps(sets, bench::now_ns() - t0);
}

double sequential_copy(const fs::path& dir, const std::vector<copy_set>& sets) {
  const std::int64_t t0 = bench::now_ns();
  for (std::size_t s = 0; s < sets.size(); ++s)
    for (int i = 0; i < sets[s].count; ++i) blocking_copy(sets[s].src, dst(dir, s, i));
  return gbps(sets, bench::now_ns() - t0);
}

void clean_copies(const fs::path& dir, const std::vector<copy_set>& sets) {
  for (std::size_t s = 0; s < sets.size(); ++s)
    for (int i = 0; i < sets[s].count; ++i) fs::remove(dst(dir, s, i));
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path base = argc > 1 ? argv[1] : "/tmp";
  const fs::path dir = base / "stackless-io-bench";
  fs::create_directories(dir);
  const fs::path rnd = dir / "random.bin";
  make_file(rnd, kRandFile);
  const char* backends[] = {"uring", "threadpool"};

  std::printf("== 4 KiB random reads, %d tasklets via file::pread, %zu MiB file (IOPS)\n",
              kTasklets, kRandFile / kMiB);
  for (bool cold : {true, false}) {
    const int ios = cold ? 16384 : 262144;
    auto prep = [&] { cold ? drop_cache(rnd) : warm(rnd); };
    prep();
    const double fio_uring = fio_iops(rnd, "io_uring", 64, cold, ios);
    prep();
    const double fio_psync = fio_iops(rnd, "psync", 1, cold, ios);
    std::printf("%-5s fio io_uring qd64 %10.0f   fio psync %10.0f\n", cold ? "cold" : "warm",
                fio_uring, fio_psync);
    for (const char* b : backends) {
      prep();
      const double v = run_in_child(b, [&] { return stackless_randread(rnd, ios / kTasklets); });
      std::printf("      stackless %-10s %10.0f   = %.2fx fio io_uring, %.2fx fio psync\n", b, v,
                  v / fio_uring, v / fio_psync);
    }
  }

  const fs::path big = dir / "src-64m.bin", small = dir / "src-1m.bin";
  make_file(big, 64 * kMiB);
  make_file(small, kMiB);
  warm(big);
  warm(small);
  const std::vector<copy_set> sets = {{big, 8, 64 * kMiB}, {small, 20, kMiB}};
  std::printf(
      "\n== copies, page cache warm: 8 x 64 MiB + 20 x 1 MiB, %zu KiB chunks (GB/s, best "
      "of 3)\n",
      kChunk / 1024);
  auto best = [&](auto f) {
    return bench::repeat(3,
                         [&] {
                           const double v = f();
                           clean_copies(dir, sets);
                           return -v;
                         })
               .best *
           -1;
  };
  const double thr = best([&] { return threads_copy(dir, sets); });
  const double seq = best([&] { return sequential_copy(dir, sets); });
  std::printf(
      "thread per file (blocking read/write) %6.2f\nsequential blocking copy            "
      "  %6.2f\n",
      thr, seq);
  for (const char* b : backends) {
    const double v =
        best([&] { return run_in_child(b, [&] { return stackless_copy(dir, sets); }); });
    std::printf("stackless %-10s                  %6.2f   = %.2fx threads, %.2fx sequential\n", b,
                v, v / thr, v / seq);
  }
  fs::remove_all(dir);
  return 0;
}
