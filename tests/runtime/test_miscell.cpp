// Ports of Stackless/unittests/test_miscell.py (TestKill, TestTaskletThrow*, TestSwitch,
// TestSwitchTrap, TestAtomic, TestErrorHandler) and SYNC stackless_test.py kill placement.
#include <stackless/stackless.hpp>

#include "helpers.hpp"

using namespace stackless;
using rt::msg_is;

namespace {
auto make_err(const char* m) {
  return std::make_exception_ptr(rt::test_error(m));
}
}  // namespace

BOOST_AUTO_TEST_SUITE(TestKill)

// test_miscell.py TestKill.test_kill_pending_true: a pending kill is delivered when the target
// next runs; the caller continues.
BOOST_FIXTURE_TEST_CASE(test_kill_pending_true, clean_scheduler) {
  bool killed = false;
  tasklet t([&] {
    try {
      schedule();
    } catch (const tasklet_exit&) {
      killed = true;
      throw;
    }
  });
  t();
  schedule();  // t runs up to its schedule()
  BOOST_TEST(!killed);
  BOOST_TEST(t.scheduled());
  t.kill(true);
  BOOST_TEST(!killed);
  BOOST_TEST(t.alive());
  BOOST_TEST(t.scheduled());
  schedule();
  BOOST_TEST(killed);
  BOOST_TEST(!t.alive());
}

// kill(stackless::pending): the named form of kill(true).
BOOST_FIXTURE_TEST_CASE(test_kill_named_pending, clean_scheduler) {
  bool killed = false;
  tasklet t([&] {
    try {
      schedule();
    } catch (const tasklet_exit&) {
      killed = true;
      throw;
    }
  });
  t();
  schedule();  // t runs up to its schedule()
  t.kill(stackless::pending);
  BOOST_TEST(!killed);
  BOOST_TEST(t.alive());
  schedule();
  BOOST_TEST(killed);
  BOOST_TEST(!t.alive());
}

// test_miscell.py TestKill.test_kill_pending_False: an immediate kill runs the target now.
BOOST_FIXTURE_TEST_CASE(test_kill_pending_False, clean_scheduler) {
  bool killed = false;
  tasklet t([&] {
    try {
      schedule();
    } catch (const tasklet_exit&) {
      killed = true;
      throw;
    }
  });
  t();
  schedule();
  BOOST_TEST(!killed);
  t.kill();
  BOOST_TEST(killed);
  BOOST_TEST(!t.alive());
  BOOST_TEST(getruncount() == 1);
}

// test_miscell.py TestKill.test_kill_current: killing the current tasklet raises tasklet_exit in
// it at once; the rest of its body does not run.
BOOST_FIXTURE_TEST_CASE(test_kill_current, clean_scheduler) {
  rt::log log;
  tasklet t;
  t = tasklet([&] {
    log("before");
    t.kill();
    log("after");
  });
  t();
  run();
  BOOST_TEST(log.str() == "before");
  BOOST_TEST(!t.alive());
}

// test_miscell.py TestKill test_kill_new (docs §1.8): a killed never-run tasklet never executes
// its code, whether killed immediately, pending, or while paused.
BOOST_FIXTURE_TEST_CASE(test_kill_new, clean_scheduler) {
  int ran = 0;
  tasklet a = tasklet([&] { ++ran; })();
  a.kill();
  BOOST_TEST(!a.alive());
  tasklet b = tasklet([&] { ++ran; })();
  b.kill(true);
  BOOST_TEST(b.alive());
  run();
  BOOST_TEST(!b.alive());
  tasklet c([&](int) { ++ran; }, 1);
  c.kill();
  BOOST_TEST(!c.alive());
  BOOST_TEST(ran == 0);
}

// stackless_test.py (SYNC) testKillJumpsInRunnablesList **[V]**: killing a runnable tasklet
// switches to it in place, so the tasklets after it run before the caller resumes.
BOOST_FIXTURE_TEST_CASE(test_kill_jumps_in_runnables_list, clean_scheduler) {
  rt::log log;
  tasklet dead = tasklet([&] { log("dead"); })();
  tasklet worker = tasklet([&] { log("worker"); })();
  log("before");
  dead.kill();
  log("after");
  BOOST_TEST(log.str() == "before worker after");
}

