// The channel fast path (issue 15): channel_core::fast_op() runs a whole send or receive in one
// call when no check point, trap or callback is pending: it hands off to a plain partner
// waiting (same thread: preference rule; another thread: the ordinary cross-thread end), or it
// blocks on an open channel, a caller without block_trap. Each case here is one of the
// conditions under which it must give way to the ordinary code, or must decide exactly as the
// ordinary code does (Stackless's traces).
#include "fixture.hpp"
#include "helpers.hpp"

#include <stackless/select.hpp>

#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace stackless;
using namespace chtest;

namespace {
// A receiver blocked on ch (it logs "<tag><value>" when its receive returns).
tasklet blocked_receiver(channel<int>& ch, event_log& log, const std::string& tag) {
  tasklet t = tasklet([&ch, &log, tag] { log(tag + std::to_string(ch.receive())); })();
  run();
  BOOST_REQUIRE(t.blocked());
  return t;
}
tasklet blocked_sender(channel<int>& ch, event_log& log, const std::string& tag, int v) {
  tasklet t = tasklet([&ch, &log, tag, v] {
    ch.send(v);
    log(tag);
  })();
  run();
  BOOST_REQUIRE(t.blocked());
  return t;
}
}  // namespace

BOOST_FIXTURE_TEST_SUITE(ChannelFastPath, clean_scheduler)

// Who runs after a hand-off to a waiting partner, for each preference, in both directions.
BOOST_AUTO_TEST_CASE(each_preference_decides_as_stackless) {
  const char* const send_traces[] = {"r1 m", "m r1", "m r1"};  // preference -1, 0, 1
  const char* const recv_traces[] = {"m7 s", "m7 s", "s m7"};
  for (int pref = -1; pref <= 1; ++pref) {
    BOOST_TEST_CONTEXT("preference " << pref) {
      event_log log;
      channel<int> ch;
      ch.set_preference(pref);
      blocked_receiver(ch, log, "r");
      ch.send(1);
      log("m");
      run();
      BOOST_TEST(log.str() == send_traces[pref + 1]);
      BOOST_TEST(ch.balance() == 0);

      log.clear();
      blocked_sender(ch, log, "s", 7);
      log("m" + std::to_string(ch.receive()));
      run();
      BOOST_TEST(log.str() == recv_traces[pref + 1]);
      BOOST_TEST(ch.balance() == 0);
    }
  }
}

// block_trap refuses blocking only: a partner that set it after blocking is still served.
BOOST_AUTO_TEST_CASE(partner_with_block_trap_is_served) {
  event_log log;
  channel<int> ch;
  tasklet r = blocked_receiver(ch, log, "r");
  r.set_block_trap(true);
  ch.send(3);  // preference -1: the receiver runs now
  BOOST_TEST(log.str() == "r3");
  tasklet s = blocked_sender(ch, log, "s", 4);
  s.set_block_trap(true);
  BOOST_TEST(ch.receive() == 4);
  run();
  BOOST_TEST(log.str() == "r3 s");
}

// close() refuses new blockers only: a partner already waiting completes the operation.
BOOST_AUTO_TEST_CASE(closing_channel_still_serves_its_waiting_partner) {
  event_log log;
  channel<int> ch;
  blocked_receiver(ch, log, "r");
  ch.close();
  BOOST_TEST(ch.closing());
  BOOST_TEST(!ch.closed());
  ch.send(5);
  BOOST_TEST(log.str() == "r5");
  BOOST_TEST(ch.closed());
  BOOST_CHECK_EXCEPTION(ch.send(6), channel_closed, what_is(kClosed));
  ch.open();
  blocked_sender(ch, log, "s", 8);
  ch.close();
  BOOST_TEST(ch.receive() == 8);
  run();
  BOOST_TEST(log.str() == "r5 s");
  BOOST_TEST(ch.closed());
}

