// Ports of Stackless/unittests/test_exception.py and PYPY test_stackless.py test_except*:
// an exception escaping a tasklet is re-thrown in main (or the innermost run() caller) from
// whatever call it is suspended in (docs §1.9).
#include <stackless/stackless.hpp>

#include "helpers.hpp"

using namespace stackless;
using rt::msg_is;

BOOST_AUTO_TEST_SUITE(TestException)

// PYPY test_stackless.py test_except **[V]**: "bg f E bh ag ah": run() raises the error at once,
// ahead of the other runnable tasklets, which run later.
BOOST_FIXTURE_TEST_CASE(test_except, clean_scheduler) {
  rt::log rlist;
  tasklet([&] {
    rlist("bg");
    schedule();
    rlist("ag");
  })();
  tasklet([&] {
    rlist("f");
    throw rt::test_error("ZeroDivisionError");
  })();
  tasklet([&] {
    rlist("bh");
    schedule();
    rlist("ah");
  })();
  try {
    run();
  } catch (const rt::test_error&) {
    rlist("E");
  }
  schedule();
  schedule();
  BOOST_TEST(rlist.str() == "bg f E bh ag ah");
}

// PYPY test_except_full / docs §1.9 **[V]**: an error in a tasklet reached by schedule() from main
// is raised by main's schedule(); main is woken before the other runnable tasklet.
BOOST_FIXTURE_TEST_CASE(test_except_from_schedule, clean_scheduler) {
  rt::log log;
  tasklet([] { throw rt::test_error("KeyError"); })();
  tasklet([&] { log("other"); })();
  BOOST_CHECK_EXCEPTION(schedule(), rt::test_error, msg_is("KeyError"));
  log("main");
  schedule();
  BOOST_TEST(log.str() == "main other");
}

// docs §1.9 **[V]**: via t.run() the error is raised by t.run().
BOOST_FIXTURE_TEST_CASE(test_except_from_tasklet_run, clean_scheduler) {
  tasklet t = tasklet([] { throw rt::test_error("KeyError"); })();
  BOOST_CHECK_EXCEPTION(t.run(), rt::test_error, msg_is("KeyError"));
  BOOST_TEST(!t.alive());
}

// docs §1.9: via t.switch_to() too (main was paused; it is revived to receive the error).
BOOST_FIXTURE_TEST_CASE(test_except_from_switch, clean_scheduler) {
  tasklet t = tasklet([] { throw rt::test_error("KeyError"); })();
  BOOST_CHECK_EXCEPTION(t.switch_to(), rt::test_error, msg_is("KeyError"));
  BOOST_TEST(getcurrent().is_main());
  BOOST_TEST(getruncount() == 1);
}

// docs §1.9 **[V]**: with main blocked in receive(), the receive raises it and balance is 0.
BOOST_FIXTURE_TEST_CASE(test_except_from_receive, clean_scheduler) {
  channel<int> c;
  tasklet([] { throw rt::test_error("KeyError"); })();
  BOOST_CHECK_EXCEPTION(c.receive(), rt::test_error, msg_is("KeyError"));
  BOOST_TEST(c.balance() == 0);
}

// docs §1.9: main blocked in receive() with other tasklets still runnable: main is woken first,
// its receive raises and is cancelled; the others run later.
BOOST_FIXTURE_TEST_CASE(test_except_from_receive_others_runnable, clean_scheduler) {
  channel<int> c;
  rt::log log;
  tasklet([] { throw rt::test_error("KeyError"); })();
  tasklet([&] { log("other"); })();
  try {
    c.receive();
  } catch (const rt::test_error&) {
    log("E");
  }
  BOOST_TEST(c.balance() == 0);
  run();
  BOOST_TEST(log.str() == "E other");
}

// test_exception.py: tasklet_exit escaping a tasklet is silent; the error is not rethrown.
BOOST_FIXTURE_TEST_CASE(test_tasklet_exit_silent, clean_scheduler) {
  tasklet t = tasklet([] { throw tasklet_exit{}; })();
  BOOST_CHECK_NO_THROW(run());
  BOOST_TEST(!t.alive());
}

// test_exception.py: non-std exceptions are routed as well.
BOOST_FIXTURE_TEST_CASE(test_non_std_exception, clean_scheduler) {
  tasklet([] { throw 42; })();
  try {
    run();
    BOOST_FAIL("run() did not rethrow");
  } catch (int v) {
    BOOST_TEST(v == 42);
  }
}