// docs §1.8 (UT test_channel kill tests): killing a blocked tasklet unblocks it and restores the
// channel balance; its stack unwinds.
BOOST_FIXTURE_TEST_CASE(test_kill_blocked, clean_scheduler) {
  channel<int> c;
  bool unwound = false;
  tasklet t([&] {
    rt::sentinel s(&unwound);
    c.receive();
  });
  t();
  run();
  BOOST_TEST(t.blocked());
  BOOST_TEST(c.balance() == -1);
  t.kill();
  BOOST_TEST(unwound);
  BOOST_TEST(!t.alive());
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(!c.queue());
}

// docs §1.8 ch_kill_blocked_pending **[V]**: right after kill(pending=True) of a blocked tasklet:
// alive, not blocked, scheduled, balance 0, runcount 2.
BOOST_FIXTURE_TEST_CASE(test_kill_blocked_pending, clean_scheduler) {
  channel<int> c;
  bool unwound = false;
  tasklet t([&] {
    rt::sentinel s(&unwound);
    c.send(1);
  });
  t();
  run();
  BOOST_TEST(c.balance() == 1);
  t.kill(true);
  BOOST_TEST(t.alive());
  BOOST_TEST(!t.blocked());
  BOOST_TEST(t.scheduled());
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(getruncount() == 2);
  BOOST_TEST(!unwound);
  run();
  BOOST_TEST(unwound);
  BOOST_TEST(!t.alive());
}

// docs §1.3 TaskletExit: it is an ordinary exception; a tasklet that catches it keeps running.
BOOST_FIXTURE_TEST_CASE(test_kill_caught, clean_scheduler) {
  rt::log log;
  tasklet t([&] {
    try {
      schedule_remove();
    } catch (const tasklet_exit&) {
      log("caught");
    }
    log("continues");
  });
  t();
  run();
  t.kill();
  BOOST_TEST(log.str() == "caught continues");
  BOOST_TEST(!t.alive());
}

// tasklet_exit must not be swallowed by `catch (const std::exception&)` (errors.hpp).
BOOST_FIXTURE_TEST_CASE(test_kill_not_caught_by_std_exception, clean_scheduler) {
  bool swallowed = false;
  tasklet t([&] {
    try {
      schedule_remove();
    } catch (const std::exception&) {
      swallowed = true;
    }
  });
  t();
  run();
  t.kill();
  BOOST_TEST(!swallowed);
  BOOST_TEST(!t.alive());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestTaskletThrowImmediate)

// test_miscell.py TestTaskletThrowImmediate.test_throw_noargs/test_throw_inst: the exception is
// raised in the target at its resumption point, now.
BOOST_FIXTURE_TEST_CASE(test_throw_inst, clean_scheduler) {
  std::string got;
  tasklet t([&] {
    try {
      schedule_remove();
    } catch (const rt::test_error& e) {
      got = e.what();
    }
  });
  t();
  run();
  t.throw_exception(make_err("boom"));
  BOOST_TEST(got == "boom");
  BOOST_TEST(!t.alive());
}

// test_miscell.py TestTaskletThrowImmediate.test_new: throwing into a new tasklet kills it before
// it runs, and the (uncaught) exception propagates to main.
BOOST_FIXTURE_TEST_CASE(test_new, clean_scheduler) {
  bool ran = false;
  tasklet t = tasklet([&] { ran = true; })();
  BOOST_CHECK_EXCEPTION(t.throw_exception(make_err("new")), rt::test_error, msg_is("new"));
  BOOST_TEST(!ran);
  BOOST_TEST(!t.alive());
}

// test_miscell.py test_kill_dead / test_dead: TaskletExit to a finished tasklet is a no-op,
// anything else is an error.
BOOST_FIXTURE_TEST_CASE(test_dead, clean_scheduler) {
  tasklet t = tasklet([] {})();
  run();
  t.kill();
  BOOST_CHECK_EXCEPTION(t.throw_exception(make_err("x")), tasklet_error,
                        msg_is("You cannot throw to a dead tasklet"));
}

// test_miscell.py test_throw_current: a throw to the current tasklet raises in the caller.
BOOST_FIXTURE_TEST_CASE(test_throw_current, clean_scheduler) {
  BOOST_CHECK_EXCEPTION(getcurrent().throw_exception(make_err("self")), rt::test_error,
                        msg_is("self"));
  BOOST_CHECK_EXCEPTION(getcurrent().raise_exception<rt::test_error>("self2"), rt::test_error,
                        msg_is("self2"));
}

