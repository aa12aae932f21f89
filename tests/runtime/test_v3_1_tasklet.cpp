// Ports of stackless-testsuite v3_1/tasklet/test_functionality.py (TaskletTest): tasklet life
// cycle states, prev/next, run()/switch() placement and the tasklet API's errors.
#include <stackless/stackless.hpp>

#include "helpers.hpp"

using namespace stackless;
using rt::msg_is;

namespace {
void nop() {}
void nop_int(int) {}

struct flags {
  bool alive, paused, blocked, scheduled;
};
// check_flags: the four state predicates of docs/semantics.md §1.2 at once.
void check_flags(const tasklet& t, flags f) {
  BOOST_TEST(t.alive() == f.alive);
  BOOST_TEST(t.paused() == f.paused);
  BOOST_TEST(t.blocked() == f.blocked);
  BOOST_TEST(t.scheduled() == f.scheduled);
}
constexpr flags notalive{false, false, false, false};
constexpr flags paused{true, true, false, false};
constexpr flags scheduled{true, false, false, true};
constexpr flags blocked{true, false, true, true};
}  // namespace

BOOST_AUTO_TEST_SUITE(TaskletTest)

// test_functionality.py testAttr_prev_next: new tasklets are appended just before current.
BOOST_FIXTURE_TEST_CASE(testAttr_prev_next, clean_scheduler) {
  tasklet t(nop);
  BOOST_TEST(!t.prev());
  BOOST_TEST(!t.next());
  t();
  BOOST_TEST((t.prev() == getmain()));
  BOOST_TEST((t.next() == getcurrent()));
  tasklet t2 = tasklet(nop)();
  BOOST_TEST((t.prev() == getcurrent()));
  BOOST_TEST((t.next() == t2));
  BOOST_TEST((t2.prev() == t));
  BOOST_TEST((t2.next() == getcurrent()));
  BOOST_TEST((getmain().prev() == t2));
  BOOST_TEST((getmain().next() == t));
  t.kill();
  t2.kill();
}

// test_functionality.py testLC_initial_bound / testLC_bound_notalive: bound is not alive;
// bind(None) unbinds, and an unbound tasklet cannot be set up.
BOOST_FIXTURE_TEST_CASE(testLC_initial_bound_and_unbind, clean_scheduler) {
  tasklet t(nop);
  check_flags(t, notalive);
  t.bind(nullptr);
  check_flags(t, notalive);
  BOOST_CHECK_EXCEPTION(t.setup(), tasklet_error,
                        msg_is("the tasklet was not bound to a function"));
  t.bind(nop);
  t.setup();
  check_flags(t, scheduled);
  run();
  check_flags(t, notalive);
}

// test_functionality.py testLC_bound_scheduled / testLC_scheduled_paused /
// testLC_scheduled_notalive.
BOOST_FIXTURE_TEST_CASE(testLC_bound_scheduled_paused_notalive, clean_scheduler) {
  bool ran = false;
  tasklet t([&] { ran = true; });
  t.setup();
  check_flags(t, scheduled);
  BOOST_TEST(getruncount() == 2);
  t.remove();
  check_flags(t, paused);
  BOOST_TEST(getruncount() == 1);
  t.insert();
  check_flags(t, scheduled);
  t.kill();
  check_flags(t, notalive);
  BOOST_TEST(!ran);  // a never-run tasklet dies before executing its code
  BOOST_TEST(getruncount() == 1);
}

// test_functionality.py testLC_paused_scheduled: bind with args -> paused; insert() or
// kill(pending=True) -> scheduled.
BOOST_FIXTURE_TEST_CASE(testLC_paused_scheduled, clean_scheduler) {
  tasklet t(nop_int, 1);
  check_flags(t, paused);
  t.insert();
  check_flags(t, scheduled);
  run();
  check_flags(t, notalive);

  bool ran = false;
  tasklet t2([&](int) { ran = true; }, 1);
  check_flags(t2, paused);
  t2.kill(true);
  check_flags(t2, scheduled);
  run();
  check_flags(t2, notalive);
  BOOST_TEST(!ran);
}

// test_functionality.py testLC_paused_notalive: bind(None) or kill() of a paused tasklet.
BOOST_FIXTURE_TEST_CASE(testLC_paused_notalive, clean_scheduler) {
  bool ran = false;
  tasklet t([&](int) { ran = true; }, 1);
  check_flags(t, paused);
  t.bind(nullptr);  // discards it without running anything
  check_flags(t, notalive);
  BOOST_TEST(alive_tasklets() == 0u);

  tasklet t2([&](int) { ran = true; }, 1);
  t2.kill();
  check_flags(t2, notalive);
  BOOST_TEST(!ran);
}

