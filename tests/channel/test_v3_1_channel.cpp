// Port of the implementation-neutral conformance suite stackless-testsuite,
// stackless_testsuite/v3_1/channel/test_functionality.py (ChannelTest), plus the kill/throw
// placement rules for blocked tasklets (docs/stackless-semantics.md §1.8, [V] values) and
// exception routing through a blocked main (§1.9).
// Not ported: testSig_constructor and the TypeError cases of testAttr_preference/schedule_all
// (argument checking that C++'s type system does at compile time).
#include "fixture.hpp"
#include "helpers.hpp"

#include <string>
#include <vector>

using namespace stackless;
using namespace chtest;

BOOST_FIXTURE_TEST_SUITE(ChannelTest, clean_scheduler)

// testSig_send: send(value) returns nothing and hands the value to a looping receiver.
BOOST_AUTO_TEST_CASE(testSig_send) {
  channel<int> c;
  std::vector<int> got;
  tasklet t = tasklet([&] {
    while (true) got.push_back(c.receive());
  })();
  c.send(1);
  c.send(42);
  BOOST_TEST(got == (std::vector<int>{1, 42}));
  t.kill();
  BOOST_TEST(c.balance() == 0);
}

// testSig_send_exception: send_exception(exc, *args) with arbitrary arguments.
BOOST_AUTO_TEST_CASE(testSig_send_exception) {
  channel<int> c;
  std::vector<std::vector<int>> got;
  tasklet t = tasklet([&] {
    while (true) {
      try {
        c.receive();
      } catch (const value_error& e) {
        got.push_back(e.args);
      }
    }
  })();
  c.send_exception<value_error>();
  c.send_exception<value_error>(1);
  c.send_exception<value_error>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                19);
  BOOST_REQUIRE(got.size() == 3u);
  BOOST_TEST(got[0].empty());
  BOOST_TEST(got[1] == std::vector<int>{1});
  BOOST_TEST(got[2].size() == 20u);
  // send_exception(std::exception_ptr) sends an existing exception object
  c.send_exception(std::make_exception_ptr(value_error(7)));
  BOOST_TEST(got.back() == std::vector<int>{7});
  t.kill();
}

// testSig_send_throw: send_throw(exc[, val[, tb]])
BOOST_AUTO_TEST_CASE(testSig_send_throw) {
  channel<int> c;
  int caught = 0;
  tasklet t = tasklet([&] {
    while (true) {
      try {
        c.receive();
      } catch (const std::exception&) {
        ++caught;
      }
    }
  })();
  c.send_throw(std::make_exception_ptr(std::runtime_error("x")));
  c.send_throw(std::make_exception_ptr(index_error()));
  BOOST_TEST(caught == 2);
  t.kill();
}

// testSig_send_sequence: returns the number of items sent (42).
BOOST_AUTO_TEST_CASE(testSig_send_sequence) {
  channel<int> c;
  std::vector<int> got;
  tasklet t = tasklet([&] {
    while (true) got.push_back(c.receive());
  })();
  std::vector<int> seq(42);
  for (int i = 0; i < 42; ++i) seq[i] = i;
  BOOST_TEST(c.send_sequence(seq) == 42u);
  BOOST_TEST(got == seq);
  BOOST_TEST(c.send_sequence(std::vector<int>{}) == 0u);
  t.kill();
}

// testSig_next: list(c) receives until a sent StopIteration.
BOOST_AUTO_TEST_CASE(testSig_next) {
  channel<int> c;
  tasklet([&] {
    c.send_sequence(std::vector<int>{0, 1});
    c.send_exception<stop_iteration>();
  })();
  run();
  std::vector<int> list;
  for (int v : c) list.push_back(v);
  BOOST_TEST(list == (std::vector<int>{0, 1}));
  run();
}

// testSig_open / testSig_close
BOOST_AUTO_TEST_CASE(testSig_open_close) {
  channel<int> c;
  c.close();
  BOOST_TEST(c.closing());
  c.close();  // idempotent
  BOOST_TEST(c.closed());
  c.open();
  BOOST_TEST(!c.closing());
  c.open();
  BOOST_TEST(!c.closed());
}

