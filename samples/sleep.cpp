// sleep: a port of Richard Tew's scheduleNormal.py (stackless-dev/stacklessexamples,
// examples/scheduleNormal.py), "the normal approach to scheduling".
//
// The original writes its own sleep manager: Sleep(s) parks the tasklet on a fresh channel kept
// in a sorted list, and a ManageSleepingTasklets tasklet loops over that list, waking the due
// sleepers and calling stackless.schedule() (a busy loop). stackless::sleep is that idiom built
// in: a sleeping tasklet blocks only itself, and when nothing else is runnable the thread waits
// in the kernel until the earliest deadline. So Sleep and ManageSleepingTasklets are gone, and so
// is exitScheduler: run() returns when Test has finished.
//
// Usage: sleep [--count N] [--seconds S]   (the original: 10 sleeps of 1 second)
// Exits non-zero if a sleep returned early.
#include <stackless/stackless.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

using clock_type = std::chrono::steady_clock;
double seconds_to_wait = 1.0;
int early_wakeups = 0;

// Utility functions for tasklets to call.

void Sleep(double seconds) {  // the original's name; stackless::sleep does the work
  const auto want = std::chrono::duration<double>(seconds);
  const auto start = clock_type::now();
  stackless::sleep(want);
  if (clock_type::now() - start < want) ++early_wakeups;
}

void Test(int n) {
  const auto start = clock_type::now();
  while (n) {
    std::chrono::duration<double> t = clock_type::now() - start;
    std::printf("%d Sleep  (at %.3f s)\n", n, t.count());
    Sleep(seconds_to_wait);
    n -= 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int count = 10;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--count") == 0 && i + 1 < argc)
      count = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds_to_wait = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--count N] [--seconds S]\n", argv[0]);
      return 2;
    }
  }

  const auto start = clock_type::now();
  stackless::tasklet{Test}(count);

  // This runs until there are no scheduled tasklets: Test's sleeps keep it going, and no
  // manager tasklet is left behind to make it run forever.
  stackless::run();

  std::chrono::duration<double> took = clock_type::now() - start;
  std::printf("%d sleeps of %.3f s took %.3f s (%s backend); %d woke early\n", count,
              seconds_to_wait, took.count(), std::string(stackless::io::backend_name()).c_str(),
              early_wakeups);
  return early_wakeups == 0 && took.count() >= count * seconds_to_wait ? 0 : 1;
}