// test_functionality.py testLC_paused_current_notalive: t.run() keeps the caller scheduled,
// t.switch() pauses it.
BOOST_FIXTURE_TEST_CASE(testLC_paused_current_notalive, clean_scheduler) {
  tasklet main = getcurrent();
  int result = -1;
  tasklet t;
  t = tasklet(
      [&](int v) {
        BOOST_TEST(t.is_current());
        check_flags(t, scheduled);
        check_flags(main, scheduled);
        result = v;
      },
      0);
  check_flags(t, paused);
  t.run();
  BOOST_TEST(result == 0);
  check_flags(t, notalive);

  t = tasklet(
      [&](int v) {
        BOOST_TEST(t.is_current());
        check_flags(main, paused);
        result = v;
      },
      1);
  t.switch_to();
  BOOST_TEST(result == 1);
  check_flags(t, notalive);
  BOOST_TEST(getcurrent().is_main());
}

// test_functionality.py testLC_scheduled_current_notalive: same from the scheduled state.
BOOST_FIXTURE_TEST_CASE(testLC_scheduled_current_notalive, clean_scheduler) {
  tasklet main = getcurrent();
  int result = -1;
  tasklet t;
  t = tasklet([&](int v) {
    BOOST_TEST(t.is_current());
    check_flags(main, scheduled);
    result = v;
  });
  t.setup(0);
  check_flags(t, scheduled);
  t.run();
  BOOST_TEST(result == 0);
  check_flags(t, notalive);

  t = tasklet([&](int v) {
    check_flags(main, paused);
    result = v;
  });
  t.setup(1);
  t.switch_to();
  BOOST_TEST(result == 1);
}

// test_functionality.py testLC_scheduled_blocked / assert_state_blocked, testAttr_queue: a
// blocked tasklet is scheduled and blocked; next/prev walk the channel queue, null at its ends.
BOOST_FIXTURE_TEST_CASE(testLC_blocked, clean_scheduler) {
  channel<int> c;
  tasklet a([&] { c.receive(); });
  tasklet b([&] { c.receive(); });
  a();
  b();
  run();
  check_flags(a, blocked);
  check_flags(b, blocked);
  BOOST_TEST(c.balance() == -2);
  BOOST_TEST((c.queue() == a));
  BOOST_TEST((a.next() == b));
  BOOST_TEST(!a.prev());
  BOOST_TEST((b.prev() == a));
  BOOST_TEST(!b.next());
  c.send(1);
  c.send(2);
  check_flags(a, notalive);
  check_flags(b, notalive);
}

// test_functionality.py assert_state_scheduler: the caller of run() is paused while it runs.
BOOST_FIXTURE_TEST_CASE(testLC_scheduler, clean_scheduler) {
  tasklet main = getcurrent();
  bool checked = false;
  tasklet([&] {
    check_flags(main, paused);
    checked = true;
  })();
  run();
  BOOST_TEST(checked);
  check_flags(main, scheduled);
}

// test_functionality.py testSetup errors: setup of an alive tasklet.
BOOST_FIXTURE_TEST_CASE(test_setup_alive, clean_scheduler) {
  tasklet t = tasklet(nop)();
  BOOST_CHECK_EXCEPTION(t.setup(), tasklet_error, msg_is("tasklet is alive"));
  t.kill();
}

// tasklets.rst bind(): rebinding errors (scheduled, current, main, C state).
BOOST_FIXTURE_TEST_CASE(test_bind_errors, clean_scheduler) {
  tasklet t = tasklet(nop)();
  BOOST_CHECK_EXCEPTION(t.bind(nop), tasklet_error, msg_is("tasklet is scheduled"));
  t.kill();
  BOOST_CHECK_EXCEPTION(getmain().bind(nullptr), tasklet_error,
                        msg_is("can't unbind the main tasklet"));
  std::string inner;
  tasklet self;
  self = tasklet([&] {
    try {
      self.bind(nop);
    } catch (const tasklet_error& e) {
      inner = e.what();
    }
    schedule_remove();
  });
  self();
  run();
  BOOST_TEST(inner == "can't (re)bind the current tasklet");
  BOOST_TEST(self.paused());  // started: has C state
  BOOST_CHECK_EXCEPTION(self.bind(nop), tasklet_error, msg_is("tasklet has C state on its stack"));
  self.kill();
}

