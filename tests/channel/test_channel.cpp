// Port of Stackless's own channel unit tests:
//   Stackless/unittests/test_channel.py  (TestChannels, TestClose, Subclassing)
//   Stackless/unittests/test_watchdog.py (TestDeadlock: the channel deadlock rules)
//   Stackless/unittests/test_miscell.py  (TestSwitchTrap: the channel cases)
// Python's RuntimeError/ValueError become our error types; the messages are Stackless's own.
#include "fixture.hpp"
#include "helpers.hpp"

#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <vector>

using namespace stackless;
using namespace chtest;

BOOST_FIXTURE_TEST_SUITE(TestChannels, clean_scheduler)

// test_channel.py TestChannels.testBlockingSend
BOOST_AUTO_TEST_CASE(testBlockingSend) {
  channel<int> ch;
  tasklet t = tasklet([&] { ch.send(1); })();
  t.run();
  BOOST_TEST(t.blocked());
  BOOST_TEST(ch.balance() == 1);
  BOOST_TEST(ch.queue() == t);
  BOOST_TEST(getruncount() == 1);
  t.kill();  // the Python test leaves it to the GC; we must not leak it
  BOOST_TEST(ch.balance() == 0);
  BOOST_TEST(!t.alive());
}

// test_channel.py TestChannels.testBlockingReceive
BOOST_AUTO_TEST_CASE(testBlockingReceive) {
  channel<int> ch;
  tasklet t = tasklet([&] { ch.receive(); })();
  t.run();
  BOOST_TEST(t.blocked());
  BOOST_TEST(ch.balance() == -1);
  t.kill();
  BOOST_TEST(ch.balance() == 0);
}

// test_channel.py TestChannels.testNonBlockingSend: with block_trap set, a send to a waiting
// receiver still works (it never blocks).
BOOST_AUTO_TEST_CASE(testNonBlockingSend) {
  std::vector<int> received;
  channel<int> ch;
  tasklet t = tasklet([&] { received.push_back(ch.receive()); })();
  t.run();
  {
    block_trap_guard trap;
    ch.send(1);
  }
  BOOST_TEST(received == std::vector<int>{1});
  BOOST_TEST(!t.alive());
  BOOST_TEST(!getcurrent().block_trap());
}

// test_channel.py TestChannels.testNonBlockingReceive
BOOST_AUTO_TEST_CASE(testNonBlockingReceive) {
  channel<int> ch;
  tasklet t = tasklet([&](int v) { ch.send(v); })(1);
  t.run();
  int value = 0;
  {
    block_trap_guard trap;
    value = ch.receive();
  }
  // The sender was made runnable (default preference: the receiver continues).
  BOOST_TEST(t.scheduled());
  BOOST_TEST(!t.blocked());
  t.kill();
  BOOST_TEST(value == 1);
}

// test_channel.py TestChannels.testMainTaskletBlockingWithoutASender
BOOST_AUTO_TEST_CASE(testMainTaskletBlockingWithoutASender) {
  BOOST_TEST(getruncount() == 1);
  channel<int> c;
  BOOST_CHECK_EXCEPTION(c.receive(), deadlock_error, what_is(kDeadlock));
  BOOST_TEST(c.balance() == 0);  // the operation was undone
  BOOST_TEST(!c.queue());
  BOOST_TEST(getcurrent().is_main());
  BOOST_TEST(getruncount() == 1);
}

// test_channel.py TestChannels.testSendException: send_exception(ValueError, 1, 2, 3) raises
// ValueError(1, 2, 3) in the receiver.
BOOST_AUTO_TEST_CASE(testSendException) {
  channel<int> ch;
  auto f = [&] { ch.send_exception<value_error>(1, 2, 3); };
  tasklet t = tasklet(f)();
  t.run();
  BOOST_CHECK_THROW(ch.receive(), value_error);
  t = tasklet(f)();
  t.run();
  bool caught = false;
  try {
    ch.receive();
  } catch (const value_error& e) {
    caught = true;
    BOOST_TEST(e.args == (std::vector<int>{1, 2, 3}));
  }
  BOOST_TEST(caught);
  run();  // let the two senders finish
  BOOST_TEST(ch.balance() == 0);
}

