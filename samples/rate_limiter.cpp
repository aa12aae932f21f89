// rate_limiter: a semaphore of N permits bounds how many requests run at once; clients that
// cannot get a permit within their patience give up (try_acquire_for) instead of queueing for
// ever. A refill tasklet is not needed: a finished request releases its permit, which goes FIFO to
// the longest-waiting client. Runs under virtual time, so the timings below are exact.
//
// Usage: rate_limiter [--permits N] [--clients C]
// Exits non-zero unless the limit was never exceeded, every client was either served or gave up,
// and the counts match what the schedule implies.
#include <stackless/stackless.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  int permits = 3, clients = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--permits") == 0 && i + 1 < argc) {
      permits = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
      clients = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--permits N] [--clients C]\n", argv[0]);
      return 2;
    }
  }
  if (permits < 1 || clients < 0) {
    std::fprintf(stderr, "rate_limiter: need --permits >= 1 and --clients >= 0\n");
    return 2;
  }
  using namespace std::chrono_literals;
  stackless::virtual_time vt;
  stackless::semaphore limit(static_cast<std::size_t>(permits));
  int running = 0, max_running = 0, served = 0, gave_up = 0;

  // Every request takes 100 ms; every client waits at most 250 ms for a permit. All arrive at
  // once, so rounds of `permits` clients are served at 0, 100 and 200 ms, and the rest give up.
  for (int c = 0; c < clients; ++c) {
    stackless::tasklet([&] {
      if (!limit.try_acquire_for(250ms)) {
        ++gave_up;
        return;
      }
      ++running;
      max_running = std::max(max_running, running);
      stackless::sleep(100ms);  // the request
      --running;
      ++served;
      limit.release();
    })();
  }
  stackless::run();
  const int expect_served = std::min(clients, 3 * permits);
  std::printf("%d served, %d gave up, at most %d at once (limit %d), %.3f s virtual\n", served,
              gave_up, max_running, permits, std::chrono::duration<double>(vt.elapsed()).count());
  const bool ok = max_running <= permits && served + gave_up == clients &&
                  served == expect_served && limit.value() == static_cast<std::size_t>(permits) &&
                  limit.waiting() == 0 && stackless::alive_tasklets() == 0;
  return ok ? 0 : 1;
}
