// stackless::sleep: block the calling tasklet, never the thread, for a while.
#pragma once

#include <chrono>

namespace stackless {

// sleep_until(deadline) blocks the calling tasklet (main included, with or without run()) until
// `deadline` on the steady clock; the thread keeps running the other tasklets, and when none is
// runnable it waits in the kernel until the earliest deadline or I/O completion. Sleepers wake in
// deadline order (equal deadlines in call order). A deadline already past just yields
// (schedule()). A sleeping tasklet can be killed or thrown into: the timer is removed and the
// exception propagates. Throws block_trap_error when the tasklet refuses to block.
void sleep_until(std::chrono::steady_clock::time_point deadline);

// deadline_after(d): now + d on the steady clock, saturated: a d too large for the clock
// (hours::max(), a duration<double> of 1e300 s) gives time_point::max() instead of overflowing into
// the past, and a negative or zero d gives now. A NaN duration is treated as zero.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  using clock = std::chrono::steady_clock;
  const clock::time_point now = clock::now();
  if (!(d > d.zero())) return now;
  // Compare in floating point: converting d to the clock's nanoseconds could itself overflow.
  const long double left =
      std::chrono::duration<long double>(clock::time_point::max() - now).count();
  if (std::chrono::duration<long double>(d).count() >= left - 1) return clock::time_point::max();
  return now + std::chrono::ceil<clock::duration>(d);
}

// sleep(d): sleep_until(now + d), saturated (deadline_after): sleep(hours::max()) sleeps for good,
// a zero or negative d just yields.
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  sleep_until(deadline_after(d));
}

}  // namespace stackless
