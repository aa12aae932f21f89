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

BOOST_AUTO_TEST_SUITE_END()
