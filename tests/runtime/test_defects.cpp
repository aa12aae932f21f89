// Ports of Stackless/unittests/test_defects.py (Schedule.testScheduleRemove*,
// TestExceptionInScheduleCallback) and the deadlock scenarios (UT TestDeadlock, docs §1.10).
#include <stackless/stackless.hpp>

#include "helpers.hpp"

using namespace stackless;
using rt::msg_is;

namespace {
const char* const kDeadlock = "Deadlock: the last runnable tasklet cannot be blocked.";
}

BOOST_AUTO_TEST_SUITE(Schedule)

// test_defects.py Schedule.testScheduleRemove: schedule_remove() by the last runnable tasklet
// revives the paused run() caller; the tasklet stays alive and paused.
BOOST_FIXTURE_TEST_CASE(testScheduleRemove, clean_scheduler) {
  rt::log log;
  tasklet t = tasklet([&] {
    log("t");
    schedule_remove();
    log("t-again");
  })();
  run();
  log("main");
  BOOST_TEST(t.alive());
  BOOST_TEST(t.paused());
  BOOST_TEST(getruncount() == 1);
  t.insert();
  run();
  BOOST_TEST(log.str() == "t main t-again");
}

// test_defects.py Schedule.testScheduleRemove2 **[V]**: with main blocked on a channel, the last
// runnable tasklet calling schedule_remove() gets the deadlock error.
BOOST_FIXTURE_TEST_CASE(testScheduleRemove2, clean_scheduler) {
  channel<int> c;
  std::string err;
  tasklet t = tasklet([&] {
    try {
      schedule_remove();
    } catch (const deadlock_error& e) {
      err = e.what();
    }
    BOOST_TEST(getcurrent().scheduled());  // the operation was undone
    c.send(1);
  })();
  BOOST_TEST(c.receive() == 1);
  BOOST_TEST(err == kDeadlock);
  run();
  BOOST_TEST(!t.alive());
}

// docs §1.3 schedule_remove **[V]**: called from main with nothing else runnable it is a no-op.
BOOST_FIXTURE_TEST_CASE(testScheduleRemoveMainAlone, clean_scheduler) {
  schedule_remove();
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST(getcurrent().scheduled());
}

// scheduler.rst wait_for_result() example: schedule_remove + insert() builds a blocking
// primitive; other tasklets run while the waiter is paused.
BOOST_FIXTURE_TEST_CASE(testScheduleRemoveCustomPrimitive, clean_scheduler) {
  rt::log log;
  tasklet waiter;
  int result = 0;
  waiter = tasklet([&] {
    log("wait");
    schedule_remove();
    log("result" + std::to_string(result));
  })();
  tasklet([&] {
    log("produce");
    result = 42;
    waiter.insert();
  })();
  run();
  BOOST_TEST(log.str() == "wait produce result42");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestExceptionInScheduleCallback)

// test_defects.py TestExceptionInScheduleCallback: an exception thrown by the schedule callback
// is reported and dropped; scheduling goes on.
BOOST_FIXTURE_TEST_CASE(test_exception_in_schedule_callback, clean_scheduler) {
  int calls = 0;
  set_schedule_callback([&](const tasklet&, const tasklet&) {
    ++calls;
    throw rt::test_error("callback error");
  });
  rt::log log;
  tasklet([&] {
    log("a");
    schedule();
    log("a2");
  })();
  tasklet([&] { log("b"); })();
  BOOST_CHECK_NO_THROW(run());
  set_schedule_callback(nullptr);
  BOOST_TEST(log.str() == "a b a2");
  BOOST_TEST(calls == 4);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestDeadlock)

// test_miscell.py TestDeadlock.testReceiveOnMain: main receiving alone gets the deadlock error;
// the operation is undone.
BOOST_FIXTURE_TEST_CASE(testReceiveOnMain, clean_scheduler) {
  channel<int> c;
  BOOST_CHECK_EXCEPTION(c.receive(), deadlock_error, msg_is(kDeadlock));
  BOOST_TEST(c.balance() == 0);
  BOOST_CHECK_EXCEPTION(c.send(1), deadlock_error, msg_is(kDeadlock));
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST(getcurrent().scheduled());
}

// test_miscell.py TestDeadlock.test_lone_receive: a tasklet blocking as the last runnable one
// under run() just makes run() return.
BOOST_FIXTURE_TEST_CASE(test_lone_receive, clean_scheduler) {
  channel<int> c;
  tasklet t = tasklet([&] { c.receive(); })();
  BOOST_CHECK_NO_THROW(run());
  BOOST_TEST(t.blocked());
  BOOST_TEST(c.balance() == -1);
  c.send(0);
}