// A pending kill (or throw) takes the partner out of the channel: the next send goes to the next
// waiter, in FIFO order, and the killed one dies when it runs.
BOOST_AUTO_TEST_CASE(pending_kill_or_throw_on_the_waiting_partner) {
  for (int throw_it = 0; throw_it <= 1; ++throw_it) {
    BOOST_TEST_CONTEXT((throw_it ? "throw" : "kill")) {
      event_log log;
      channel<int> ch;
      ch.set_preference(0);
      tasklet r1 = tasklet([&] {
        try {
          log("r1:" + std::to_string(ch.receive()));
        } catch (const tasklet_exit&) {
          log("r1:exit");
          throw;
        } catch (const std::runtime_error& e) {
          log(std::string("r1:") + e.what());
        }
      })();
      run();
      blocked_receiver(ch, log, "r2:");
      BOOST_TEST(ch.balance() == -2);
      if (throw_it)
        r1.throw_exception(std::make_exception_ptr(std::runtime_error("boom")), pending);
      else
        r1.kill(pending);
      BOOST_TEST(ch.balance() == -1);
      BOOST_TEST(r1.scheduled());
      ch.send(9);
      log("m");
      run();
      BOOST_TEST(log.str() == (throw_it ? "m r1:boom r2:9" : "m r1:exit r2:9"));
      BOOST_TEST(!r1.alive());
      BOOST_TEST(ch.balance() == 0);
    }
  }
}

// An atomic caller still switches to a preferred partner (atomic only defers budget
// interrupts), and an atomic partner is served like any other.
BOOST_AUTO_TEST_CASE(atomic_caller_and_partner) {
  event_log log;
  channel<int> ch;
  tasklet r = tasklet([&] {
    getcurrent().set_atomic(true);
    log("r" + std::to_string(ch.receive()));
    getcurrent().set_atomic(false);
  })();
  run();
  const bool old = getcurrent().set_atomic(true);
  ch.send(2);
  log("m");
  getcurrent().set_atomic(old);
  BOOST_TEST(log.str() == "r2 m");
}

// The switch trap refuses a hand-off that would switch, allows one that would not, and once it
// is released the switching hand-off works again (the runtime's trap bit follows switch_trap).
BOOST_AUTO_TEST_CASE(switch_trap_set_and_released) {
  event_log log;
  channel<int> ch;
  blocked_receiver(ch, log, "r");
  {
    switch_trap_guard trap;
    BOOST_CHECK_EXCEPTION(ch.send(1), switch_trap_error, what_is(kSwitchTrap));
    BOOST_TEST(ch.balance() == -1);
    ch.set_preference(0);
    ch.send(2);  // the caller continues: no switch, allowed (Stackless)
    BOOST_TEST(ch.balance() == 0);
    ch.set_preference(-1);
  }
  run();
  BOOST_TEST(log.str() == "r2");
  blocked_receiver(ch, log, "r");
  switch_trap(1);
  switch_trap(-1);
  ch.send(3);
  BOOST_TEST(log.str() == "r2 r3");
}

// A budgeted run() counts every channel operation as a check point, even after operations that
// found nothing to do there (the runtime sets its bit again when the budget starts).
BOOST_AUTO_TEST_CASE(budget_counts_fast_hand_offs) {
  event_log log;
  channel<int> ch;
  ch.set_preference(0);
  // Hand-offs before the budget: they clear the check-point bit.
  blocked_receiver(ch, log, "a");
  ch.send(0);
  run();
  for (const char* tag : {"b", "c", "d"}) blocked_receiver(ch, log, tag);
  tasklet w = tasklet([&] {
    for (int i = 1; i <= 3; ++i) {
      ch.send(i);
      log("w" + std::to_string(i));
    }
  })();
  tasklet interrupted = run(run_budget{.checks = 2});
  BOOST_TEST(interrupted == w);
  BOOST_TEST(log.str() == "a0 w1");
  w.kill();
  run();
  BOOST_TEST(log.str() == "a0 w1 b1");
  BOOST_TEST(ch.balance() == -2);
  ch.send(10);
  ch.send(11);
  run();
  BOOST_TEST(log.str() == "a0 w1 b1 c10 d11");
}

