// stackless::select (issue 16): several channel operations at once, exactly one completes.
// Each test checks the channels' balance() before, while and after a select waits: a select
// counts on every channel it waits on, and whatever ends the wait (another case, a timeout, a
// kill, a throw, deadlock) leaves every channel exactly as before.
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "stackless/testing.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(TestSelect, clean_scheduler)

// A case whose partner already waits completes at once; the others do nothing.
BOOST_AUTO_TEST_CASE(test_ready_receive_and_send) {
  channel<int> a, b;
  channel<std::string> c;
  tasklet([&] { b.send(42); })();
  schedule();
  BOOST_TEST(b.balance() == 1);
  int got = 0;
  const std::size_t i = select(on_receive(a, [&](int v) { got = -v; }),
                               on_receive(b, [&](int v) { got = v; }), on_send(c, "x"));
  BOOST_TEST(i == 1u);
  BOOST_TEST(got == 42);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
  BOOST_TEST(c.balance() == 0);

  std::string r;
  tasklet([&] { r = c.receive(); })();
  schedule();
  BOOST_TEST(c.balance() == -1);
  bool sent = false;
  BOOST_TEST(select(on_receive(a), on_send(c, "hello", [&] { sent = true; })) == 1u);
  run();
  BOOST_TEST(sent);
  BOOST_TEST(r == "hello");
  BOOST_TEST(c.balance() == 0);
}

// on_default: nothing is ready, nothing waits, nothing changes.
BOOST_AUTO_TEST_CASE(test_default) {
  channel<int> a, b;
  bool def = false;
  BOOST_TEST(select(on_receive(a), on_send(b, 1), on_default([&] { def = true; })) == 2u);
  BOOST_TEST(def);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
  BOOST_TEST(select(on_default()) == 0u);  // no channel case at all
  // A ready case wins over the default.
  tasklet([&] { a.send(3); })();
  schedule();
  int v = 0;
  BOOST_TEST(select(on_default(), on_receive(a, [&](int x) { v = x; })) == 1u);
  BOOST_TEST(v == 3);
  run();  // the sender, made runnable
}

// A blocked select counts in every channel's balance; the case that wins completes, and the
// other channels are back to 0 before the partner's send even returns.
BOOST_AUTO_TEST_CASE(test_blocking_balance) {
  channel<int> a, b;
  channel<std::string> c;
  std::size_t idx = 99;
  int got = 0;
  tasklet([&] {
    idx = select(on_receive(a), on_receive(b, [&](int v) { got = v; }), on_send(c, "s"));
  })();
  schedule();
  BOOST_TEST(a.balance() == -1);
  BOOST_TEST(b.balance() == -1);
  BOOST_TEST(c.balance() == 1);
  BOOST_TEST(!a.queue());  // a select's cases count in balance() but are not in queue()
  b.set_preference(0);     // the sender continues after the hand-off
  b.send(7);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
  BOOST_TEST(c.balance() == 0);
  run();
  BOOST_TEST(idx == 1u);
  BOOST_TEST(got == 7);
  // The select did not send on c: a receive there must block now.
  BOOST_TEST(!receive_for(c, 0ms).has_value());
}

// Select and plain waiters share one FIFO per channel.
BOOST_AUTO_TEST_CASE(test_fifo_with_plain_waiters) {
  channel<int> a, b;
  std::vector<std::string> log;
  tasklet([&] { log.push_back("plain " + std::to_string(a.receive())); })();
  tasklet([&] {
    select(on_receive(b),
           on_receive(a, [&](int v) { log.push_back("select " + std::to_string(v)); }));
  })();
  tasklet([&] { log.push_back("plain2 " + std::to_string(a.receive())); })();
  schedule();
  BOOST_TEST(a.balance() == -3);
  BOOST_TEST(b.balance() == -1);
  a.send(1);
  a.send(2);
  BOOST_TEST(b.balance() == 0);
  a.send(3);
  run();
  BOOST_TEST(log == (std::vector<std::string>{"plain 1", "select 2", "plain2 3"}));
}

// Preference applies to a select's rendezvous as to a plain one: with the default (-1) a send to
// a waiting select runs the select at once; with 1 the sender continues.
BOOST_AUTO_TEST_CASE(test_preference) {
  channel<int> a;
  std::vector<int> log;
  tasklet([&] { select(on_receive(a, [&](int v) { log.push_back(v); })); })();
  schedule();
  a.send(1);
  log.push_back(100);
  BOOST_TEST(log == (std::vector<int>{1, 100}));
  log.clear();
  a.set_preference(1);
  tasklet([&] { select(on_receive(a, [&](int v) { log.push_back(v); })); })();
  schedule();
  a.send(2);
  log.push_back(100);
  run();
  BOOST_TEST(log == (std::vector<int>{100, 2}));
}