// test_exception.py: an exception caught inside the tasklet does not leave it.
BOOST_FIXTURE_TEST_CASE(test_caught_inside, clean_scheduler) {
  bool caught = false;
  tasklet([&] {
    try {
      schedule();
      throw rt::test_error("inside");
    } catch (const rt::test_error&) {
      caught = true;
    }
  })();
  BOOST_CHECK_NO_THROW(run());
  BOOST_TEST(caught);
}

// test_exception.py: main's own exceptions propagate normally and do not disturb the scheduler.
BOOST_FIXTURE_TEST_CASE(test_exception_in_main, clean_scheduler) {
  tasklet t = tasklet([] {})();
  BOOST_CHECK_THROW(throw rt::test_error("main"), rt::test_error);
  BOOST_TEST(t.scheduled());
  run();
  BOOST_TEST(!t.alive());
}

// docs §1.9 + §1.8: a channel send_exception raises in the receiver; uncaught, it reaches main.
BOOST_FIXTURE_TEST_CASE(test_send_exception_uncaught, clean_scheduler) {
  channel<int> c;
  tasklet t = tasklet([&] { c.receive(); })();
  run();
  BOOST_CHECK_EXCEPTION(c.send_exception<rt::test_error>("sent"), rt::test_error, msg_is("sent"));
  BOOST_TEST(!t.alive());
  BOOST_TEST(c.balance() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestExceptionRouting)

// docs §1.9: the error goes to main (the run() caller), not to the tasklet that switched to the
// dying one with t.run(); that tasklet stays runnable and resumes normally later.
BOOST_FIXTURE_TEST_CASE(test_error_skips_intermediate_run_caller, clean_scheduler) {
  rt::log log;
  tasklet b([] { throw rt::test_error("from b"); });
  b.setup();
  b.remove();
  tasklet a = tasklet([&] {
    log("a");
    b.run();
    log("a-resumed");
  })();
  BOOST_CHECK_EXCEPTION(run(), rt::test_error, msg_is("from b"));
  BOOST_TEST(a.scheduled());
  run();
  BOOST_TEST(log.str() == "a a-resumed");
}

// changelog "TaskletExit raised in main is not silently ignored": in Stackless, killing main
// raises TaskletExit in main, which then exits the interpreter. In C++ tasklet_exit escaping
// main() calls std::terminate without unwinding main's stack (issue 13), so killing main is
// refused with tasklet_error, raised in the killer; main is untouched (docs/semantics.md §1.6).
BOOST_FIXTURE_TEST_CASE(test_kill_main, clean_scheduler) {
  rt::log log;
  tasklet main = getcurrent();
  tasklet k = tasklet([&] {
    log("k");
    try {
      main.kill();
    } catch (const tasklet_error&) {
      log("refused");
    }
    log("k-resumed");
  })();
  run();
  BOOST_TEST(main.alive());
  BOOST_TEST(!k.alive());
  BOOST_TEST(log.str() == "k refused k-resumed");
}

// docs §1.9 + test_watchdog.py: killing a tasklet that is itself inside a nested run() makes its
// run() raise tasklet_exit; the tasklet dies silently and main's run() returns normally.
BOOST_FIXTURE_TEST_CASE(test_kill_nested_watchdog, clean_scheduler) {
  rt::log log;
  bool unwound = false;
  tasklet a;
  a = tasklet([&] {
    rt::sentinel s(&unwound);
    tasklet([&] {
      log("b");
      a.kill();
      log("b-resumed");
    })();
    run();
    log("a-after-run");
  })();
  BOOST_CHECK_NO_THROW(run());
  BOOST_TEST(unwound);
  BOOST_TEST(!a.alive());
  BOOST_TEST(log.str() == "b b-resumed");
}

// set_error_handler: errors thrown into a tasklet (throw_exception) that escape it go through the
// handler too.
BOOST_FIXTURE_TEST_CASE(test_handler_for_thrown_error, clean_scheduler) {
  int calls = 0;
  set_error_handler([&](std::exception_ptr) { ++calls; });
  tasklet t = tasklet([] { schedule_remove(); })();
  run();
  BOOST_CHECK_NO_THROW(t.raise_exception<rt::test_error>("thrown"));
  BOOST_TEST(calls == 1);
  BOOST_TEST(!t.alive());
}

BOOST_AUTO_TEST_SUITE_END()
