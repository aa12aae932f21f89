// read_all_bench: io::file::read() of a whole file against reading the same file in chunks, in
// the same run (issue 12, item 5: a whole-file read must cost what a chunked one costs).
//   whole     f.read()                                 one string of the file's size
//   chunks+   f.read(256 KiB) appended to one string   the same result, built by the caller
//   chunks    f.read(256 KiB), each chunk dropped      no result kept: the floor
// The file is written once and read once before timing (page cache warm). Each figure is the
// median and the best of --reps runs. Usage: read_all_bench [--mib=N] [--reps=N] [dir]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <stackless/stackless.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_of(auto&& body) {
  const auto t0 = clock_type::now();
  body();
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct figures {
  double median, best;
};
figures summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front()};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t mib = 64;
  int reps = 5;
  std::filesystem::path dir = "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--mib=", 0) == 0)
      mib = std::strtoul(a.c_str() + 6, nullptr, 10);
    else if (a.rfind("--reps=", 0) == 0)
      reps = std::atoi(a.c_str() + 7);
    else
      dir = a;
  }
  const auto path = dir / "stackless-read-all-bench.bin";
  {
    auto f = stackless::io::open(path, "wb");
    const std::string block(1 << 20, 'r');
    for (std::size_t i = 0; i < mib; ++i) f.write(block);
  }
  const std::size_t size = mib << 20;
  constexpr std::size_t chunk = 256 * 1024;
  std::vector<double> whole, appended, dropped;
  for (int r = 0; r < reps + 1; ++r) {  // the first round warms the cache and is not counted
    std::size_t got[3] = {};
    const double w = seconds_of([&] {
      auto f = stackless::io::open(path, "rb");
      got[0] = f.read().size();
    });
    const double a = seconds_of([&] {
      auto f = stackless::io::open(path, "rb");
      std::string all;
      for (std::string c = f.read(chunk); !c.empty(); c = f.read(chunk)) all += c;
      got[1] = all.size();
    });
    const double d = seconds_of([&] {
      auto f = stackless::io::open(path, "rb");
      for (std::string c = f.read(chunk); !c.empty(); c = f.read(chunk)) got[2] += c.size();
    });
    if (got[0] != size || got[1] != size || got[2] != size) {
      std::fprintf(stderr, "read_all_bench: short read\n");
      return 1;
    }
    if (r == 0) continue;
    whole.push_back(w);
    appended.push_back(a);
    dropped.push_back(d);
  }
  std::filesystem::remove(path);
  const figures fw = summarise(whole), fa = summarise(appended), fd = summarise(dropped);
  std::printf("read_all_bench: %zu MiB, backend %s, %d reps (median / best)\n", mib,
              std::string(stackless::io::backend_name()).c_str(), reps);
  std::printf("  whole    f.read()                  %8.4f s / %8.4f s\n", fw.median, fw.best);
  std::printf("  chunks+  f.read(256K) appended     %8.4f s / %8.4f s   whole/this %.2fx\n",
              fa.median, fa.best, fw.median / fa.median);
  std::printf("  chunks   f.read(256K) dropped      %8.4f s / %8.4f s   whole/this %.2fx\n",
              fd.median, fd.best, fw.median / fd.median);
}