// testAttr_preference
BOOST_AUTO_TEST_CASE(testAttr_preference) {
  channel<int> c;
  BOOST_TEST(c.preference() == -1);
  c.set_preference(0);
  BOOST_TEST(c.preference() == 0);
  c.set_preference(1);
  BOOST_TEST(c.preference() == 1);
  c.set_preference(-1);
  BOOST_TEST(c.preference() == -1);
  c.set_preference(2);
  BOOST_TEST(c.preference() == 1);
  c.set_preference(-2);
  BOOST_TEST(c.preference() == -1);
  c.set_preference(true);
  BOOST_TEST(c.preference() == 1);
}

// testAttr_schedule_all
BOOST_AUTO_TEST_CASE(testAttr_schedule_all) {
  channel<int> c;
  BOOST_TEST(!c.schedule_all());
  c.set_schedule_all(true);
  BOOST_TEST(c.schedule_all());
  c.set_schedule_all(false);
  BOOST_TEST(!c.schedule_all());
  c.set_schedule_all(-1);
  BOOST_TEST(c.schedule_all());
  // schedule_all overrides the preference but does not change it
  BOOST_TEST(c.preference() == -1);
}

// testAttr_balance: blocked senders/receivers count; killing them restores the balance.
BOOST_AUTO_TEST_CASE(testAttr_balance) {
  channel<int> c;
  BOOST_TEST(c.balance() == 0);
  tasklet t = tasklet([&] { c.send(0); })();
  run();
  BOOST_TEST(c.balance() == 1);
  tasklet t2 = tasklet([&] { c.send(0); })();
  run();
  BOOST_TEST(c.balance() == 2);
  t.kill();
  BOOST_TEST(c.balance() == 1);
  t2.kill();
  BOOST_TEST(c.balance() == 0);
  t = tasklet([&] { c.receive(); })();
  run();
  BOOST_TEST(c.balance() == -1);
  t2 = tasklet([&] { c.receive(); })();
  run();
  BOOST_TEST(c.balance() == -2);
  t.kill();
  BOOST_TEST(c.balance() == -1);
  t2.kill();
  BOOST_TEST(c.balance() == 0);
}

// testAttr_closing_closed
BOOST_AUTO_TEST_CASE(testAttr_closing_closed) {
  channel<int> c;
  BOOST_TEST(!c.closing());
  BOOST_TEST(!c.closed());
  tasklet t = tasklet([&] { c.send(0); })();
  run();
  BOOST_TEST(!c.closing());
  BOOST_TEST(!c.closed());
  c.close();
  BOOST_TEST(c.closing());
  BOOST_TEST(!c.closed());
  t.kill();
  BOOST_TEST(c.closing());
  BOOST_TEST(c.closed());
  c.open();
  BOOST_TEST(!c.closing());
  BOOST_TEST(!c.closed());
}

