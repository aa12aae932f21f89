// Killing the poll tasklet itself, and thread exit with I/O and timers still pending: every op
// in flight is finished with the thread blocked (no buffer left with the kernel), sleepers wake.
#include <sys/stat.h>

#include <thread>

#include "io_helpers.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(Teardown, iot::io_clean)

#ifndef _WIN32  // FIFOs: POSIX only
// Killing the poll tasklet cancels the I/O in flight and wakes sleepers with ECANCELED; the
// next operation starts a new poll tasklet.
BOOST_AUTO_TEST_CASE(killing_the_poll_tasklet_drains_everything) {
  const auto p = iot::path("fifo-poll");
  BOOST_REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
  io::file fifo = io::open(p, "r+", 0);
  iot::check_killing_poll_tasklet_drains(
      fifo, [](int code) { return code == ECANCELED || code == EINTR; },
      [&] {
        sleep(1ms);  // a fresh poll tasklet
        fifo.write("x\n");
      });
}
#endif

#ifndef _WIN32  // FIFOs: POSIX only
// A thread that ends with tasklets blocked in I/O and sleep: the scheduler's teardown kills them
// and nothing hangs or touches freed memory.
BOOST_AUTO_TEST_CASE(thread_exit_with_io_pending) {
  const auto p = iot::path("fifo-exit");
  BOOST_REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
  iot::check_thread_exit_unwinds([&] { return io::open(p, "r+", 0); });
}
#endif

// The poll tasklet cannot be made (its stack cannot be mapped) at a thread's first I/O call or
// sleep: the call raises stack_error and leaves nothing behind. Before, the sleep's timer stayed
// linked in the poller's timer set on the unwound frame (a crash at the next sleep), an operation
// had already been started in the kernel for a frame that raised, and a poll tasklet that was
// made but could not be set up stayed as a handle that never ran (the next sleep hung). A fresh
// thread: its poller has no poll tasklet yet. Checked here (Boost.Test is not thread-safe).
BOOST_AUTO_TEST_CASE(poll_tasklet_that_cannot_be_made_leaves_nothing_behind) {
  int sleep_refused = 0, open_refused = 0;
  std::size_t pending_after = 1;
  bool later_sleep_ok = false;
  std::string later_read;
  const auto p = iot::path("no-poll-tasklet");
  { io::open(p, "w").write("hello"); }
  std::thread([&] {
    const auto normal = default_stack_size();
    set_default_stack_size(std::size_t{1} << 46);  // 64 TiB: no mapping that large
    for (int i = 0; i < 3; ++i) {
      try {
        sleep(1ms);
      } catch (const stack_error&) {
        ++sleep_refused;
      }
    }
    try {
      (void)io::open(p, "r", 0);  // an operation in the kernel (openat) or on a pool thread
    } catch (const stack_error&) {
      ++open_refused;
    }
    set_default_stack_size(normal);
    pending_after = io::pending_operations();
    sleep(2ms);  // the timer set is walked: a node left on an unwound frame would be found
    later_sleep_ok = true;
    later_read = io::open(p, "r", 0).read(5);
  }).join();
  BOOST_TEST(sleep_refused == 3);
  BOOST_TEST(open_refused == 1);
  BOOST_TEST(pending_after == 0u);
  BOOST_TEST(later_sleep_ok);
  BOOST_TEST(later_read == "hello");
}

BOOST_AUTO_TEST_SUITE_END()
