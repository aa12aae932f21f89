// pump: a port of Richard Tew's scheduleAlternative.py (stackless-dev/stacklessexamples,
// examples/scheduleAlternative.py), "the alternative approach to scheduling": the application
// owns the loop and pumps the scheduler once per turn (the manual's "Pumping the scheduler";
// the model for embedding tasklets in a game or GUI loop).
//
// Tasklets never call schedule(). They either BeNice() (park on yieldChannel until the next
// pump) or Sleep(). Each turn, ScheduleTasklets() wakes the tasklets that were nice *before*
// this turn, then runs the scheduler with a budget: run(run_budget) returns when nothing is
// runnable, or hands back a tasklet that ran too long without yielding; the loop puts that one
// back in the queue for the next turn (the original's stackless.run(1000000)).
//
// Differences from the original: Sleep is stackless::sleep (its sleeping list and
// CheckSleepingTasklets are gone; note that run() waits in the kernel for the earliest sleeper
// when nothing else is runnable, so the loop does not spin); the budget is wall time checked at
// check points (C++ has no instruction counter), and a `Greedy` tasklet, which never yields but
// calls stackless::tick(), shows the budget interrupting it.
//
// Usage: pump [--count N] [--seconds S]   (the original: Test(10), sleeps of 1 second)
// Exits non-zero unless Test finished and Greedy was interrupted at least once.
#include <stackless/stackless.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using namespace std::chrono_literals;

stackless::channel<void> yieldChannel;
double seconds_to_wait = 1.0;
bool exitScheduler = false;
int pumps = 0, interruptions = 0;

// Utility functions for tasklets to call.

void BeNice() {  // Signal that the tasklet can be interrupted.
  yieldChannel.receive();
}

void Sleep(double secondsToWait) {  // Put the current tasklet to sleep for a while.
  stackless::sleep(std::chrono::duration<double>(secondsToWait));
}

// Scheduler running related functions.

void ScheduleTasklets() {
  ++pumps;
  // Only schedule as many tasklets as there are waiting when we start. This is because some of
  // the tasklets we awaken may BeNice their way back onto the channel.
  int n = -yieldChannel.balance();
  while (n > 0) {
    yieldChannel.send();
    n -= 1;
  }

  // Run any tasklets which need to be scheduled. As long as the BeNice and Sleep callers do not
  // use schedule() they should never stay in the scheduler for long.
  stackless::tasklet interruptedTasklet = stackless::run(stackless::run_budget{.time = 5ms});
  if (interruptedTasklet) {
    // Should really report where it was so it can be rewritten to 'be nice'. Alternatively the
    // tasklet could be killed at this point if that suits the application.
    ++interruptions;
    interruptedTasklet.insert();
  }
}

void Test(int n) {
  while (n) {
    if (n % 2 == 1) {
      std::printf("%d BeNice\n", n);
      BeNice();
    } else {
      std::printf("%d Sleep\n", n);
      Sleep(seconds_to_wait);
    }
    n -= 1;
  }
  exitScheduler = true;
}

// Not in the original: a tasklet that computes without ever yielding. Its tick() calls are the
// check points where the budget can take it out of the scheduler.
void Greedy() {
  volatile unsigned long sum = 0;
  while (!exitScheduler) {
    for (int i = 0; i < 100000; ++i) sum = sum + static_cast<unsigned long>(i);
    stackless::tick();
  }
}

}  // namespace

int main(int argc, char** argv) {
  // As in the manual's version of this loop: the pump's send must not switch to the woken
  // tasklet, but only make it runnable, so that it runs inside run(budget) below. With the
  // default preference (-1) it would run at once, outside any budget, and when it blocked again
  // the next runnable tasklet (Greedy) would run, unbudgeted, instead of returning to the pump.
  yieldChannel.set_preference(1);

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

  // Do `count` iterations.
  stackless::tasklet{Test}(count);
  stackless::tasklet{Greedy}();

  while (!exitScheduler) ScheduleTasklets();
  ScheduleTasklets();  // one more turn: Greedy sees exitScheduler and ends

  std::printf("%d pumps, Greedy interrupted %d times; %zu tasklets left\n", pumps, interruptions,
              stackless::alive_tasklets());
  return interruptions > 0 && stackless::alive_tasklets() == 0 ? 0 : 1;
}