// test_channel.py TestChannels.testSendThrow: send_throw(*sys.exc_info()) forwards the exception
// with its traceback. C++ has no traceback; the analogue is that the receiver catches the very
// exception object `bar` threw (std::exception_ptr forwards the object, not a copy).
BOOST_AUTO_TEST_CASE(testSendThrow) {
  channel<int> ch;
  const void* thrown = nullptr;
  auto bar = [&] {
    try {
      throw value_error(1, 2, 3);
    } catch (const value_error& e) {
      thrown = &e;
      throw;
    }
  };
  auto f = [&] {
    try {
      bar();
    } catch (const std::exception&) {
      ch.send_throw(std::current_exception());
    }
  };
  tasklet t = tasklet(f)();
  t.run();
  BOOST_CHECK_THROW(ch.receive(), value_error);

  t = tasklet(f)();
  t.run();
  bool caught = false;
  try {
    ch.receive();
  } catch (const value_error& e) {
    caught = true;
    BOOST_TEST(e.args == (std::vector<int>{1, 2, 3}));
    BOOST_TEST(static_cast<const void*>(&e) == thrown);
  }
  BOOST_TEST(caught);
  run();
}

// test_channel.py TestChannels.testBlockTrapSend: on main and on a worker.
BOOST_AUTO_TEST_CASE(testBlockTrapSend) {
  channel<int> ch;
  int count = 0;
  auto f = [&] {
    {
      block_trap_guard trap;
      BOOST_CHECK_EXCEPTION(ch.send(0), block_trap_error, what_is(kBlockTrap));
      BOOST_TEST(ch.balance() == 0);
    }
    ++count;
  };
  f();
  tasklet{f}();
  run();
  BOOST_TEST(count == 2);
}

// test_channel.py TestChannels.testBlockTrapRecv
BOOST_AUTO_TEST_CASE(testBlockTrapRecv) {
  channel<int> ch;
  int count = 0;
  auto f = [&] {
    {
      block_trap_guard trap;
      BOOST_CHECK_EXCEPTION(ch.receive(), block_trap_error, what_is(kBlockTrap));
      BOOST_TEST(ch.balance() == 0);
    }
    ++count;
  };
  f();
  tasklet{f}();
  run();
  BOOST_TEST(count == 2);
}

// Not ported: TestChannels.testInterthreadCommunication. Our channels belong to one thread's
// scheduler (wait_queue is documented as not thread-safe); Stackless's cross-thread hand-off
// has no counterpart yet.

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(TestClose, clean_scheduler)

