// Ports of Stackless/unittests/test_watchdog.py (run(), nested run(), run(timeout) as
// run_budget) and of the run-queue scenarios of PYPY test_stackless.py / SYNC stackless_test.py.
#include <stackless/stackless.hpp>

#include <chrono>

#include "helpers.hpp"

using namespace stackless;
using namespace std::chrono_literals;
using rt::msg_is;

namespace {
// busy(d): burns d of wall time with tick() check points, like a Python loop without switches.
void busy(std::chrono::microseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) tick();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(TestWatchdog)

// test_watchdog.py test_run_naked: run() with an empty queue returns at once.
BOOST_FIXTURE_TEST_CASE(test_run_naked, clean_scheduler) {
  run();
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST(!run(run_budget{.time = 1ms}));
}

// PYPY test_stackless.py test_simple / SYNC: the run queue is FIFO; schedule() puts the caller at
// the end (round robin).
BOOST_FIXTURE_TEST_CASE(test_round_robin, clean_scheduler) {
  rt::log log;
  auto body = [&](std::string n) {
    for (int i = 0; i < 3; ++i) {
      log(n + std::to_string(i));
      schedule();
    }
  };
  tasklet{body}(std::string("a"));
  tasklet{body}(std::string("b"));
  tasklet{body}(std::string("c"));
  run();
  BOOST_TEST(log.str() == "a0 b0 c0 a1 b1 c1 a2 b2 c2");
}

// PYPY test_stackless.py test_getruncount **[V]**: inside a tasklet reached via schedule() from
// main the runcount is 2 (main is in the ring), via run() it is 1 (main is not).
BOOST_FIXTURE_TEST_CASE(test_getruncount, clean_scheduler) {
  int seen = 0;
  tasklet([&] { seen = getruncount(); })();
  BOOST_TEST(getruncount() == 2);
  schedule();
  BOOST_TEST(seen == 2);
  tasklet([&] { seen = getruncount(); })();
  run();
  BOOST_TEST(seen == 1);
  BOOST_TEST(getruncount() == 1);
}

// docs §1.3 sch_run_returns_when_all_blocked **[V]**: run() returns when every other tasklet is
// blocked; blocked tasklets stay blocked.
BOOST_FIXTURE_TEST_CASE(test_run_returns_when_all_blocked, clean_scheduler) {
  channel<int> c;
  tasklet a = tasklet([&] { c.receive(); })();
  tasklet b = tasklet([&] { c.receive(); })();
  run();
  BOOST_TEST(c.balance() == -2);
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST(a.blocked());
  BOOST_TEST(b.blocked());
  c.send(1);
  c.send(2);
  BOOST_TEST(!a.alive());
  BOOST_TEST(!b.alive());
}

// test_watchdog.py test_run_from_tasklet / "Make stackless.run() more flexible": run() nests;
// the innermost run() returns first, when the queue empties.
BOOST_FIXTURE_TEST_CASE(test_nested_run, clean_scheduler) {
  rt::log log;
  tasklet([&] {
    log("outer-start");
    tasklet([&] {
      log("b");
      schedule();
      log("b2");
    })();
    tasklet([&] { log("c"); })();
    run();
    log("outer-end");
  })();
  run();
  log("main");
  BOOST_TEST(log.str() == "outer-start b c b2 outer-end main");
}

// test_watchdog.py test_inner_exception: an exception escaping a tasklet goes to the innermost
// run() caller, not to main.
BOOST_FIXTURE_TEST_CASE(test_nested_run_exception, clean_scheduler) {
  std::string caught_inner;
  tasklet([&] {
    tasklet([] { throw rt::test_error("inner"); })();
    try {
      run();
    } catch (const rt::test_error& e) {
      caught_inner = e.what();
    }
  })();
  run();
  BOOST_TEST(caught_inner == "inner");
}

// test_watchdog.py test_schedule_remove as last runnable under a nested run(): the innermost
// watchdog is revived.
BOOST_FIXTURE_TEST_CASE(test_nested_run_blocked, clean_scheduler) {
  channel<int> c;
  rt::log log;
  tasklet outer = tasklet([&] {
    tasklet([&] {
      log("r");
      log("got" + std::to_string(c.receive()));
    })();
    run();  // returns when r blocks
    log("outer");
    c.send(5);
    log("sent");
  })();
  run();
  log("main");
  BOOST_TEST(log.str() == "r outer got5 sent main");
}

// test_watchdog.py test_timeout (hard) / docs §1.3 sch_run_timeout **[V]**: the interrupted
// tasklet is returned, removed from the queue (paused); runcount 1; insert() makes it runnable.
BOOST_FIXTURE_TEST_CASE(test_run_timeout_hard, clean_scheduler) {
  bool stop = false;
  long n = 0;
  tasklet t([&] {
    while (!stop) {
      ++n;
      tick();
    }
  });
  t();
  tasklet r = run(run_budget{.time = 1ms});
  BOOST_TEST((r == t));
  BOOST_TEST(t.alive());
  BOOST_TEST(t.paused());
  BOOST_TEST(!t.scheduled());
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST(n > 0);
  t.insert();
  BOOST_TEST(getruncount() == 2);
  stop = true;
  run();
  BOOST_TEST(!t.alive());
}

// test_watchdog.py soft timeout / docs §1.3 sch_run_timeout_soft **[V]**: run() returns null and
// the tasklet stays scheduled; runcount 2.
BOOST_FIXTURE_TEST_CASE(test_run_timeout_soft, clean_scheduler) {
  bool stop = false;
  tasklet t([&] {
    while (!stop) tick();
  });
  t();
  tasklet r = run(run_budget{.time = 1ms, .soft = true});
  BOOST_TEST(!r);
  BOOST_TEST(t.alive());
  BOOST_TEST(t.scheduled());
  BOOST_TEST(getruncount() == 2);
  stop = true;
  run();
  BOOST_TEST(!t.alive());
}

// tasklet.hpp run_budget.switches: the budget is counted in tasklet switches during the run()
// call. Two tasklets yielding forever: the 10th switch lands on b, whose next check point fires.
BOOST_FIXTURE_TEST_CASE(test_run_switch_budget, clean_scheduler) {
  bool stop = false;
  int na = 0, nb = 0;
  tasklet a = tasklet([&] {
    while (!stop) {
      ++na;
      schedule();
    }
  })();
  tasklet b = tasklet([&] {
    while (!stop) {
      ++nb;
      schedule();
    }
  })();
  tasklet r = run(run_budget{.switches = 10});
  BOOST_TEST((r == b));
  BOOST_TEST(na == 5);
  BOOST_TEST(nb == 5);
  BOOST_TEST(b.paused());
  BOOST_TEST(a.scheduled());
  BOOST_TEST(getruncount() == 2);
  stop = true;
  b.insert();
  run();
  BOOST_TEST(!a.alive());
  BOOST_TEST(!b.alive());
}

// test_watchdog.py test_atomic **[V]**: an atomic section defers the interrupt; it fires right
// after the section ends.
BOOST_FIXTURE_TEST_CASE(test_atomic_defers_interrupt, clean_scheduler) {
  rt::log log;
  tasklet t([&] {
    {
      atomic_section a;
      for (int i = 0; i < 100; ++i) tick();  // budget spent from the first tick on
      log("atomic-done");
    }
    log("after-atomic");
  });
  t();
  tasklet r = run(run_budget{.switches = 1});
  BOOST_TEST((r == t));
  BOOST_TEST(log.str() == "atomic-done");
  BOOST_TEST(t.paused());
  t.insert();
  run();
  BOOST_TEST(log.str() == "atomic-done after-atomic");
}

// test_watchdog.py: the budget also covers a soft run(): atomic defers it the same way.
BOOST_FIXTURE_TEST_CASE(test_atomic_defers_soft, clean_scheduler) {
  rt::log log;
  tasklet t([&] {
    {
      atomic_section a;
      for (int i = 0; i < 10; ++i) tick();
      log("atomic-done");
    }
    log("after-atomic");
  });
  t();
  tasklet r = run(run_budget{.switches = 1, .soft = true});
  BOOST_TEST(!r);
  BOOST_TEST(log.str() == "atomic-done");
  BOOST_TEST(t.scheduled());
  run();
  BOOST_TEST(log.str() == "atomic-done after-atomic");
}

// test_watchdog.py totaltimeout: a per-slice time budget is reset at every switch (short slices
// never fire), a total budget covers the whole run() call.
BOOST_FIXTURE_TEST_CASE(test_totaltimeout, clean_scheduler) {
  auto worker = [] {
    for (int i = 0; i < 40; ++i) {
      busy(100us);
      schedule();
    }
  };
  tasklet a = tasklet(worker)();
  tasklet b = tasklet(worker)();
  // 8 ms of work in 100 us slices: a 200 ms slice budget never fires.
  BOOST_TEST(!run(run_budget{.time = 200ms}));
  BOOST_TEST(!a.alive());
  BOOST_TEST(!b.alive());

  a = tasklet(worker)();
  b = tasklet(worker)();
  tasklet r = run(run_budget{.time = 2ms, .total = true});
  BOOST_TEST((r == a || r == b));
  BOOST_TEST(r.paused());
  r.kill();
  (r == a ? b : a).kill();
}

// test_watchdog.py: the switch trap defers the interrupt too.
BOOST_FIXTURE_TEST_CASE(test_switch_trap_defers_interrupt, clean_scheduler) {
  rt::log log;
  tasklet t([&] {
    switch_trap(1);
    for (int i = 0; i < 10; ++i) tick();
    log("trapped-done");
    switch_trap(-1);
    tick();  // fires here
    log("after");
  });
  t();
  tasklet r = run(run_budget{.switches = 1});
  BOOST_TEST((r == t));
  BOOST_TEST(log.str() == "trapped-done");
  t.kill();
}

// test_watchdog.py: only the outermost budgeted run() installs a budget; a nested budgeted run
// behaves like a plain run().
BOOST_FIXTURE_TEST_CASE(test_nested_budget_is_plain, clean_scheduler) {
  tasklet inner_result;
  bool inner_returned = false;
  tasklet outer = tasklet([&] {
    tasklet([] {
      for (int i = 0; i < 5; ++i) schedule();
    })();
    inner_result = run(run_budget{.switches = 1});
    inner_returned = true;
  })();
  tasklet r = run(run_budget{.switches = 1000});
  BOOST_TEST(!r);
  BOOST_TEST(inner_returned);
  BOOST_TEST(!inner_result);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestWatchdogSoft)

// docs §1.3 run(soft=True): the would-be victim stays in the run queue; when it is resumed it
// continues where it was interrupted (no second, unrequested yield).
BOOST_FIXTURE_TEST_CASE(test_soft_victim_resumes_in_place, clean_scheduler) {
  rt::log log;
  tasklet x = tasklet([&] {
    log("x1");
    tick();  // budget spent here: run() returns
    log("x2");
  })();
  tasklet y = tasklet([&] {
    log("y1");
    schedule();
    log("y2");
  })();
  tasklet r = run(run_budget{.switches = 1, .soft = true});
  BOOST_TEST(!r);
  BOOST_TEST(log.str() == "x1");
  BOOST_TEST(x.scheduled());
  BOOST_TEST(getruncount() == 3);
  run();
  BOOST_TEST(log.str() == "x1 y1 x2 y2");
}

// docs §1.3: an interrupt deferred by the switch trap fires as soon as the trap is released.
BOOST_FIXTURE_TEST_CASE(test_switch_trap_release_fires, clean_scheduler) {
  rt::log log;
  tasklet t([&] {
    switch_trap(1);
    tick();
    log("trapped");
    switch_trap(-1);
    log("after");
  });
  t();
  tasklet r = run(run_budget{.switches = 1});
  BOOST_TEST((r == t));
  BOOST_TEST(log.str() == "trapped");
  t.insert();
  run();
  BOOST_TEST(log.str() == "trapped after");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestWatchdogLifetime)

// docs §1.3 run(timeout): "caller must insert() or kill() it": a victim whose returned handle is
// simply dropped is paused and unnamed, so it is killed (its destructors run).
BOOST_FIXTURE_TEST_CASE(test_dropped_victim_is_killed, clean_scheduler) {
  bool unwound = false;
  tasklet([&] {
    rt::sentinel s(&unwound);
    for (;;) tick();
  })();
  {
    tasklet r = run(run_budget{.switches = 1});
    BOOST_TEST(r.paused());
    BOOST_TEST(!unwound);
  }
  BOOST_TEST(unwound);
}

// An exception that ends a budgeted run() also ends its budget: later check points don't fire.
BOOST_FIXTURE_TEST_CASE(test_budget_ends_with_exception, clean_scheduler) {
  tasklet([] { throw rt::test_error("early"); })();
  BOOST_CHECK_EXCEPTION((void)run(run_budget{.switches = 100}), rt::test_error, msg_is("early"));
  int n = 0;
  tasklet t = tasklet([&] {
    for (int i = 0; i < 200; ++i) {
      ++n;
      tick();
      schedule();
    }
  })();
  run();
  BOOST_TEST(n == 200);
  BOOST_TEST(!t.alive());
}

BOOST_AUTO_TEST_SUITE_END()

// Not ported (no C++ analogue, see docs §4): tempval and schedule(retval) values, bomb objects,
// ignore_nesting/nesting_level, enable_softswitch, pickling, bind_thread, getthreads/
// get_thread_info, frame/recursion_depth, SystemExit handling, run(threadblock=True).
