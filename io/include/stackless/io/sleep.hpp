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

// sleep(d): sleep_until(now + d).
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  sleep_until(std::chrono::steady_clock::now() +
              std::chrono::ceil<std::chrono::steady_clock::duration>(d));
}

}  // namespace stackless
