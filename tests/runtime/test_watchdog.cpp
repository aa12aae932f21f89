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

// Issue 13, item 6: Stackless 2.5's watchdog loop, ported as written. Workers compute without
// ever switching (a Python loop; here a tick() per step, C++'s instruction boundary); the main
// loop runs them round robin with run(100) and puts each victim back. With a check-point budget
// every slice is exactly 100 steps of one worker, whatever the machine's speed: the interleaving
// is the same on every run. (With `.switches` the victim was null: the workers never switch.)
BOOST_FIXTURE_TEST_CASE(test_watchdog_round_robin_is_deterministic, clean_scheduler) {
  std::vector<std::string> slices;
  std::string cur;
  int steps_in_slice = 0;
  auto worker = [&](std::string name, int steps) {
    for (int i = 0; i < steps; ++i) {
      if (cur != name) {
        if (!cur.empty()) slices.push_back(cur + ":" + std::to_string(steps_in_slice));
        cur = name;
        steps_in_slice = 0;
      }
      ++steps_in_slice;
      tick();  // a check point: one "instruction"
    }
  };
  tasklet{worker}(std::string("a"), 250);
  tasklet{worker}(std::string("b"), 120);
  tasklet{worker}(std::string("c"), 30);
  int victims = 0;
  while (getruncount() > 1) {
    tasklet victim = run(run_budget{.checks = 100});
    if (victim) {
      ++victims;
      BOOST_TEST(victim.paused());
      victim.insert();
    }
  }
  slices.push_back(cur + ":" + std::to_string(steps_in_slice));
  std::string got;
  for (const auto& x : slices) got += x + " ";
  // a, b: interrupted at their 100th check point; c ends first; then a, b again; a again.
  BOOST_TEST(got == "a:100 b:100 c:30 a:100 b:20 a:50 ");
  BOOST_TEST(victims == 3);
}

// The check-point budget counts channel operations and schedule() like tick(), and not the
// watchdog's own. Each operation is logged just before it starts (its check point), so with
// total = true the interrupt fires at the start of exactly the budget's logged operation, in the
// tasklet that logged it, whatever the interleaving.
BOOST_FIXTURE_TEST_CASE(test_checks_budget_counts_channel_ops_and_schedule, clean_scheduler) {
  channel<int> c;
  std::vector<char> ops;  // who reached each check point: 'r' receiver, 's' sender, 'y' yielder
  tasklet rx([&] {
    for (;;) {
      ops.push_back('r');
      (void)c.receive();
    }
  });
  tasklet tx([&] {
    for (int i = 0;; ++i) {
      ops.push_back('s');
      c.send(i);
      ops.push_back('y');
      schedule();
    }
  });
  rx();
  tx();
  for (std::uint64_t n : {1u, 2u, 5u, 13u}) {
    BOOST_TEST_CONTEXT("checks = " << n) {
      schedule();  // main's own check points never count (and no budget is active here)
      ops.clear();
      tasklet r = run(run_budget{.checks = n, .total = true});
      BOOST_REQUIRE(ops.size() == n);
      BOOST_TEST((r == (ops.back() == 'r' ? rx : tx)));
      BOOST_TEST(r.paused());
      r.insert();
    }
  }
  rx.kill();
  tx.kill();
}

// Per slice (the default), the count restarts whenever a tasklet is switched in: two tasklets
// that yield every 3 check points are never interrupted by a budget of 4, and the one that
// then runs 4 check points without yielding is.
BOOST_FIXTURE_TEST_CASE(test_checks_budget_is_per_slice, clean_scheduler) {
  int a_rounds = 0, b_rounds = 0;
  tasklet a([&] {
    for (; a_rounds < 10; ++a_rounds) {
      tick();
      tick();
      schedule();  // the third check point of the slice, then a switch
    }
    for (;;) tick();
  });
  tasklet b([&] {
    for (; b_rounds < 20; ++b_rounds) {
      tick();
      tick();
      schedule();
    }
  });
  a();
  b();
  tasklet r = run(run_budget{.checks = 4});
  BOOST_TEST((r == a));
  BOOST_TEST(a_rounds == 10);
  BOOST_TEST(b_rounds == 9);  // b's tenth round has begun (its ticks) but not ended
  r.kill();
  run();
  BOOST_TEST(b_rounds == 20);
}

// A soft check-point budget yields at the check point and returns a null tasklet; nested
// budgeted run()s behave as plain run() (only the outermost installs a budget).
BOOST_FIXTURE_TEST_CASE(test_checks_budget_soft_and_nested, clean_scheduler) {
  int n = 0;
  tasklet t([&] {
    for (int i = 0; i < 50; ++i) {
      ++n;
      tick();
    }
  });
  t();
  tasklet r = run(run_budget{.checks = 7, .soft = true});
  BOOST_TEST(!r);
  BOOST_TEST(n == 7);
  BOOST_TEST(t.scheduled());
  tasklet inner_victim;
  tasklet outer([&] { inner_victim = run(run_budget{.checks = 1}); });
  outer();
  r = run(run_budget{.checks = 10});
  BOOST_TEST(!inner_victim);  // nested: plain run()
  BOOST_TEST((r == t));
  BOOST_TEST(n == 17);
  t.kill();
  run();
}

BOOST_AUTO_TEST_SUITE_END()

// Not ported (no C++ analogue, see docs §4): tempval and schedule(retval) values, bomb objects,
// ignore_nesting/nesting_level, enable_softswitch, pickling, bind_thread, getthreads/
// get_thread_info, frame/recursion_depth, SystemExit handling, run(threadblock=True).
