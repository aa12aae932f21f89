// philosophers: the dining philosophers with stackless::lock (stacklesslib.locks.Lock), each
// philosopher a tasklet. Deadlock is avoided by ordering: everybody takes the lower-numbered fork
// first (std::scoped_lock would do as well). Philosophers think and eat for random times with
// stackless::sleep, under virtual time by default, so a long dinner takes no real time.
//
// Usage: philosophers [--n N] [--meals M] [--real]   (--real: real time, 1 ms units)
// Exits non-zero unless every philosopher ate M meals, no fork was ever held by two
// philosophers, and nothing is left alive.
#include <stackless/stackless.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

int main(int argc, char** argv) {
  int n = 5, meals = 20;
  bool real = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--meals") == 0 && i + 1 < argc) {
      meals = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--real") == 0) {
      real = true;
    } else {
      std::fprintf(stderr, "usage: %s [--n N] [--meals M] [--real]\n", argv[0]);
      return 2;
    }
  }
  if (n < 2 || meals < 0) {
    std::fprintf(stderr, "philosophers: need --n >= 2 and --meals >= 0\n");
    return 2;
  }
  std::optional<stackless::virtual_time> vt;
  if (!real) vt.emplace();
  const auto t0 = stackless::now();

  std::vector<std::unique_ptr<stackless::lock>> forks;
  std::vector<int> holder(n, -1);
  for (int i = 0; i < n; ++i) forks.push_back(std::make_unique<stackless::lock>());
  std::vector<int> eaten(n, 0);
  bool clash = false;
  std::mt19937 rng(42);
  auto pause = [&] { stackless::sleep(std::chrono::milliseconds(1 + rng() % 10)); };

  for (int p = 0; p < n; ++p) {
    stackless::tasklet([&, p] {
      const int left = p, right = (p + 1) % n;
      const int first = std::min(left, right), second = std::max(left, right);
      for (int m = 0; m < meals; ++m) {
        pause();  // think
        std::lock_guard a(*forks[first]);
        std::lock_guard b(*forks[second]);
        for (int f : {first, second}) {
          if (holder[f] != -1) clash = true;
          holder[f] = p;
        }
        pause();  // eat
        ++eaten[p];
        for (int f : {first, second}) holder[f] = -1;
      }
    })();
  }
  stackless::run();
  bool ok = !clash && stackless::alive_tasklets() == 0;
  for (int p = 0; p < n; ++p) {
    std::printf("philosopher %d ate %d meals\n", p, eaten[p]);
    ok = ok && eaten[p] == meals;
  }
  std::printf("dinner took %.3f s of %s time\n",
              std::chrono::duration<double>(stackless::now() - t0).count(),
              real ? "real" : "virtual");
  return ok ? 0 : 1;
}