// An exception left for the next check point (deliver_later) is raised by a hand-off that would
// otherwise take the fast path, before anything is handed over.
BOOST_AUTO_TEST_CASE(exception_left_for_the_check_point) {
  event_log log;
  channel<int> ch;
  ch.set_preference(0);
  blocked_receiver(ch, log, "r");
  tasklet([&] {
    detail::deliver_later(std::make_exception_ptr(std::runtime_error("later")));
    try {
      ch.send(1);
      log("sent");
    } catch (const std::runtime_error& e) {
      log(e.what());
    }
    BOOST_TEST(ch.balance() == -1);
    ch.send(2);
    log("w");
  })();
  run();
  BOOST_TEST(log.str() == "later w r2");
}

// The channel callback sends operations to the ordinary path while it is set, and only then;
// a callback that removes itself does not make its own channel operations legal.
BOOST_AUTO_TEST_CASE(channel_callback_set_and_removed) {
  event_log log;
  channel<int> ch, other;
  ch.set_preference(0);
  blocked_receiver(ch, log, "r");
  set_channel_callback([&](const channel_base&, const tasklet&, bool sending, bool will_block) {
    log(std::string("cb") + (sending ? "s" : "r") + (will_block ? "b" : ""));
    set_channel_callback(nullptr);
    BOOST_CHECK_EXCEPTION(other.send(1), error, what_is(kRecursive));
  });
  ch.send(1);
  BOOST_TEST(!get_channel_callback());
  blocked_receiver(ch, log, "q");
  ch.send(2);  // no callback any more
  run();
  BOOST_TEST(log.str() == "cbs r1 q2");
}

// A switching hand-off calls the schedule callback (prev, next) as any switch does.
BOOST_AUTO_TEST_CASE(schedule_callback_sees_the_hand_off_switch) {
  event_log log;
  channel<int> ch;
  tasklet r = blocked_receiver(ch, log, "r");
  set_schedule_callback([&](const tasklet& prev, const tasklet& next) {
    log((prev.is_main() ? std::string("main") : std::string("t")) + ">" +
        (next.is_main() ? "main" : "t"));
  });
  ch.send(4);
  set_schedule_callback(nullptr);
  BOOST_TEST(log.str() == "main>t r4 t>main");
}

// A partner waiting in a select is not a plain waiter: the select's case is completed (the
// ordinary path), with the same preference rule.
BOOST_AUTO_TEST_CASE(partner_in_a_select) {
  event_log log;
  channel<int> a, b;
  tasklet([&] {
    const std::size_t i = select(on_receive(a, [&](int v) { log("a" + std::to_string(v)); }),
                                 on_receive(b, [&](int v) { log("b" + std::to_string(v)); }));
    log("sel" + std::to_string(i));
  })();
  run();
  BOOST_TEST(a.balance() == -1);
  BOOST_TEST(b.balance() == -1);
  b.send(6);  // preference -1: the select runs now
  log("m");
  BOOST_TEST(log.str() == "b6 sel1 m");
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
}

// Blocking on a closing channel: the fast path leaves it to block(), which refuses; nothing
// changed (balance), and a partner that comes later is served in order.
BOOST_AUTO_TEST_CASE(blocking_on_a_closing_channel_is_refused) {
  event_log log;
  channel<int> ch;
  channel<void> sig;
  ch.close();
  tasklet t = tasklet([&] {
    for (int dir : {+1, -1}) {
      try {
        if (dir > 0)
          ch.send(1);
        else
          (void)ch.receive();
        log("blocked?");
      } catch (const channel_closed& e) {
        log(std::string(dir > 0 ? "s:" : "r:") + (e.what() == kClosed ? "closed" : e.what()));
      }
      BOOST_TEST(ch.balance() == 0);
    }
    try {
      sig.send();
    } catch (const channel_closed&) {
      log("void?");
    }
  })();
  run();
  BOOST_TEST(log.str() == "s:closed r:closed");
  BOOST_TEST(t.blocked());  // on sig, which is open
  sig.receive();
  run();
  ch.open();
  blocked_sender(ch, log, "s", 4);
  BOOST_TEST(ch.receive() == 4);
  run();
  BOOST_TEST(log.str() == "s:closed r:closed s");
}