// tasklets.rst insert()/remove(): errors for blocked, dead and current tasklets; no-ops.
BOOST_FIXTURE_TEST_CASE(test_insert_remove_errors, clean_scheduler) {
  channel<int> c;
  tasklet b = tasklet([&] { c.receive(); })();
  run();
  BOOST_CHECK_EXCEPTION(b.insert(), tasklet_error, msg_is("You cannot run a blocked tasklet"));
  BOOST_CHECK_EXCEPTION(b.remove(), tasklet_error, msg_is("You cannot remove a blocked tasklet."));
  BOOST_CHECK_EXCEPTION(b.run(), tasklet_error, msg_is("You cannot run a blocked tasklet"));
  BOOST_CHECK_EXCEPTION(b.switch_to(), tasklet_error, msg_is("You cannot run a blocked tasklet"));
  b.kill();
  BOOST_TEST(c.balance() == 0);
  BOOST_CHECK_EXCEPTION(b.insert(), tasklet_error,
                        msg_is("You cannot run an unbound(dead) tasklet"));
  BOOST_CHECK_EXCEPTION(b.run(), tasklet_error, msg_is("You cannot run an unbound(dead) tasklet"));
  BOOST_CHECK_EXCEPTION(getcurrent().remove(), tasklet_error,
                        msg_is("The current tasklet cannot be removed."));
  tasklet t = tasklet(nop)();
  t.insert();  // already scheduled: no-op
  BOOST_TEST(getruncount() == 2);
  t.remove();
  t.remove();  // not scheduled: no-op
  BOOST_TEST(getruncount() == 1);
  t.kill();
}

// tasklets.rst run() example (**[V]**): running a scheduled tasklet switches to it in place,
// so every tasklet between it and the caller runs first.
BOOST_FIXTURE_TEST_CASE(test_run_in_place, clean_scheduler) {
  rt::log log;
  tasklet t1 = tasklet([&] { log("t1"); })();
  tasklet t2 = tasklet([&] { log("t2"); })();
  tasklet t3 = tasklet([&] { log("t3"); })();
  t2.run();
  log("main");
  run();
  BOOST_TEST(log.str() == "t2 t3 main t1");
}

// tasklets.rst run() (**[V]**): a paused target is appended just before the caller, so only it
// runs before the caller resumes.
BOOST_FIXTURE_TEST_CASE(test_run_paused, clean_scheduler) {
  rt::log log;
  tasklet t1 = tasklet([&] { log("t1"); })();
  tasklet t2 = tasklet([&] { log("t2"); })();
  tasklet t3 = tasklet([&] { log("t3"); })();
  t2.remove();
  t2.run();
  log("main");
  run();
  BOOST_TEST(log.str() == "t2 main t1 t3");
}

// test_functionality.py testSig_run: run()/switch_to() on the current tasklet are no-ops.
BOOST_FIXTURE_TEST_CASE(test_run_switch_self, clean_scheduler) {
  getcurrent().run();
  getcurrent().switch_to();
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST(getcurrent().is_main());
}

// test_functionality.py testSig_throw / testSig_raise_exception: a tasklet looping on
// schedule_remove() catches what is thrown into it; raise_exception never pends.
BOOST_FIXTURE_TEST_CASE(testSig_throw_raise_exception, clean_scheduler) {
  int done = 0;
  tasklet t([&] {
    for (;;) {
      try {
        schedule_remove();
      } catch (const rt::test_error&) {
        ++done;
      }
    }
  });
  t();
  run();
  BOOST_TEST(t.paused());
  t.throw_exception(std::make_exception_ptr(rt::test_error("x")));
  BOOST_TEST(done == 1);
  t.raise_exception<rt::test_error>("y");
  BOOST_TEST(done == 2);
  t.throw_exception(std::make_exception_ptr(rt::test_error("z")), true);
  BOOST_TEST(done == 2);  // pending: the caller continues
  BOOST_TEST(t.scheduled());
  schedule();
  BOOST_TEST(done == 3);
  t.kill();
  BOOST_TEST(!t.alive());
}

// test_functionality.py testSig_kill: kill of a dead tasklet is a no-op; throw to one is an error.
BOOST_FIXTURE_TEST_CASE(test_kill_throw_dead, clean_scheduler) {
  tasklet t = tasklet(nop)();
  run();
  BOOST_TEST(!t.alive());
  t.kill();
  t.kill(true);
  BOOST_CHECK_EXCEPTION(t.throw_exception(std::make_exception_ptr(rt::test_error("x"))),
                        tasklet_error, msg_is("You cannot throw to a dead tasklet"));
  BOOST_CHECK_EXCEPTION(t.raise_exception<rt::test_error>("x"), tasklet_error,
                        msg_is("You cannot throw to a dead tasklet"));
}

// test_functionality.py testSig_set_atomic: set_atomic returns the old flag; new tasklets start
// non-atomic (docs/semantics.md §1.13.3).
BOOST_FIXTURE_TEST_CASE(testSig_set_atomic, clean_scheduler) {
  tasklet main = getcurrent();
  BOOST_TEST(!main.set_atomic(true));
  BOOST_TEST(main.atomic());
  bool child_atomic = true;
  tasklet([&] { child_atomic = getcurrent().atomic(); })();
  run();
  BOOST_TEST(!child_atomic);
  BOOST_TEST(main.set_atomic(false));
  {
    atomic_section a;
    BOOST_TEST(main.atomic());
  }
  BOOST_TEST(!main.atomic());
}

BOOST_AUTO_TEST_SUITE_END()
