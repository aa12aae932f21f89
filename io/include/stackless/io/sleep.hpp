// stackless::sleep: block the calling tasklet, never the thread, for a while.
#pragma once

#include <chrono>
#include <cstddef>

namespace stackless {

// sleep_until(deadline) blocks the calling tasklet (main included, with or without run()) until
// `deadline` on the steady clock; the thread keeps running the other tasklets, and when none is
// runnable it waits in the kernel until the earliest deadline or I/O completion. Sleepers wake in
// deadline order (equal deadlines in call order). A deadline already past just yields
// (schedule()). A sleeping tasklet can be killed or thrown into: the timer is removed and the
// exception propagates. Throws block_trap_error when the tasklet refuses to block.
void sleep_until(std::chrono::steady_clock::time_point deadline);

// now(): the calling thread's time, which sleep_until, every timeout and every deadline of this
// library use: std::chrono::steady_clock::now(), or the virtual time while a virtual_time scope
// is active on this thread.
std::chrono::steady_clock::time_point now() noexcept;

// deadline_after(d): now() + d, saturated: a d too large for the clock (hours::max(), a
// duration<double> of 1e300 s) gives time_point::max() instead of overflowing into the past, and
// a negative or zero d gives now(). A NaN duration is treated as zero.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  using clock = std::chrono::steady_clock;
  const clock::time_point t = now();
  if (!(d > d.zero())) return t;
  // Compare in floating point: converting d to the clock's nanoseconds could itself overflow.
  const long double left = std::chrono::duration<long double>(clock::time_point::max() - t).count();
  if (std::chrono::duration<long double>(d).count() >= left - 1) return clock::time_point::max();
  return t + std::chrono::ceil<clock::duration>(d);
}

// sleep(d): sleep_until(now() + d), saturated (deadline_after): sleep(hours::max()) sleeps for
// good, a zero or negative d just yields.
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  sleep_until(deadline_after(d));
}

// virtual_time: while one is alive, this thread's scheduler runs on a virtual clock (Go's
// testing/synctest, Trio's MockClock(autojump_threshold=0)). It starts at the real steady time
// and stands still while anything runs; whenever every tasklet of the thread is blocked and only
// timers are pending, it jumps at once to the earliest deadline and fires that timer. A test of a
// one-hour timeout thus takes microseconds and is deterministic. I/O in flight counts as
// activity: the clock waits for it instead of jumping. Other threads keep real time.
// Constructing one throws std::logic_error when one is already active on this thread or when
// timers or I/O are pending here (their real deadlines would mix with virtual ones).
class virtual_time {
 public:
  virtual_time();
  ~virtual_time();
  virtual_time(const virtual_time&) = delete;
  virtual_time& operator=(const virtual_time&) = delete;
  // advance(d): moves the clock forward by d (d >= 0, else std::invalid_argument); timers now
  // due fire when the poll tasklet next runs.
  void advance(std::chrono::steady_clock::duration d);
  // elapsed(): virtual time since the scope began.
  std::chrono::steady_clock::duration elapsed() const noexcept;
  // jumps(): how many times the clock jumped to a deadline by itself.
  std::size_t jumps() const noexcept;
  static bool active() noexcept;
};

namespace io::detail {
// For the poller: the virtual clock's state on this thread, and the jump to the next deadline.
bool virtual_time_active() noexcept;
void virtual_advance_to(std::chrono::steady_clock::time_point t) noexcept;
}  // namespace io::detail

}  // namespace stackless