// docs §1.8: an immediate throw to a blocked tasklet unblocks it (balance restored), runs it now,
// and the caller resumes when it yields.
BOOST_FIXTURE_TEST_CASE(test_throw_blocked, clean_scheduler) {
  channel<int> c;
  rt::log log;
  tasklet t([&] {
    try {
      c.receive();
    } catch (const rt::test_error& e) {
      log(e.what());
    }
  });
  t();
  run();
  BOOST_TEST(c.balance() == -1);
  t.throw_exception(make_err("thrown"));
  log("main");
  BOOST_TEST(log.str() == "thrown main");
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(!t.alive());
}

// docs §1.8: an immediate throw to a runnable tasklet switches to it in place.
BOOST_FIXTURE_TEST_CASE(test_throw_runnable_in_place, clean_scheduler) {
  rt::log log;
  tasklet t([&] {
    try {
      schedule();
    } catch (const rt::test_error&) {
      log("t:caught");
    }
  });
  t();
  schedule();  // t suspended in schedule(), runnable
  tasklet w = tasklet([&] { log("w"); })();
  t.throw_exception(make_err("x"));
  log("main");
  BOOST_TEST(log.str() == "t:caught w main");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestTaskletThrowPending)

// test_miscell.py TestTaskletThrowPending: with pending=True the target is unblocked and queued,
// the caller continues, and the exception is raised when the target runs.
BOOST_FIXTURE_TEST_CASE(test_throw_blocked_pending, clean_scheduler) {
  channel<int> c;
  rt::log log;
  tasklet t([&] {
    try {
      c.receive();
    } catch (const rt::test_error& e) {
      log(e.what());
    }
  });
  t();
  run();
  t.throw_exception(make_err("pending"), true);
  log("main");
  BOOST_TEST(t.scheduled());
  BOOST_TEST(!t.blocked());
  BOOST_TEST(c.balance() == 0);
  run();
  BOOST_TEST(log.str() == "main pending");
}

// test_miscell.py TestTaskletThrowPending.test_new: a pending throw into a new tasklet: it dies
// without running, and the exception reaches main from run().
BOOST_FIXTURE_TEST_CASE(test_new_pending, clean_scheduler) {
  bool ran = false;
  tasklet t = tasklet([&] { ran = true; })();
  t.throw_exception(make_err("new"), true);
  BOOST_TEST(t.alive());
  BOOST_CHECK_EXCEPTION(run(), rt::test_error, msg_is("new"));
  BOOST_TEST(!ran);
  BOOST_TEST(!t.alive());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestSwitch)

// test_miscell.py TestSwitch.test_switch: switch runs the target; the caller is paused and is
// revived when nothing else is runnable.
BOOST_FIXTURE_TEST_CASE(test_switch, clean_scheduler) {
  bool ran = false;
  tasklet t = tasklet([&] { ran = true; })();
  t.switch_to();
  BOOST_TEST(ran);
  BOOST_TEST(!t.alive());
  BOOST_TEST(getcurrent().is_main());
  BOOST_TEST(getruncount() == 1);
}

// test_miscell.py TestSwitch.test_switch_self: switching to self is a no-op.
BOOST_FIXTURE_TEST_CASE(test_switch_self, clean_scheduler) {
  getcurrent().switch_to();
  BOOST_TEST(getruncount() == 1);
}

// test_miscell.py TestSwitch.test_switch_blocked: a blocked tasklet can't be switched to.
BOOST_FIXTURE_TEST_CASE(test_switch_blocked, clean_scheduler) {
  channel<int> c;
  tasklet t = tasklet([&] { c.receive(); })();
  run();
  BOOST_CHECK_EXCEPTION(t.switch_to(), tasklet_error, msg_is("You cannot run a blocked tasklet"));
  c.send(0);
}

// test_miscell.py TestSwitch.test_switch_paused: a paused tasklet can be switched to; the
// paused caller comes back only when someone inserts it (here: the target).
BOOST_FIXTURE_TEST_CASE(test_switch_paused, clean_scheduler) {
  rt::log log;
  tasklet main = getcurrent();
  tasklet t([&] {
    log("t");
    BOOST_TEST(main.paused());
    main.insert();
    schedule();
    log("t2");
  });
  t.setup();
  t.remove();
  t.switch_to();
  log("main");
  BOOST_TEST(t.scheduled());
  run();
  BOOST_TEST(log.str() == "t main t2");
}

