// The channel fast path (issue 15): a send or receive that finds a plain partner of the same
// thread waiting skips check_point()'s call, partner() and the separate same_thread()/unpark
// calls. Each case here is one of the conditions under which it must give way to the ordinary
// code, or must decide exactly as the ordinary code does (Stackless's traces).
#include "fixture.hpp"
#include "helpers.hpp"

#include <stackless/select.hpp>

#include <exception>
#include <stdexcept>
#include <string>
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

BOOST_AUTO_TEST_SUITE_END()
