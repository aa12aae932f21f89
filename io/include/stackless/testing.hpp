// stackless/testing.hpp: run a Boost.Test test body as a tasklet under virtual time.
//
//   #include <boost/test/unit_test.hpp>
//   #include <stackless/testing.hpp>
//   STACKLESS_VIRTUAL_TIME_TEST_CASE(one_hour_timeout) {
//     stackless::event e;
//     BOOST_TEST(!e.wait_for(std::chrono::hours(1)));  // returns at once, in virtual time
//   }
//
// The body runs as a tasklet named after the test, on a virtual clock (stackless::virtual_time):
// sleeps and timeouts take no real time. The test (not the process) fails when
//   - the body raises (deadlock_error included), with the exception's message;
//   - the body can never finish: it is blocked and nothing can wake it (no runnable tasklet, no
//     timer, no I/O): a deadlock, reported with the listing of the blocked tasklets and what
//     each waits on (stackless::tasklets_report()), which are then killed;
//   - the body raised deadlock_error: the same listing is added;
//   - tasklets it started are still alive after it finished (leaked): they are listed in the
//     failure, and left alive.
// Header-only; include Boost.Test first.
#pragma once

#include <exception>
#include <sstream>
#include <string>

#include "stackless/io/sleep.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless::testing {

// run_virtual(name, body): the engine of STACKLESS_VIRTUAL_TIME_TEST_CASE. Returns an empty
// string when the body passed the rules above, else what went wrong.
template <class F>
std::string run_virtual(const std::string& name, F&& body) {
  const std::size_t before = alive_tasklets();
  virtual_time vt;
  std::exception_ptr err;
  bool finished = false;
  tasklet t([&] {
    try {
      body();
    } catch (const tasklet_exit&) {
      throw;
    } catch (...) {
      err = std::current_exception();
    }
    finished = true;
  });
  t.set_name(name);
  t();
  std::ostringstream out;
  try {
    // run() returns once nothing here is runnable and no timer is pending (the poll tasklet,
    // which jumps the virtual clock, keeps it going while timers are).
    run();
  } catch (const std::exception& e) {
    out << "an exception escaped a tasklet: " << e.what() << "\n";
  }
  if (!finished) {
    out << "deadlock: " << t << " is " << (t.blocked() ? "blocked" : "not runnable")
        << " and nothing can wake it; " << (alive_tasklets() - before)
        << " tasklet(s) alive in the test, all blocked (virtual time "
        << std::chrono::duration<double>(vt.elapsed()).count() << " s):\n"
        << tasklets_report();
    t.kill();
  }
  if (err) {
    try {
      std::rethrow_exception(err);
    } catch (const std::exception& e) {
      const bool deadlock = dynamic_cast<const deadlock_error*>(&e) != nullptr;
      out << "the test body raised " << (deadlock ? "deadlock_error" : "an exception") << ": "
          << e.what() << "\n";
      if (deadlock) out << "tasklets at the end of the test:\n" << tasklets_report();
    } catch (...) {
      out << "the test body raised a non-std exception\n";
    }
  }
  run();  // let finished tasklets end
  if (alive_tasklets() > before)
    out << (alive_tasklets() - before) << " tasklet(s) leaked past the test (still alive):\n"
        << tasklets_report();
  return out.str();
}

}  // namespace stackless::testing

// STACKLESS_VIRTUAL_TIME_TEST_CASE(name) { body }: a BOOST_AUTO_TEST_CASE whose body runs as a
// tasklet under virtual time (see above).
#define STACKLESS_VIRTUAL_TIME_TEST_CASE(name)                                     \
  static void name##_stackless_body();                                             \
  BOOST_AUTO_TEST_CASE(name) {                                                     \
    const std::string problem =                                                    \
        ::stackless::testing::run_virtual(#name, [] { name##_stackless_body(); }); \
    if (!problem.empty()) BOOST_ERROR(problem);                                    \
  }                                                                                \
  static void name##_stackless_body()