// block_trap: the fast path backs out (balance and arrival order as before) and block() raises
// block_trap_error; block_trap wins over closing, as in Stackless (slp_schedule_task order).
BOOST_AUTO_TEST_CASE(blocking_with_block_trap_is_refused) {
  event_log log;
  channel<int> ch;
  {
    block_trap_guard trap;
    BOOST_CHECK_EXCEPTION(ch.receive(), block_trap_error, what_is(kBlockTrap));
    BOOST_CHECK_EXCEPTION(ch.send(1), block_trap_error, what_is(kBlockTrap));
    ch.close();
    BOOST_CHECK_EXCEPTION(ch.send(1), block_trap_error, what_is(kBlockTrap));
    ch.open();
  }
  BOOST_TEST(ch.balance() == 0);
  BOOST_TEST(!ch.queue());
  // The arrival order after the refused waits: a plain receiver, then a select, then a plain
  // receiver again; three sends serve them in that order.
  blocked_receiver(ch, log, "a");
  tasklet([&] { (void)select(on_receive(ch, [&](int v) { log("sel" + std::to_string(v)); })); })();
  run();
  blocked_receiver(ch, log, "b");
  BOOST_TEST(ch.balance() == -3);
  ch.set_preference(0);
  ch.send(1);
  ch.send(2);
  ch.send(3);
  run();
  BOOST_TEST(log.str() == "a1 sel2 b3");
}

// A select waiting in the same direction: the fast path blocks behind it (its arrival number
// after the select's), and the next sends serve the select first.
BOOST_AUTO_TEST_CASE(blocking_behind_a_waiting_select) {
  event_log log;
  channel<int> ch;
  ch.set_preference(0);
  tasklet([&] { (void)select(on_send(ch, 10, [&] { log("sel"); })); })();
  run();
  blocked_sender(ch, log, "s", 20);
  BOOST_TEST(ch.balance() == 2);
  BOOST_TEST(ch.receive() == 10);
  BOOST_TEST(ch.receive() == 20);
  run();
  BOOST_TEST(log.str() == "sel s");
}

// A plain waiter that arrived before a select case is served first although a select case is
// linked (the fast path defers to partner(), which orders the two by arrival).
BOOST_AUTO_TEST_CASE(plain_waiter_before_a_select_case) {
  event_log log;
  channel<int> ch;
  ch.set_preference(0);
  blocked_receiver(ch, log, "r");
  tasklet([&] { (void)select(on_receive(ch, [&](int v) { log("sel" + std::to_string(v)); })); })();
  run();
  ch.send(1);
  ch.send(2);
  run();
  BOOST_TEST(log.str() == "r1 sel2");
}

// The last runnable tasklet blocking (the deadlock rule) goes through park() itself: main is
// refused and the channel is as before.
BOOST_AUTO_TEST_CASE(last_runnable_blocking_is_a_deadlock) {
  channel<int> ch;
  BOOST_CHECK_EXCEPTION(ch.receive(), deadlock_error, what_is(kDeadlock));
  BOOST_TEST(ch.balance() == 0);
  BOOST_CHECK_EXCEPTION(ch.send(1), deadlock_error, what_is(kDeadlock));
  BOOST_TEST(ch.balance() == 0);
  channel<void> v;
  BOOST_CHECK_EXCEPTION(v.receive(), deadlock_error, what_is(kDeadlock));
  BOOST_TEST(v.balance() == 0);
}

