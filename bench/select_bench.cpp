// select_bench: a two-channel select round trip, stackless::select against Go's select, in the
// same run (issue 16). A round trip: ping sends i with select(on_send(a), on_send(b)), pong
// receives it with select(on_receive(a), on_receive(b)) and sends it back the same way on c/d,
// and ping receives it with a two-case select: four selects, two rendezvous. The same round trip
// with plain send/receive on one channel each way is the reference for what select costs.
// Go (bench/go/select.go, GOMAXPROCS=1, unbuffered channels) runs when --go=PATH names its
// binary; scripts/bench.sh builds it when `go` is installed.
// Best (and median) of --reps runs, in ns per round trip.
// Usage: select_bench [--n=1000000] [--reps=5] [--go=PATH]
#include <stackless/stackless.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

double select_round_trips(std::int64_t n) {
  stackless::channel<std::int64_t> a, b, c, d;
  std::int64_t sum = 0;
  stackless::tasklet pong([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t v = 0;
      stackless::select(stackless::on_receive(a, [&](std::int64_t x) { v = x; }),
                        stackless::on_receive(b, [&](std::int64_t x) { v = x; }));
      stackless::select(stackless::on_send(c, v), stackless::on_send(d, v));
    }
  });
  pong.setup();
  const std::int64_t t0 = bench::now_ns();
  for (std::int64_t i = 0; i < n; ++i) {
    stackless::select(stackless::on_send(a, i), stackless::on_send(b, i));
    stackless::select(stackless::on_receive(c, [&](std::int64_t x) { sum += x; }),
                      stackless::on_receive(d, [&](std::int64_t x) { sum += x; }));
  }
  const std::int64_t t1 = bench::now_ns();
  stackless::run();
  if (sum != n * (n - 1) / 2) {
    std::fprintf(stderr, "select_bench: wrong sum\n");
    std::exit(1);
  }
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

double plain_round_trips(std::int64_t n) {
  stackless::channel<std::int64_t> a, c;
  stackless::tasklet pong([&] {
    for (std::int64_t i = 0; i < n; ++i) c.send(a.receive());
  });
  pong.setup();
  const std::int64_t t0 = bench::now_ns();
  for (std::int64_t i = 0; i < n; ++i) {
    a.send(i);
    bench::do_not_optimize(c.receive());
  }
  const std::int64_t t1 = bench::now_ns();
  stackless::run();
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = bench::flag_value(argc, argv, "--n", 1'000'000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 5));
  std::string go;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]).rfind("--go=", 0) == 0) go = argv[i] + 5;
  std::vector<double> ss, ps;
  for (int r = 0; r < reps; ++r) {
    ss.push_back(select_round_trips(n));
    ps.push_back(plain_round_trips(n));
  }
  double go_sel = 0, go_plain = 0;
#ifndef _WIN32
  if (!go.empty()) {
    const std::string cmd =
        "GOMAXPROCS=1 '" + go + "' -n " + std::to_string(n) + " -reps " + std::to_string(reps);
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
      if (std::fscanf(f, "%lf %lf", &go_sel, &go_plain) != 2) go_sel = go_plain = 0;
      ::pclose(f);
    }
    if (go_sel <= 0) std::fprintf(stderr, "select_bench: running %s failed\n", go.c_str());
  }
#endif
  const auto s = bench::summarize(ss), p = bench::summarize(ps);
  bench::table tab({"round trip", "best ns", "median ns", "stackless / Go (best)"});
  tab.row({"stackless::select, 2 channels each way", bench::fmt("%.1f", s.best),
           bench::fmt("%.1f", s.median), go_sel > 0 ? bench::ratio(s.best, go_sel) : "-"});
  if (go_sel > 0)
    tab.row({"Go select, 2 channels each way (GOMAXPROCS=1)", bench::fmt("%.1f", go_sel), "-", ""});
  tab.row({"stackless plain send/receive", bench::fmt("%.1f", p.best), bench::fmt("%.1f", p.median),
           go_plain > 0 ? bench::ratio(p.best, go_plain) : "-"});
  if (go_plain > 0)
    tab.row({"Go plain send/receive (GOMAXPROCS=1)", bench::fmt("%.1f", go_plain), "-", ""});
  tab.print();
  return 0;
}