// test_miscell.py TestDeadlock.test_tasklet_deadlock: with main blocked on a channel, a tasklet
// that tries to block as the last runnable one gets the deadlock error (operation undone).
BOOST_FIXTURE_TEST_CASE(test_tasklet_deadlock, clean_scheduler) {
  channel<int> main_ch, other;
  std::string err;
  int other_balance = 99;
  tasklet([&] {
    try {
      other.receive();
    } catch (const deadlock_error& e) {
      err = e.what();
      other_balance = other.balance();
    }
    main_ch.send(3);
  })();
  BOOST_TEST(main_ch.receive() == 3);
  BOOST_TEST(err == kDeadlock);
  BOOST_TEST(other_balance == 0);
  run();
}

// test_miscell.py TestDeadlock.test_tasklet_and_main_receive: if that tasklet does not catch the
// error it dies, and main's receive raises it; main's operation is cancelled.
BOOST_FIXTURE_TEST_CASE(test_tasklet_and_main_receive, clean_scheduler) {
  channel<int> main_ch, other;
  tasklet t = tasklet([&] { other.receive(); })();
  BOOST_CHECK_EXCEPTION(main_ch.receive(), deadlock_error, msg_is(kDeadlock));
  BOOST_TEST(main_ch.balance() == 0);
  BOOST_TEST(other.balance() == 0);
  BOOST_TEST(!t.alive());
}

// test_miscell.py TestDeadlock.test_main_receiving_endttasklet: main blocked receiving and the
// last tasklet returns: main is woken with the Stackless message; the receive is cancelled.
BOOST_FIXTURE_TEST_CASE(test_main_receiving_endttasklet, clean_scheduler) {
  channel<int> c;
  tasklet([] {})();
  BOOST_CHECK_EXCEPTION(c.receive(), deadlock_error,
                        msg_is("the main tasklet is receiving without a sender available."));
  BOOST_TEST(c.balance() == 0);
}

// test_miscell.py TestDeadlock.test_main_sending_enddtasklet.
BOOST_FIXTURE_TEST_CASE(test_main_sending_enddtasklet, clean_scheduler) {
  channel<int> c;
  tasklet([] {})();
  BOOST_CHECK_EXCEPTION(c.send(1), deadlock_error,
                        msg_is("the main tasklet is sending without a receiver available."));
  BOOST_TEST(c.balance() == 0);
}

// test_miscell.py TestDeadlock.test_main_gets_exception: main blocked, the last tasklet dies with
// an exception: main gets that exception instead.
BOOST_FIXTURE_TEST_CASE(test_main_gets_exception, clean_scheduler) {
  channel<int> c;
  tasklet([] { throw rt::test_error("last words"); })();
  BOOST_CHECK_EXCEPTION(c.receive(), rt::test_error, msg_is("last words"));
  BOOST_TEST(c.balance() == 0);
}

// SYNC stackless_test.py: main blocking while other tasklets are runnable is normal; it resumes
// when its partner arrives.
BOOST_FIXTURE_TEST_CASE(test_main_blocks_with_workers, clean_scheduler) {
  channel<std::string> c;
  rt::log log;
  for (int i = 0; i < 4; ++i) {
    tasklet([&, i] {
      log("w" + std::to_string(i));
      if (i == 3) log(c.receive());
    })();
  }
  c.send("msg");
  log("main");
  BOOST_TEST(log.str() == "w0 w1 w2 w3 msg main");
}

// docs §1.5 block_trap: an operation that would block raises; one that completes is fine.
BOOST_FIXTURE_TEST_CASE(test_block_trap, clean_scheduler) {
  channel<int> c;
  tasklet t = tasklet([&] {
    getcurrent().set_block_trap(true);
    try {
      c.receive();
    } catch (const block_trap_error& e) {
      BOOST_TEST(std::string(e.what()) == "this tasklet does not like to be blocked.");
    }
    getcurrent().set_block_trap(false);
    c.receive();
  })();
  run();
  BOOST_TEST(t.blocked());
  getcurrent().set_block_trap(true);
  c.send(1);  // completes immediately: allowed
  getcurrent().set_block_trap(false);
  BOOST_TEST(!t.alive());
}

BOOST_AUTO_TEST_SUITE_END()