// testAttr_queue
BOOST_AUTO_TEST_CASE(testAttr_queue) {
  channel<int> c;
  BOOST_TEST(!c.queue());
  tasklet t = tasklet([&] { c.send(0); })();
  run();
  BOOST_TEST((t == c.queue()));
  tasklet t2 = tasklet([&] { c.send(0); })();
  run();
  BOOST_TEST((t == c.queue()));
  BOOST_TEST((t2 == t.next()));
  BOOST_TEST(!t2.next());
  t.kill();
  t2.kill();
  BOOST_TEST(!c.queue());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(KillBlocked, clean_scheduler)

// §1.8 [V] ch_kill_blocked_pending: right after kill(pending=True) the tasklet is alive, not
// blocked, scheduled; balance 0; runcount 2. It dies when it next runs.
BOOST_AUTO_TEST_CASE(kill_blocked_receiver_pending) {
  channel<int> c;
  bool killed = false;
  tasklet t = tasklet([&] {
    try {
      c.receive();
    } catch (const tasklet_exit&) {
      killed = true;
      throw;
    }
  })();
  run();
  BOOST_TEST(t.blocked());
  t.kill(true);
  BOOST_TEST(t.alive());
  BOOST_TEST(!t.blocked());
  BOOST_TEST(t.scheduled());
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(getruncount() == 2);
  BOOST_TEST(!killed);
  run();
  BOOST_TEST(killed);
  BOOST_TEST(!t.alive());
}

BOOST_AUTO_TEST_CASE(kill_blocked_sender_pending) {
  channel<int> c;
  tasklet t = tasklet([&] { c.send(1); })();
  tasklet t2 = tasklet([&] { c.send(2); })();
  run();
  BOOST_TEST(c.balance() == 2);
  t.kill(true);
  BOOST_TEST(c.balance() == 1);
  BOOST_TEST((c.queue() == t2));
  BOOST_TEST(t.scheduled());
  BOOST_TEST(!t.blocked());
  // the killed sender's value is never delivered: the next receive gets t2's
  BOOST_TEST(c.receive() == 2);
  run();
  BOOST_TEST(!t.alive());
  BOOST_TEST(!t2.alive());
}

// Immediate kill of a blocked tasklet: it is unblocked, run at once and dies; the caller resumes
// right after it (before other runnable tasklets that were behind the caller).
BOOST_AUTO_TEST_CASE(kill_blocked_immediate) {
  channel<int> c;
  event_log log;
  tasklet t = tasklet([&] {
    try {
      c.receive();
    } catch (const tasklet_exit&) {
      log("t-killed");
      throw;
    }
  })();
  run();
  tasklet([&] { log("other"); })();
  log("before");
  t.kill();
  log("after");
  BOOST_TEST(!t.alive());
  BOOST_TEST(c.balance() == 0);
  run();
  BOOST_TEST(log.str() == "before t-killed after other");
}

// throw into a blocked sender: its send throws, the value is not delivered, balance restored.
BOOST_AUTO_TEST_CASE(throw_blocked_sender) {
  channel<int> c;
  std::string caught;
  tasklet t = tasklet([&] {
    try {
      c.send(1);
    } catch (const index_error& e) {
      caught = e.what();
    }
  })();
  run();
  BOOST_TEST(c.balance() == 1);
  t.throw_exception(std::make_exception_ptr(index_error()));
  BOOST_TEST(caught == "IndexError");
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(!t.alive());
}

// raise_exception into a blocked receiver, pending and not.
BOOST_AUTO_TEST_CASE(throw_blocked_receiver) {
  channel<int> c;
  std::vector<std::vector<int>> caught;
  auto body = [&] {
    try {
      c.receive();
    } catch (const value_error& e) {
      caught.push_back(e.args);
    }
  };
  tasklet t = tasklet(body)();
  run();
  t.raise_exception<value_error>(1, 2);
  BOOST_TEST(caught.size() == 1u);
  BOOST_TEST(c.balance() == 0);
  t = tasklet(body)();
  run();
  t.throw_exception(std::make_exception_ptr(value_error(3)), true);
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(caught.size() == 1u);  // not yet
  run();
  BOOST_REQUIRE(caught.size() == 2u);
  BOOST_TEST(caught[1] == std::vector<int>{3});
}

// An uncaught exception thrown into a blocked tasklet reaches main (§1.9).
BOOST_AUTO_TEST_CASE(throw_blocked_uncaught_reaches_main) {
  channel<int> c;
  tasklet t = tasklet([&] { c.receive(); })();
  run();
  BOOST_CHECK_THROW(t.throw_exception(std::make_exception_ptr(index_error())), index_error);
  BOOST_TEST(!t.alive());
  BOOST_TEST(c.balance() == 0);
}

// §1.9: with main blocked in receive, a dying tasklet's exception wakes main *before* the other
// runnable tasklets, and main's receive is cancelled.
BOOST_AUTO_TEST_CASE(exception_wakes_blocked_main_first) {
  channel<int> c;
  event_log log;
  tasklet([] { throw index_error(); })();
  tasklet([&] { log("Y"); })();
  try {
    c.receive();
  } catch (const index_error&) {
    log("caught");
  }
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(getruncount() == 2);
  run();
  BOOST_TEST(log.str() == "caught Y");
}

// An exception sent through a channel is just data: the sender continues normally.
BOOST_AUTO_TEST_CASE(send_exception_to_blocked_receiver) {
  channel<int> c;
  event_log log;
  tasklet([&] {
    try {
      c.receive();
    } catch (const value_error& e) {
      log("R:" + std::to_string(e.args.at(0)));
    }
  })();
  run();
  BOOST_TEST(c.balance() == -1);
  c.send_exception<value_error>(5);  // preference -1: the receiver runs now
  log("main");
  BOOST_TEST(log.str() == "R:5 main");
  BOOST_TEST(c.balance() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