// test_miscell.py TestSwitch.test_switch_trapped / test_switch_self_trapped.
BOOST_FIXTURE_TEST_CASE(test_switch_trapped, clean_scheduler) {
  tasklet t = tasklet([] {})();
  switch_trap(1);
  BOOST_CHECK_EXCEPTION(t.switch_to(), switch_trap_error, msg_is("switch_trap"));
  getcurrent().switch_to();  // no switch: allowed
  switch_trap(-1);
  t.switch_to();
  BOOST_TEST(!t.alive());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestSwitchTrap)

// test_miscell.py TestSwitchTrap.test_schedule/test_run/test_run_specific/test_run_paused:
// every operation that would switch raises "switch_trap" while the trap is set.
BOOST_FIXTURE_TEST_CASE(test_schedule_run, clean_scheduler) {
  tasklet s = tasklet([] {})();
  BOOST_TEST(switch_trap(1) == 0);
  BOOST_CHECK_EXCEPTION(schedule(), switch_trap_error, msg_is("switch_trap"));
  BOOST_CHECK_EXCEPTION(run(), switch_trap_error, msg_is("switch_trap"));
  BOOST_CHECK_EXCEPTION(s.run(), switch_trap_error, msg_is("switch_trap"));
  s.remove();
  BOOST_CHECK_EXCEPTION(s.run(), switch_trap_error, msg_is("switch_trap"));
  BOOST_CHECK_EXCEPTION(s.kill(), switch_trap_error, msg_is("switch_trap"));
  BOOST_CHECK_EXCEPTION(s.raise_exception<rt::test_error>("x"), switch_trap_error,
                        msg_is("switch_trap"));
  s.kill(true);  // pending: no switch, allowed
  BOOST_TEST(switch_trap(-1) == 1);
  BOOST_TEST(s.alive());
  run();
  BOOST_TEST(!s.alive());
}

// test_miscell.py TestSwitchTrap.test_schedule_remove.
BOOST_FIXTURE_TEST_CASE(test_schedule_remove, clean_scheduler) {
  tasklet main = getcurrent();
  tasklet s = tasklet([&] { main.insert(); })();
  switch_trap(1);
  BOOST_CHECK_EXCEPTION(schedule_remove(), switch_trap_error, msg_is("switch_trap"));
  switch_trap(-1);
  BOOST_TEST(getruncount() == 2);
  run();
}

// test_miscell.py TestSwitchTrap.test_send/test_receive (+ docs §1.3 **[V]**): channel operations
// that would switch are refused and leave the channel unchanged; a hand-off that lets the caller
// continue (preference 1 send) is allowed.
BOOST_FIXTURE_TEST_CASE(test_send_receive, clean_scheduler) {
  channel<int> c;
  int got = -1;
  tasklet r = tasklet([&] { got = c.receive(); })();
  run();
  switch_trap(1);
  BOOST_CHECK_EXCEPTION(c.send(1), switch_trap_error, msg_is("switch_trap"));
  BOOST_TEST(c.balance() == -1);
  BOOST_CHECK_EXCEPTION(c.receive(), switch_trap_error, msg_is("switch_trap"));
  BOOST_TEST(c.balance() == -1);
  c.set_preference(1);
  c.send(7);  // the caller continues: no switch
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(got == -1);
  switch_trap(-1);
  run();
  BOOST_TEST(got == 7);
}