// Several ready cases: each is chosen about equally often (uniform, as Go).
BOOST_AUTO_TEST_CASE(test_fair_choice) {
  channel<int> a, b, c;
  a.set_preference(1);
  b.set_preference(1);
  c.set_preference(1);
  int count[3] = {0, 0, 0};
  for (int i = 0; i < 3000; ++i) {
    tasklet([&] { a.send(0); })();
    tasklet([&] { b.send(1); })();
    tasklet([&] { c.send(2); })();
    schedule();
    ++count[select(on_receive(a), on_receive(b), on_receive(c))];
    // drain the two that were not taken
    for (int k = 0; k < 2; ++k) select(on_receive(a), on_receive(b), on_receive(c));
    run();
  }
  for (int k = 0; k < 3; ++k) {
    BOOST_TEST_INFO("case " << k);
    BOOST_TEST((count[k] > 800 && count[k] < 1200));  // 1000 expected; sd ~26
  }
}

// Bad selects are refused before anything changes.
BOOST_AUTO_TEST_CASE(test_refused) {
  channel<int> a;
  BOOST_CHECK_THROW(select(on_receive(a).only_if(false)), std::invalid_argument);
  BOOST_CHECK_THROW(select(on_receive(a), on_send(a, 1)), std::invalid_argument);
  BOOST_CHECK_THROW(select(on_receive(a), on_send(a, 1), on_default()), std::invalid_argument);
  BOOST_TEST(a.balance() == 0);
  // only_if(false) leaves a case out; on_default runs.
  tasklet([&] { a.send(1); })();
  schedule();
  BOOST_TEST(select(on_receive(a).only_if(false), on_default()) == 1u);
  BOOST_TEST(a.balance() == 1);
  BOOST_TEST(select(on_receive(a).only_if(true), on_default()) == 0u);
  run();
}

// The same channel twice (same direction): both count while waiting, one completes.
BOOST_AUTO_TEST_CASE(test_same_channel_twice) {
  channel<int> a;
  std::size_t idx = 9;
  int got = 0;
  tasklet([&] {
    idx = select(on_receive(a, [&](int v) { got = v; }), on_receive(a, [&](int v) { got = -v; }));
  })();
  schedule();
  BOOST_TEST(a.balance() == -2);
  a.send(5);
  BOOST_TEST(a.balance() == 0);
  run();
  BOOST_TEST(idx == 0u);  // the first case arrived first (FIFO)
  BOOST_TEST(got == 5);
  // Sends, twice, to the same channel: only one value is delivered.
  tasklet([&] { idx = select(on_send(a, 1), on_send(a, 2)); })();
  schedule();
  BOOST_TEST(a.balance() == 2);
  const int r = a.receive();
  BOOST_TEST((r == 1 || r == 2));
  BOOST_TEST(a.balance() == 0);
  run();
  BOOST_TEST(idx == static_cast<std::size_t>(r - 1));
}

// Closing channels: a waiting partner still completes; a select that would have to wait on a
// closing channel raises select_closed (naming the case) and waits nowhere; close() does not
// wake a select that already waits.
BOOST_AUTO_TEST_CASE(test_closing) {
  channel<int> a, b;
  tasklet([&] { a.send(1); })();
  schedule();
  a.close();
  BOOST_TEST(select(on_receive(a), on_receive(b)) == 0u);  // the waiting sender completes
  BOOST_TEST(a.closed());
  try {
    select(on_receive(b), on_receive(a));
    BOOST_FAIL("no exception");
  } catch (const select_closed& e) {
    BOOST_TEST(e.case_index() == 1u);
  }
  BOOST_CHECK_THROW(select(on_send(a, 1)), channel_closed);
  BOOST_TEST(b.balance() == 0);
  BOOST_TEST(a.balance() == 0);
  // Ready elsewhere: no error, the closing channel is not touched.
  tasklet([&] { b.send(2); })();
  schedule();
  BOOST_TEST(select(on_receive(a), on_receive(b)) == 1u);
  // With a default: nothing is waited on, so no error.
  BOOST_TEST(select(on_receive(a), on_default()) == 1u);
  // close() while a select waits: it keeps waiting, and a sender still completes it.
  a.open();
  std::size_t idx = 9;
  tasklet([&] { idx = select(on_receive(a), on_receive(b)); })();
  schedule();
  a.close();
  b.close();
  BOOST_TEST(a.balance() == -1);
  b.send(3);
  run();
  BOOST_TEST(idx == 1u);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(a.closed());
}