// A tasklet blocked by the fast path and killed (or thrown into) while it waits leaves the
// channel (balance restored, nothing delivered) and the exception ends its operation.
BOOST_AUTO_TEST_CASE(kill_or_throw_while_blocked) {
  for (int dir : {+1, -1}) {
    BOOST_TEST_CONTEXT("dir " << dir) {
      event_log log;
      channel<int> ch;
      auto body = [&] {
        try {
          if (dir > 0) {
            ch.send(1);
            log("sent");
          } else {
            log("got" + std::to_string(ch.receive()));
          }
        } catch (const std::runtime_error& e) {
          log(e.what());
        }
      };
      tasklet a = tasklet(body)();
      tasklet b = tasklet(body)();
      run();
      BOOST_TEST(ch.balance() == 2 * dir);
      a.throw_exception(std::make_exception_ptr(std::runtime_error("boom")));
      BOOST_TEST(log.str() == "boom");
      BOOST_TEST(ch.balance() == dir);
      b.kill();
      BOOST_TEST(ch.balance() == 0);
      BOOST_TEST(!a.alive());
      BOOST_TEST(!b.alive());
    }
  }
}

// send_exception to a receiver: the receive that finds the sender waiting raises it after the
// hand-off (the sender is woken by the preference rule first).
BOOST_AUTO_TEST_CASE(receive_from_a_waiting_send_exception) {
  for (int pref : {-1, 1}) {
    BOOST_TEST_CONTEXT("preference " << pref) {
      event_log log;
      channel<int> ch;
      ch.set_preference(pref);
      tasklet([&] {
        ch.send_exception<std::runtime_error>("bad");
        log("s");
      })();
      run();
      BOOST_TEST(ch.balance() == 1);
      try {
        ch.receive();
        log("got?");
      } catch (const std::runtime_error& e) {
        log(std::string("m:") + e.what());
      }
      BOOST_TEST(ch.balance() == 0);
      run();
      BOOST_TEST(log.str() == (pref < 0 ? "m:bad s" : "s m:bad"));
    }
  }
}

// channel<void> takes the same fast path: the preference rule in both directions, blocking
// behind a waiting partner of the same direction.
BOOST_AUTO_TEST_CASE(void_channel_preferences) {
  for (int pref = -1; pref <= 1; ++pref) {
    BOOST_TEST_CONTEXT("preference " << pref) {
      event_log log;
      channel<void> ch;
      ch.set_preference(pref);
      tasklet([&] {
        ch.receive();
        log("r");
      })();
      run();
      ch.send();
      log("m");
      run();
      tasklet([&] {
        ch.send();
        log("s");
      })();
      run();
      ch.receive();
      log("m");
      run();
      const char* const want[] = {"r m m s", "m r m s", "m r s m"};
      BOOST_TEST(log.str() == want[pref + 1]);
      BOOST_TEST(ch.balance() == 0);
    }
  }
}

// A value type whose move may throw never takes the fast path (its transfer must be able to
// abort under the lock): a throwing move leaves the waiting receiver waiting.
namespace {
int g_moves_before_throw = 0;  // > 0: the move that brings it to 0 throws
struct throwing_move {
  int v = 0;
  explicit throwing_move(int x) : v(x) {}
  throwing_move(throwing_move&& o) noexcept(false) : v(o.v) {
    if (g_moves_before_throw > 0 && --g_moves_before_throw == 0) throw std::runtime_error("move");
  }
};
}  // namespace
BOOST_AUTO_TEST_CASE(throwing_move_takes_the_ordinary_path) {
  event_log log;
  channel<throwing_move> ch;
  tasklet r = tasklet([&] { log("r" + std::to_string(ch.receive().v)); })();
  run();
  throwing_move bad(5);
  g_moves_before_throw = 2;  // into send's parameter, then into the receiver's slot: throws
  BOOST_CHECK_THROW(ch.send(std::move(bad)), std::runtime_error);
  BOOST_TEST(g_moves_before_throw == 0);
  BOOST_TEST(ch.balance() == -1);
  BOOST_TEST(r.blocked());
  ch.send(throwing_move(6));
  BOOST_TEST(log.str() == "r6");
  BOOST_TEST(ch.balance() == 0);
}