// test_miscell.py TestSwitchTrap: operations that do not switch are allowed (run() with nothing
// to run, schedule() alone).
BOOST_FIXTURE_TEST_CASE(test_no_switch_allowed, clean_scheduler) {
  switch_trap(1);
  run();
  schedule();
  switch_trap(-1);
  BOOST_TEST(switch_trap(0) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestAtomic)

// test_miscell.py TestAtomic.testAtomic: `with atomic()` sets the flag and restores the old one.
BOOST_FIXTURE_TEST_CASE(testAtomic, clean_scheduler) {
  tasklet cur = getcurrent();
  bool old = cur.set_atomic(false);
  BOOST_TEST(!cur.atomic());
  {
    atomic_section a;
    BOOST_TEST(cur.atomic());
  }
  BOOST_TEST(!cur.atomic());
  cur.set_atomic(true);
  {
    atomic_section a;
    BOOST_TEST(cur.atomic());
  }
  BOOST_TEST(cur.atomic());
  cur.set_atomic(old);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestErrorHandler)

// test_miscell.py TestErrorHandler.test_handler: the handler runs in the dying tasklet; if it
// returns, the error is handled and the scheduler goes on; set_error_handler returns the old one.
BOOST_FIXTURE_TEST_CASE(test_handler, clean_scheduler) {
  std::vector<tasklet> handled_in;
  std::string what;
  auto prev = set_error_handler([&](std::exception_ptr e) {
    handled_in.push_back(getcurrent());
    try {
      std::rethrow_exception(e);
    } catch (const rt::test_error& x) {
      what = x.what();
    }
  });
  BOOST_TEST(!prev);
  bool other_ran = false;
  tasklet t = tasklet([] { throw rt::test_error("div"); })();
  tasklet u = tasklet([&] { other_ran = true; })();
  run();  // does not throw
  BOOST_TEST(handled_in.size() == 1u);
  BOOST_TEST((handled_in.at(0) == t));
  BOOST_TEST(what == "div");
  BOOST_TEST(other_ran);
  auto mine = set_error_handler(nullptr);
  BOOST_TEST(static_cast<bool>(mine));
}

// test_miscell.py TestErrorHandler.test_borken_handler: if the handler throws, the new exception
// is routed to main instead.
BOOST_FIXTURE_TEST_CASE(test_borken_handler, clean_scheduler) {
  set_error_handler([](std::exception_ptr) { throw std::logic_error("handler broke"); });
  tasklet([] { throw rt::test_error("orig"); })();
  BOOST_CHECK_EXCEPTION(run(), std::logic_error, msg_is("handler broke"));
}

// docs §1.3 set_error_handler: kills (tasklet_exit) are not errors: the handler isn't called.
BOOST_FIXTURE_TEST_CASE(test_handler_not_called_for_kill, clean_scheduler) {
  int calls = 0;
  set_error_handler([&](std::exception_ptr) { ++calls; });
  tasklet t = tasklet([] { schedule_remove(); })();
  run();
  t.kill();
  BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestMiscErrors)

// tasklets.rst throw(): throw(None) is a TypeError in Stackless; a null exception_ptr is refused
// with std::invalid_argument and changes nothing.
BOOST_FIXTURE_TEST_CASE(test_throw_null, clean_scheduler) {
  bool ran = false;
  tasklet t = tasklet([&] { ran = true; })();
  BOOST_CHECK_THROW(t.throw_exception(nullptr), std::invalid_argument);
  BOOST_CHECK_THROW(t.throw_exception(nullptr, true), std::invalid_argument);
  BOOST_CHECK_THROW(getcurrent().throw_exception(nullptr), std::invalid_argument);
  BOOST_TEST(!ran);
  BOOST_TEST(t.scheduled());
  run();
  BOOST_TEST(ran);
}

// tasklet.hpp: a default-constructed handle names no tasklet; using it is a tasklet_error.
BOOST_FIXTURE_TEST_CASE(test_null_handle, clean_scheduler) {
  tasklet t;
  BOOST_TEST(!t);
  BOOST_TEST(!t.alive());
  BOOST_TEST(!t.scheduled());
  BOOST_CHECK_EXCEPTION(t.run(), tasklet_error, msg_is("operation on a null tasklet handle"));
  BOOST_CHECK_EXCEPTION(t.insert(), tasklet_error, msg_is("operation on a null tasklet handle"));
  BOOST_CHECK_EXCEPTION(t.kill(), tasklet_error, msg_is("operation on a null tasklet handle"));
}

// Names: the default name is "tasklet <id>", set_name overrides it; main is "main".
BOOST_FIXTURE_TEST_CASE(test_names, clean_scheduler) {
  tasklet t([] {});
  BOOST_TEST(t.name() == "tasklet " + std::to_string(t.id()));
  t.set_name("worker");
  BOOST_TEST(t.name() == "worker");
  BOOST_TEST(getmain().name() == "main");
  BOOST_TEST(getmain().id() == 0u);
}

// docs §1.10: main paused by schedule_remove() (not in run()) is revived when the queue empties.
BOOST_FIXTURE_TEST_CASE(test_main_schedule_remove_revived, clean_scheduler) {
  rt::log log;
  tasklet([&] {
    log("t");
    schedule();
    log("t2");
  })();
  schedule_remove();
  log("main");
  BOOST_TEST(log.str() == "t t2 main");
  BOOST_TEST(getruncount() == 1);
}

BOOST_AUTO_TEST_SUITE_END()