// send_exception to a select's receive case: select throws it; the case is taken.
BOOST_AUTO_TEST_CASE(test_send_exception) {
  channel<int> a, b;
  bool caught = false, handler = false;
  tasklet([&] {
    try {
      select(on_receive(a, [&](int) { handler = true; }), on_receive(b));
    } catch (const std::range_error& e) {
      caught = std::string(e.what()) == "boom";
    }
  })();
  schedule();
  a.send_exception<std::range_error>("boom");
  run();
  BOOST_TEST(caught);
  BOOST_TEST(!handler);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
  // A sender already waiting with an exception: thrown at once.
  tasklet([&] { b.send_exception<std::range_error>("now"); })();
  schedule();
  BOOST_CHECK_THROW(select(on_receive(a), on_receive(b)), std::range_error);
  BOOST_TEST(b.balance() == 0);
  run();
}

// Kill and throw while a select waits: every channel as before; the values to send stay unsent.
BOOST_AUTO_TEST_CASE(test_kill_and_throw_while_waiting) {
  channel<int> a, b;
  channel<std::unique_ptr<int>> c;
  bool after = false;
  tasklet t([&] {
    select(on_receive(a), on_receive(b), on_send(c, std::make_unique<int>(1)));
    after = true;
  });
  t();
  schedule();
  BOOST_TEST(a.balance() == -1);
  BOOST_TEST(c.balance() == 1);
  t.kill();
  BOOST_TEST(!after);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
  BOOST_TEST(c.balance() == 0);
  bool caught = false;
  tasklet u([&] {
    try {
      select(on_receive(a), on_send(c, std::make_unique<int>(2)));
    } catch (const std::logic_error&) {
      caught = true;
    }
  });
  u();
  schedule();
  u.throw_exception(std::make_exception_ptr(std::logic_error("x")));
  run();
  BOOST_TEST(caught);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(c.balance() == 0);
  // The channels still work.
  tasklet([&] { a.send(1); })();
  BOOST_TEST(a.receive() == 1);
  run();
}

// A kill after the case completed but before the select ran again: the kill propagates, as for
// a plain receive (the value was delivered); no channel is left counting it.
BOOST_AUTO_TEST_CASE(test_kill_after_completion) {
  channel<int> a, b;
  a.set_preference(1);  // the sender continues: the select is runnable, not yet running
  bool after = false;
  tasklet t([&] {
    select(on_receive(a), on_receive(b));
    after = true;
  });
  t();
  schedule();
  a.send(1);
  BOOST_TEST(t.scheduled());
  BOOST_TEST(b.balance() == 0);
  t.kill();
  BOOST_TEST(!after);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
}

// Killed while switched away inside the hand-off: the select sent to a waiting receiver, which
// (preferred) runs at once and kills it. The send happened; the kill propagates; no balance left.
BOOST_AUTO_TEST_CASE(test_kill_during_hand_off) {
  channel<int> a, b;
  tasklet sel;
  int got = 0;
  bool after = false;
  tasklet([&] {
    got = a.receive();
    sel.kill(true);  // pending: it dies when it runs again
  })();
  schedule();
  sel = tasklet([&] {
    select(on_send(a, 5), on_receive(b));
    after = true;
  });
  sel();
  run();
  BOOST_TEST(got == 5);
  BOOST_TEST(!after);
  BOOST_TEST(!sel.alive());
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
}

// The last handle of a channel is dropped while a select waits on it: the channel lives on
// until the select has left it (as for a blocked plain receive); the select still completes.
BOOST_AUTO_TEST_CASE(test_channel_dropped_while_waiting) {
  auto a = std::make_unique<channel<int>>();
  channel<int> b;
  std::size_t idx = 9;
  tasklet([&] { idx = select(on_receive(*a), on_receive(b)); })();
  schedule();
  a.reset();
  b.send(1);
  run();
  BOOST_TEST(idx == 1u);
  // Dropped, then the select is killed.
  a = std::make_unique<channel<int>>();
  tasklet t([&] { select(on_receive(*a), on_receive(b)); });
  t();
  schedule();
  a.reset();
  t.kill();
  BOOST_TEST(b.balance() == 0);
}