// test_channel.py (3.7-slp) TestClose.testSequence: close() does not wake the receiver; the
// sender must pump it with extra sends until the channel is closed. None is std::nullopt here.
BOOST_AUTO_TEST_CASE(testSequence) {
  channel<std::optional<int>> c;
  std::vector<std::optional<int>> data;
  tasklet([&] {
    c.send_sequence(std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    c.close();
    // close does not wake up a receiver, we must pump it
    while (c.closing() && !c.closed()) c.send(std::nullopt);
  })();
  tasklet([&] {
    for (auto& i : c) data.push_back(i);
    // remove the extra "pump" nones at the end....
    while (!data.empty() && !data.back()) data.pop_back();
    data.push_back(10);
  })();
  run();
  std::vector<std::optional<int>> expected;
  for (int i = 0; i <= 10; ++i) expected.emplace_back(i);
  BOOST_TEST((data == expected));
  BOOST_TEST(c.closed());
}

// stackless-testsuite v3_1/channel/test_channel.py TestClose.testSequence: the sender ends the
// iteration with send_throw(StopIteration).
BOOST_AUTO_TEST_CASE(testSequence_send_throw) {
  channel<int> c;
  std::vector<int> data;
  tasklet([&] {
    c.send_sequence(std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    c.send_throw(std::make_exception_ptr(stop_iteration{}));
    c.close();
  })();
  tasklet([&] {
    for (int i : c) data.push_back(i);
    data.push_back(10);
  })();
  run();
  BOOST_TEST(data == (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  BOOST_TEST(c.closed());
}

// test_channel.py (3.7-slp) TestClose.testSequence2: send_sequence returns the count, then
// send_exception(StopIteration) ends the receiver's loop.
BOOST_AUTO_TEST_CASE(testSequence2) {
  channel<int> c;
  std::vector<int> data;
  tasklet([&] {
    std::size_t length = c.send_sequence(std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    BOOST_TEST(length == 10u);
    c.send_exception<stop_iteration>();
    c.close();
  })();
  tasklet([&] {
    for (int i : c) data.push_back(i);
  })();
  run();
  BOOST_TEST(data == (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  BOOST_TEST(c.closed());
}

// test_channel.py TestClose.testSender
BOOST_AUTO_TEST_CASE(testSender) {
  channel<int> c;
  c.close();
  BOOST_CHECK_EXCEPTION(c.send(0), channel_closed, what_is(kClosed));
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(c.closed());
}

// test_channel.py TestClose.testReceiver
BOOST_AUTO_TEST_CASE(testReceiver) {
  channel<int> c;
  c.close();
  BOOST_CHECK_EXCEPTION(c.receive(), channel_closed, what_is(kClosed));
  BOOST_TEST(c.balance() == 0);
}

// test_channel.py TestClose.testIterator: next() on a closed channel raises StopIteration.
BOOST_AUTO_TEST_CASE(testIterator) {
  channel<int> c;
  c.close();
  BOOST_TEST((c.begin() == c.end()));
  int n = 0;
  for (int v : c) n += v + 1;
  BOOST_TEST(n == 0);
}

// Closing takes precedence over the deadlock rule and block_trap over closing, as in
// generic_channel_block (channelobject.c): block_trap, then closing, then the switch.
BOOST_AUTO_TEST_CASE(close_check_order) {
  channel<int> c;
  c.close();
  {
    block_trap_guard trap;
    BOOST_CHECK_EXCEPTION(c.receive(), block_trap_error, what_is(kBlockTrap));
  }
  BOOST_CHECK_EXCEPTION(c.receive(), channel_closed, what_is(kClosed));  // not "Deadlock"
}

// close() never wakes blocked tasklets; waiting partners still complete after it, and closed()
// becomes true only when the balance reaches 0. open() clears closing.
BOOST_AUTO_TEST_CASE(close_keeps_waiters) {
  channel<int> c;
  std::vector<int> got;
  for (int i = 0; i < 2; ++i) tasklet([&] { got.push_back(c.receive()); })();
  run();
  BOOST_TEST(c.balance() == -2);
  c.close();
  BOOST_TEST(c.closing());
  BOOST_TEST(!c.closed());
  run();  // nobody is woken by close
  BOOST_TEST(c.balance() == -2);
  BOOST_TEST(got.empty());
  c.send(7);  // a waiting receiver is still served
  BOOST_TEST(c.balance() == -1);
  BOOST_TEST(!c.closed());
  c.send(8);
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(c.closed());
  BOOST_TEST(got == (std::vector<int>{7, 8}));
  // but nobody new may block
  BOOST_CHECK_EXCEPTION(c.send(9), channel_closed, what_is(kClosed));
  c.open();
  BOOST_TEST(!c.closing());
  BOOST_TEST(!c.closed());
  tasklet([&] { got.push_back(c.receive()); })();
  c.send(9);
  BOOST_TEST(got == (std::vector<int>{7, 8, 9}));
}

// Iteration over a closing channel still drains senders that wait, then stops.
BOOST_AUTO_TEST_CASE(iterate_closing_with_senders) {
  channel<int> c;
  for (int i = 0; i < 3; ++i) tasklet([&c](int v) { c.send(v); })(i);
  run();
  BOOST_TEST(c.balance() == 3);
  c.close();
  std::vector<int> got;
  for (int v : c) got.push_back(v);
  BOOST_TEST(got == (std::vector<int>{0, 1, 2}));
  BOOST_TEST(c.closed());
  run();
}

// receive_unless_closing, the iterator's step: takes from a waiting sender even while closing,
// and returns false instead of blocking (or raising channel_closed) once none is left.
BOOST_AUTO_TEST_CASE(receive_unless_closing_drains_then_ends) {
  channel<int> c;
  tasklet([&c] { c.send(4); })();
  run();
  c.close();
  std::optional<int> v;
  BOOST_TEST(c.receive_unless_closing(v));
  BOOST_TEST(v.value_or(-1) == 4);
  v.reset();
  BOOST_TEST(!c.receive_unless_closing(v));
  BOOST_TEST(!v.has_value());
  BOOST_CHECK_THROW(c.receive(), channel_closed);
  run();  // the sender, made runnable by the first receive, finishes
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(Subclassing, clean_scheduler)

// test_channel.py Subclassing.test_init: a channel subclass with its own constructor.
BOOST_AUTO_TEST_CASE(test_init) {
  class myclass : public channel<int> {
   public:
    explicit myclass(std::string n) : name(std::move(n)) {}
    std::string name;
  };
  myclass c("bong");
  BOOST_TEST(c.name == "bong");
  BOOST_TEST(c.balance() == 0);
  tasklet([&] { c.send(3); })();
  BOOST_TEST(c.receive() == 3);
  run();  // the sender was put right after main (preference -1 favours the receiver)
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(TestDeadlock, clean_scheduler)

// test_watchdog.py TestDeadlock.testReceiveOnMain
BOOST_AUTO_TEST_CASE(testReceiveOnMain) {
  channel<int> c;
  BOOST_CHECK_EXCEPTION(c.receive(), deadlock_error, what_is(kDeadlock));
  BOOST_CHECK_EXCEPTION(c.send(1), deadlock_error, what_is(kDeadlock));
  BOOST_TEST(c.balance() == 0);
}

// test_watchdog.py TestDeadlock.test_main_receiving_endttasklet
BOOST_AUTO_TEST_CASE(test_main_receiving_endttasklet) {
  channel<int> c;
  tasklet t = tasklet([] {})();
  BOOST_CHECK_EXCEPTION(c.receive(), deadlock_error, what_is(kMainReceiving));
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(!t.alive());
}

// test_watchdog.py TestDeadlock.test_main_sending_enddtasklet
BOOST_AUTO_TEST_CASE(test_main_sending_enddtasklet) {
  channel<int> c;
  tasklet t = tasklet([] {})();
  BOOST_CHECK_EXCEPTION(c.send(1), deadlock_error, what_is(kMainSending));
  BOOST_TEST(c.balance() == 0);
}

// test_watchdog.py TestDeadlock.test_main_gets_exception: main blocked in receive gets the
// exception of the dying tasklet; the receive is cancelled (balance restored).
BOOST_AUTO_TEST_CASE(test_main_gets_exception) {
  tasklet([] { throw zero_division_error("mumbai"); })();
  channel<int> c;
  BOOST_CHECK_EXCEPTION(c.receive(), zero_division_error, what_is("mumbai"));
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(!c.queue());
}

// test_watchdog.py TestDeadlock.test_tasklet_deadlock: a tasklet that tries to block while main
// is blocked gets "Deadlock"; its operation is undone.
BOOST_AUTO_TEST_CASE(test_tasklet_deadlock) {
  channel<int> mc;
  bool got = false;
  tasklet([&] {
    channel<int> c;
    BOOST_CHECK_EXCEPTION(c.receive(), deadlock_error, what_is(kDeadlock));
    BOOST_TEST(c.balance() == 0);
    got = true;
    mc.send(0);
  })();
  mc.receive();
  BOOST_TEST(got);
  run();  // the tasklet was put after main by the send (preference -1); let it finish
}

// test_watchdog.py TestDeadlock.test_tasklet_and_main_receive: the tasklet's uncaught
// "Deadlock" is forwarded to the blocked main.
BOOST_AUTO_TEST_CASE(test_tasklet_and_main_receive) {
  channel<int> mc;
  tasklet([] { channel<int>().receive(); })();
  BOOST_CHECK_EXCEPTION(mc.receive(), deadlock_error, what_is(kDeadlock));
  BOOST_TEST(mc.balance() == 0);
}

// A tasklet that blocks as the last runnable one while main waits in run(): run() returns and
// the tasklet stays blocked (test_watchdog.py's test_lone_receive pattern; semantics §1.10).
BOOST_AUTO_TEST_CASE(lone_receive_revives_run) {
  channel<int> c;
  tasklet t = tasklet([&] { c.receive(); })();
  run();
  BOOST_TEST(t.blocked());
  BOOST_TEST(c.balance() == -1);
  BOOST_TEST(getruncount() == 1);
  t.kill();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(TestSwitchTrap, clean_scheduler)

// test_miscell.py TestSwitchTrap.test_send: the receiver is only runnable, so the send would
// block (a switch).
BOOST_AUTO_TEST_CASE(test_send) {
  channel<int> c;
  tasklet([&] { c.receive(); })();
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(c.send(0), switch_trap_error, what_is(kSwitchTrap));
    BOOST_TEST(c.balance() == 0);
  }
  c.send(0);
  BOOST_TEST(getruncount() == 1);
}

// test_miscell.py TestSwitchTrap.test_send_throw
BOOST_AUTO_TEST_CASE(test_send_throw) {
  channel<int> c;
  tasklet([&] { BOOST_CHECK_THROW(c.receive(), not_implemented_error); })();
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(c.send_throw(std::make_exception_ptr(not_implemented_error())),
                          switch_trap_error, what_is(kSwitchTrap));
  }
  c.send_throw(std::make_exception_ptr(not_implemented_error()));
  BOOST_TEST(getruncount() == 1);
}

// test_miscell.py TestSwitchTrap.test_receive
BOOST_AUTO_TEST_CASE(test_receive) {
  channel<int> c;
  tasklet([&] { c.send(1); })();
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(c.receive(), switch_trap_error, what_is(kSwitchTrap));
  }
  BOOST_TEST(c.receive() == 1);
  run();
}

// test_miscell.py TestSwitchTrap.test_receive_throw
BOOST_AUTO_TEST_CASE(test_receive_throw) {
  channel<int> c;
  tasklet([&] { c.send_throw(std::make_exception_ptr(not_implemented_error())); })();
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(c.receive(), switch_trap_error, what_is(kSwitchTrap));
  }
  BOOST_CHECK_THROW(c.receive(), not_implemented_error);
  run();
}

// test_miscell.py TestSwitchTrap.test_raise_exception: raising into a blocked tasklet switches.
BOOST_AUTO_TEST_CASE(test_raise_exception) {
  channel<int> c;
  tasklet s = tasklet([&] { BOOST_CHECK_THROW(c.receive(), index_error); })();
  s.run();
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(s.raise_exception<std::runtime_error>("x"), switch_trap_error,
                          what_is(kSwitchTrap));
    BOOST_TEST(s.blocked());
    BOOST_TEST(c.balance() == -1);
  }
  s.raise_exception<index_error>();
  BOOST_TEST(!s.alive());
  BOOST_TEST(c.balance() == 0);
}

// test_miscell.py TestSwitchTrap.test_kill
BOOST_AUTO_TEST_CASE(test_kill) {
  channel<int> c;
  tasklet s = tasklet([&] { BOOST_CHECK_THROW(c.receive(), tasklet_exit); })();
  s.run();
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(s.kill(), switch_trap_error, what_is(kSwitchTrap));
    BOOST_TEST(s.blocked());
  }
  s.kill();
  BOOST_TEST(!s.alive());
  BOOST_TEST(c.balance() == 0);
}

// semantics §1.3 switch_trap [V]: a send with preference 1 to a waiting receiver does not switch
// (the receiver is only made runnable), so the trap allows it; with preference -1 the same send
// would switch to the receiver and is refused, leaving the receiver blocked.
BOOST_AUTO_TEST_CASE(non_switching_send_allowed) {
  channel<int> c;
  int got = -1;
  tasklet r = tasklet([&] { got = c.receive(); })();
  run();
  BOOST_TEST(r.blocked());
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(c.send(5), switch_trap_error, what_is(kSwitchTrap));
    BOOST_TEST(r.blocked());
    BOOST_TEST(c.balance() == -1);
    c.set_schedule_all(true);
    BOOST_CHECK_EXCEPTION(c.send(5), switch_trap_error, what_is(kSwitchTrap));
    c.set_schedule_all(false);
    BOOST_TEST(c.balance() == -1);
    c.set_preference(1);
    c.send(6);  // no switch: allowed
    BOOST_TEST(c.balance() == 0);
    BOOST_TEST(!r.blocked());
    BOOST_TEST(r.scheduled());
    BOOST_TEST(got == -1);
  }
  run();
  BOOST_TEST(got == 6);
}

// set_preference(prefer::...): the named forms of 1, 0 and -1.
BOOST_AUTO_TEST_CASE(set_preference_named) {
  channel<int> c;
  c.set_preference(prefer::sender);
  BOOST_TEST(c.preference() == 1);
  c.set_preference(prefer::neither);
  BOOST_TEST(c.preference() == 0);
  c.set_preference(prefer::receiver);
  BOOST_TEST(c.preference() == -1);
}

// A receive from a waiting sender with the default preference does not switch either.
BOOST_AUTO_TEST_CASE(non_switching_receive_allowed) {
  channel<int> c;
  tasklet s = tasklet([&] { c.send(4); })();
  run();
  {
    switch_trap_guard trap;
    BOOST_TEST(c.receive() == 4);
    BOOST_TEST(s.scheduled());
  }
  run();
  BOOST_TEST(!s.alive());
}

// block_trap and closing are checked before the switch trap (generic_channel_block raises them
// before slp_schedule_task looks at the trap).
BOOST_AUTO_TEST_CASE(block_trap_and_close_before_switch_trap) {
  channel<int> c;
  tasklet([&] { c.receive(); })();
  {
    switch_trap_guard trap;
    {
      block_trap_guard bt;
      BOOST_CHECK_EXCEPTION(c.send(0), block_trap_error, what_is(kBlockTrap));
    }
    c.close();
    BOOST_CHECK_EXCEPTION(c.send(0), channel_closed, what_is(kClosed));
    c.open();
  }
  c.send(0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ChannelsUnderBudget, clean_scheduler)

// run(timeout) analogue: every channel operation is a check point. A ping-pong pair interrupted
// at a channel operation is returned paused (not blocked, channels consistent); re-inserted, it
// carries on where it stopped (docs/stackless-semantics.md §1.3 run(timeout), §4).
BOOST_AUTO_TEST_CASE(pingpong_interrupted_at_channel_ops) {
  channel<int> ping, pong;
  int pings = 0, pongs = 0;
  constexpr int kRounds = 50;
  tasklet a = tasklet([&] {
    for (int i = 0; i < kRounds; ++i) {
      ping.send(i);
      BOOST_CHECK(pong.receive() == i);
      ++pings;
    }
  })();
  tasklet b = tasklet([&] {
    for (int i = 0; i < kRounds; ++i) {
      pong.send(ping.receive());
      ++pongs;
    }
  })();
  int interrupts = 0;
  for (tasklet r = run(run_budget{.switches = 7}); r; r = run(run_budget{.switches = 7})) {
    ++interrupts;
    BOOST_TEST((r == a || r == b));
    BOOST_TEST(r.paused());
    BOOST_TEST(!r.blocked());
    BOOST_TEST(std::abs(ping.balance()) <= 1);
    BOOST_TEST(std::abs(pong.balance()) <= 1);
    r.insert();
  }
  BOOST_TEST(interrupts > 5);
  BOOST_TEST(pings == kRounds);
  BOOST_TEST(pongs == kRounds);
  BOOST_TEST(ping.balance() == 0);
  BOOST_TEST(pong.balance() == 0);
}

// A tasklet interrupted at a channel operation can be killed while paused; the channel is
// untouched, and the partner blocked on it can be killed too.
BOOST_AUTO_TEST_CASE(kill_interrupted_tasklet) {
  channel<int> c;
  tasklet s = tasklet([&] {
    for (int i = 0;; ++i) c.send(i);
  })();
  tasklet r = tasklet([&] {
    while (true) c.receive();
  })();
  tasklet x = run(run_budget{.switches = 5});
  BOOST_REQUIRE(x);
  BOOST_TEST(x.paused());
  const int balance = c.balance();
  BOOST_TEST(std::abs(balance) <= 1);
  x.kill();
  BOOST_TEST(!x.alive());
  BOOST_TEST(c.balance() == balance);
  (x == s ? r : s).kill();
  BOOST_TEST(c.balance() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ExceptionHandlersAcrossSwitches, clean_scheduler)

// Stackless's idiom `except: ch.send_throw(*sys.exc_info())` blocks inside an exception handler.
// Each tasklet must keep its own "currently handled exceptions" (Python keeps exc_info per
// frame): here A blocks in its handler, B enters its own handler, and A leaves its handler while
// B is still in B's. std::current_exception() in each must stay its own exception.
BOOST_AUTO_TEST_CASE(handlers_interleaved_across_channel_switches) {
  channel<int> ch;
  std::string a_seen, b_seen, a_after;
  auto what_now = [] {
    try {
      std::rethrow_exception(std::current_exception());
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    } catch (...) {
      return std::string("?");
    }
  };
  tasklet([&] {
    try {
      throw std::runtime_error("A");
    } catch (...) {
      ch.send(1);  // blocks inside the handler
      a_seen = what_now();
    }
    a_after = std::current_exception() ? "dangling" : "none";
  })();
  tasklet([&] {
    try {
      throw std::runtime_error("B");
    } catch (...) {
      ch.receive();  // A becomes runnable; we continue (preference -1)
      schedule();    // A runs and leaves its handler while we are still in ours
      b_seen = what_now();
    }
  })();
  run();
  BOOST_TEST(a_seen == "A");
  BOOST_TEST(b_seen == "B");
  BOOST_TEST(a_after == "none");
  BOOST_TEST(!std::current_exception());
  BOOST_TEST(std::uncaught_exceptions() == 0);
}

// A tasklet killed while blocked inside a handler ends that handler (the exception object is
// freed) without touching the handlers of main, which is inside one too.
BOOST_AUTO_TEST_CASE(killed_inside_handler) {
  struct counted_error {
    int* live;
    explicit counted_error(int* l) : live(l) { ++*live; }
    counted_error(const counted_error& o) : live(o.live) { ++*live; }
    ~counted_error() { --*live; }
  };
  int live = 0;
  channel<int> ch;
  tasklet t = tasklet([&] {
    try {
      throw counted_error(&live);
    } catch (const counted_error&) {
      ch.receive();  // blocks inside the handler
    }
  })();
  run();
  BOOST_TEST(live == 1);
  try {
    throw index_error();
  } catch (const index_error&) {
    t.kill();
    BOOST_TEST(live == 0);
    bool still_mine = false;
    try {
      throw;
    } catch (const index_error&) {
      still_mine = true;
    }
    BOOST_TEST(still_mine);
  }
  BOOST_TEST(!std::current_exception());
  BOOST_TEST(ch.balance() == 0);
}

// A destructor that blocks on a channel while a kill unwinds the tasklet: the unwinding resumes
// later; meanwhile std::uncaught_exceptions() is 1 only inside that tasklet, 0 in main.
BOOST_AUTO_TEST_CASE(channel_op_during_unwinding) {
  channel<int> wait, bye;
  std::vector<int> in_dtor;
  struct farewell {
    channel<int>& ch;
    std::vector<int>& seen;
    ~farewell() {
      seen.push_back(std::uncaught_exceptions());
      ch.send(1);  // blocks: main is not receiving yet
      seen.push_back(std::uncaught_exceptions());
    }
  };
  tasklet t = tasklet([&] {
    farewell f{bye, in_dtor};
    wait.receive();
  })();
  run();
  t.kill();  // t unwinds until the destructor blocks, then main resumes
  BOOST_TEST(t.alive());
  BOOST_TEST(t.blocked());
  BOOST_TEST(std::uncaught_exceptions() == 0);
  BOOST_TEST(wait.balance() == 0);
  BOOST_TEST(bye.balance() == 1);
  BOOST_TEST(bye.receive() == 1);
  run();  // t finishes unwinding and dies of the kill
  BOOST_TEST(!t.alive());
  BOOST_TEST(in_dtor == (std::vector<int>{1, 1}));
}

// send_throw(std::current_exception()) from a handler while the receiver is itself inside a
// handler: both see the right exception.
BOOST_AUTO_TEST_CASE(send_throw_between_handlers) {
  channel<int> ch;
  std::string got, own;
  tasklet([&] {
    try {
      throw index_error();
    } catch (...) {
      ch.send_throw(std::current_exception());
    }
  })();
  try {
    throw not_implemented_error();
  } catch (...) {
    try {
      ch.receive();  // main blocks inside its handler; the sender runs inside its own
    } catch (const index_error& e) {
      got = e.what();
    }
    try {
      throw;
    } catch (const std::exception& e) {
      own = e.what();
    }
  }
  run();
  BOOST_TEST(got == "IndexError");
  BOOST_TEST(own == "NotImplementedError");
}

BOOST_AUTO_TEST_SUITE_END()

// send_exception/send_throw with a null exception_ptr: refused with invalid_argument before
// anything happens (a waiting receiver used to get 0, a value nobody sent).
BOOST_FIXTURE_TEST_CASE(send_exception_null_is_refused, clean_scheduler) {
  stackless::channel<int> ch;
  bool got_value = false;
  stackless::tasklet([&] {
    (void)ch.receive();
    got_value = true;
  })();
  stackless::run();
  BOOST_CHECK_THROW(ch.send_exception(std::exception_ptr{}), std::invalid_argument);
  BOOST_CHECK_THROW(ch.send_throw(std::exception_ptr{}), std::invalid_argument);
  stackless::channel<void> sig;
  BOOST_CHECK_THROW(sig.send_exception(std::exception_ptr{}), std::invalid_argument);
  BOOST_TEST(ch.balance() == -1);  // the receiver still waits, untouched
  BOOST_TEST(!got_value);
  ch.send(1);
  BOOST_TEST(got_value);
}
