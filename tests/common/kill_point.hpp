// The kill-point sweep of issue 12, shared by the file (tests/io/test_integrity.cpp) and socket
// (tests/net/test_cancel.cpp) tests: a tasklet blocked in an operation is killed in each state
// the poller can hold it in.
#pragma once

#include <boost/test/unit_test.hpp>

#include "wait.hpp"

namespace testwait {

enum class kill_point { staged, in_kernel, delivered_not_resumed };
inline constexpr kill_point all_kill_points[] = {kill_point::staged, kill_point::in_kernel,
                                                 kill_point::delivered_not_resumed};

// kill_at(t, point, complete): t has blocked in an operation; bring it to `point` (complete()
// makes its operation able to finish) and kill it. Returns when t is dead.
template <class Complete>
void kill_at(stackless::tasklet& t, kill_point point, Complete complete) {
  BOOST_REQUIRE(t.blocked());
  switch (point) {
    case kill_point::staged:
      break;
    case kill_point::in_kernel:
      BOOST_REQUIRE(wait_backend_passes(1));
      break;
    case kill_point::delivered_not_resumed:
      complete();
      // The poll tasklet completes the op and hands the result over: t is runnable, not run.
      BOOST_REQUIRE(wait_until([&] { return !t.blocked(); }));
      break;
  }
  t.kill();
  BOOST_REQUIRE(wait_until([&] { return !t.alive(); }));  // its cancellation is over
}

}  // namespace testwait