// Deadlock, block trap: refused as a plain receive is, with nothing left waiting.
BOOST_AUTO_TEST_CASE(test_deadlock_and_block_trap) {
  channel<int> a, b;
  BOOST_CHECK_THROW(select(on_receive(a), on_send(b, 1)), deadlock_error);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
  bool trapped = false;
  tasklet t([&] {
    try {
      select(on_receive(a));
    } catch (const block_trap_error&) {
      trapped = true;
    }
  });
  t.set_block_trap(true);
  t();
  run();
  BOOST_TEST(trapped);
  BOOST_TEST(a.balance() == 0);
}

// Select meets select (same thread), and channel<void>.
BOOST_AUTO_TEST_CASE(test_select_meets_select_and_void) {
  channel<int> a, b;
  channel<void> s;
  std::size_t i1 = 9, i2 = 9;
  int got = 0;
  tasklet([&] { i1 = select(on_send(a, 10), on_send(b, 20)); })();
  schedule();
  BOOST_TEST(a.balance() == 1);
  BOOST_TEST(b.balance() == 1);
  tasklet([&] { i2 = select(on_receive(s), on_receive(b, [&](int v) { got = v; })); })();
  run();
  BOOST_TEST(i1 == 1u);
  BOOST_TEST(i2 == 1u);
  BOOST_TEST(got == 20);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(s.balance() == 0);
  bool signalled = false;
  tasklet([&] { select(on_receive(s, [&] { signalled = true; })); })();
  schedule();
  BOOST_TEST(s.balance() == -1);
  BOOST_TEST(select(on_send(s)) == 0u);
  run();
  BOOST_TEST(signalled);
}

// on_timeout: nothing arrives: the timeout case; every channel as before.
BOOST_AUTO_TEST_CASE(test_timeout) {
  channel<int> a, b;
  bool timed_out = false;
  BOOST_TEST(select(on_receive(a), on_send(b, 1), on_timeout(2ms, [&] { timed_out = true; })) ==
             2u);
  BOOST_TEST(timed_out);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
  // 0 and negative: try once.
  BOOST_TEST(select(on_receive(a), on_timeout(0ms)) == 1u);
  BOOST_TEST(select(on_receive(a), on_timeout(-5s)) == 1u);
  BOOST_TEST(select(on_timeout(0ms)) == 0u);
  tasklet([&] { a.send(4); })();
  schedule();
  BOOST_TEST(select(on_timeout(-1ms), on_receive(a)) == 1u);  // ready: taken even at 0
  // Huge: no timer, a partner completes it.
  std::size_t idx = 9;
  tasklet([&] { idx = select(on_receive(a), on_timeout(std::chrono::hours::max())); })();
  schedule();
  BOOST_TEST(a.balance() == -1);
  a.send(1);
  run();
  BOOST_TEST(idx == 0u);
  BOOST_TEST(a.balance() == 0);
  // on_deadline, past and in the future.
  BOOST_TEST(select(on_receive(a), on_deadline(std::chrono::steady_clock::now() - 1s)) == 1u);
  BOOST_TEST(select(on_receive(a), on_deadline(std::chrono::system_clock::now() + 1ms)) == 1u);
  BOOST_TEST(a.balance() == 0);
}

// A partner before the timeout: the case is taken and the timer is gone.
BOOST_AUTO_TEST_CASE(test_timeout_served) {
  channel<int> a;
  std::size_t idx = 9;
  tasklet([&] { idx = select(on_timeout(10s), on_receive(a)); })();
  schedule();
  a.send(1);
  run();
  BOOST_TEST(idx == 1u);
  BOOST_TEST(alive_tasklets() == 0u);
}

// Only a timeout: select waits like a sleep. A kill during a timed select restores everything.
BOOST_AUTO_TEST_CASE(test_timeout_only_and_kill) {
  BOOST_TEST(select(on_timeout(1ms)) == 0u);
  channel<int> a;
  tasklet t([&] { select(on_receive(a), on_timeout(1h)); });
  t();
  schedule();
  BOOST_TEST(a.balance() == -1);
  t.kill();
  BOOST_TEST(a.balance() == 0);
  run();
}