// A receiver of another thread: the fast path gives the hand-off to the cross-thread end of
// hand_off() (the send returns once that receive has returned: the value arrived).
BOOST_AUTO_TEST_CASE(partner_of_another_thread) {
  channel<int> ch;
  std::atomic<int> got{0};
  stackless::thread other([&] {
    tasklet([&] { got = ch.receive(); })();
    run(thread_block);
  });
  while (ch.balance() != -1) std::this_thread::yield();
  ch.send(42);
  BOOST_TEST(ch.balance() == 0);
  other.join();
  BOOST_TEST(got == 42);
  // And the other way: a sender of another thread waiting, received here.
  stackless::thread sender([&] {
    tasklet([&] { ch.send(43); })();
    run(thread_block);
  });
  while (ch.balance() != 1) std::this_thread::yield();
  BOOST_TEST(ch.receive() == 43);
  sender.join();
  BOOST_TEST(ch.balance() == 0);
}

// The common cases do take the fast path, and the fall-back conditions do not: every case above
// compares with the ordinary code's decisions, so without this count they would all pass with a
// fast path that always gives way. (A kill or throw in an earlier case may have left the
// runtime's check-point bit set: the first check point clears it.) The count exists where the
// library's internal checks are on (the Debug, sanitizer and fuzz lanes); elsewhere only the
// traces are checked.
BOOST_AUTO_TEST_CASE(common_cases_take_the_fast_path_and_fall_backs_do_not) {
  detail::check_point();
  event_log log;
  channel<int> ch;
  const bool counting = detail::fast_op_counting();
  if (!counting) BOOST_TEST_MESSAGE("fast_op is not counted in this build: traces only");
  // expect_fast_ops(n, f): f() completes n operations through the fast path.
  auto expect_fast_ops = [counting](std::uint64_t n, auto&& f) {
    const std::uint64_t n0 = detail::fast_op_count();
    f();
    if (counting) BOOST_TEST(detail::fast_op_count() - n0 == n);
  };
  // A receive that blocks, then a send to it: both fast (the receive counts when it returns).
  tasklet r = tasklet([&] { log("r" + std::to_string(ch.receive())); })();
  expect_fast_ops(2, [&] {
    run();
    BOOST_REQUIRE(r.blocked());
    ch.send(1);
  });
  // The same with schedule_all, and at preference 1 (the sender continues).
  for (const bool all : {true, false}) {
    ch.set_schedule_all(all);
    ch.set_preference(all ? -1 : 1);
    tasklet([&] { log("q" + std::to_string(ch.receive())); })();
    expect_fast_ops(2, [&] {
      run();
      ch.send(2);
      run();
    });
  }
  ch.set_schedule_all(false);
  ch.set_preference(-1);
  BOOST_TEST(log.str() == "r1 q2 q2");
  log.clear();
  // Fall-backs: a block_trap caller and a closing channel (refused), a channel callback, the
  // switch trap, a select waiting: none of these is counted.
  expect_fast_ops(0, [&] {
    block_trap_guard trap;
    BOOST_CHECK_THROW(ch.receive(), block_trap_error);
  });
  BOOST_TEST(ch.balance() == 0);
  expect_fast_ops(0, [&] {
    ch.close();
    BOOST_CHECK_THROW(ch.receive(), channel_closed);
    ch.open();
  });
  blocked_receiver(ch, log, "c");
  ch.set_preference(1);  // the receiver returns later, outside the count (its receive was fast)
  expect_fast_ops(0, [&] {
    set_channel_callback([&](const channel_base&, const tasklet&, bool, bool) {});
    ch.send(3);
    set_channel_callback(nullptr);
  });
  ch.set_preference(-1);
  run();
  blocked_receiver(ch, log, "t");
  expect_fast_ops(0, [&] {
    switch_trap_guard trap;
    BOOST_CHECK_THROW(ch.send(4), switch_trap_error);
  });
  expect_fast_ops(2, [&] {
    ch.send(4);  // the trap released: fast again (the receiver's return counts too)
  });
  tasklet([&] { (void)select(on_receive(ch, [&](int v) { log("s" + std::to_string(v)); })); })();
  run();
  expect_fast_ops(0, [&] { ch.send(5); });
  run();
  BOOST_TEST(log.str() == "c3 t4 s5");
}

BOOST_AUTO_TEST_SUITE_END()