// Under virtual time a one-hour select timeout takes no real time.
STACKLESS_VIRTUAL_TIME_TEST_CASE(test_virtual_time_select) {
  channel<int> a, b;
  const auto t0 = stackless::now();
  BOOST_TEST(select(on_receive(a), on_receive(b), on_timeout(1h)) == 2u);
  BOOST_TEST((stackless::now() - t0 >= 1h));
  BOOST_TEST(a.balance() == 0);
  tasklet([&] {
    stackless::sleep(30min);
    b.send(1);
  })();
  BOOST_TEST(select(on_receive(a), on_receive(b), on_timeout(1h)) == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- across threads --------------------------------------------------------------------------
BOOST_FIXTURE_TEST_SUITE(TestSelectThreads, clean_scheduler)

// Two producer threads, one selecting consumer: every item exactly once.
BOOST_AUTO_TEST_CASE(test_select_receive_across_threads) {
  channel<int> a, b;
  constexpr int n = 2000;
  stackless::thread pa([&] {
    for (int i = 1; i <= n; ++i) a.send(i);
    a.send(0);
  });
  stackless::thread pb([&] {
    for (int i = 1; i <= n; ++i) b.send(-i);
    b.send(0);
  });
  long sum_a = 0, sum_b = 0;
  int open = 2;
  bool a_open = true, b_open = true;
  while (open > 0) {
    select(on_receive(a,
                      [&](int v) {
                        sum_a += v;
                        if (v == 0) a_open = false, --open;
                      })
               .only_if(a_open),
           on_receive(b, [&](int v) {
             sum_b += v;
             if (v == 0) b_open = false, --open;
           }).only_if(b_open));
  }
  pa.join();
  pb.join();
  BOOST_TEST(sum_a == long(n) * (n + 1) / 2);
  BOOST_TEST(sum_b == -long(n) * (n + 1) / 2);
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
}

// Selects on both sides, on two threads, sends and receives mixed: every communication pairs
// one select of each side, and nothing is lost or duplicated.
BOOST_AUTO_TEST_CASE(test_select_vs_select_across_threads) {
  channel<int> x, y;
  constexpr int n = 2000;
  std::atomic<long> sent{0};
  stackless::thread other([&] {
    for (int i = 1; i <= n; ++i) {
      const std::size_t k = select(on_send(x, i), on_send(y, i));
      (void)k;
      sent += i;
    }
  });
  long got = 0;
  for (int i = 0; i < n; ++i)
    select(on_receive(x, [&](int v) { got += v; }), on_receive(y, [&](int v) { got += v; }));
  other.join();
  BOOST_TEST(got == long(n) * (n + 1) / 2);
  BOOST_TEST(sent.load() == got);
  BOOST_TEST(x.balance() == 0);
  BOOST_TEST(y.balance() == 0);
}

// A timed select against a sender on another thread that also gives up: each value is either
// received exactly once or reported unsent, whichever wins the race.
BOOST_AUTO_TEST_CASE(test_timeout_race_across_threads) {
  channel<int> a, b;
  constexpr int n = 300;
  std::atomic<long> delivered{0};
  stackless::thread sender([&] {
    for (int i = 1; i <= n; ++i)
      if (send_for(a, i, std::chrono::microseconds(i % 7 * 50))) delivered += i;
  });
  long got = 0;
  for (int i = 0; i < 4 * n; ++i)
    select(on_receive(a, [&](int v) { got += v; }), on_receive(b),
           on_timeout(std::chrono::microseconds(i % 5 * 40)));
  sender.join();
  while (auto v = receive_for(a, 0ms)) got += *v;
  BOOST_TEST(got == delivered.load());
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
}

// Kills from the select's own thread racing with a remote partner: the channel is balanced.
BOOST_AUTO_TEST_CASE(test_kill_race_across_threads) {
  channel<int> a, b;
  constexpr int n = 300;
  std::atomic<long> delivered{0};
  std::atomic<bool> stop{false};
  std::atomic<int> undelivered{0};
  stackless::thread sender([&] {
    int i = 0;
    while (!stop.load()) {
      ++i;
      try {
        if (send_for(a, i, 100us)) delivered += i;
      } catch (const undelivered_error&) {
        ++undelivered;
      }
    }
  });
  long got = 0;
  for (int i = 0; i < n; ++i) {
    tasklet t([&] { select(on_receive(a, [&](int v) { got += v; }), on_receive(b)); });
    t();
    schedule();
    if (i % 3 != 0) {
      try {
        t.kill();
      } catch (...) {
      }
    }
    run(thread_block);
  }
  stop = true;
  sender.join();
  // A kill that raced a completed case drops that value (as for a plain receive); the sender,
  // of another thread, is told (undelivered_error), so what it counts is exactly what arrived.
  BOOST_TEST(got == delivered.load());
  BOOST_TEST_MESSAGE("undelivered: " << undelivered.load());
  BOOST_TEST(a.balance() == 0);
  BOOST_TEST(b.balance() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
