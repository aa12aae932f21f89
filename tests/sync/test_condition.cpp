// condition, event and barrier: ports of CPython Lib/test/lock_tests.py ConditionTests,
// EventTests and BarrierTests (as far as they apply to tasklets), and of the stacklesslib
// Condition bugs that must not be copied (stacklesslib-semantics §3, §6.5): a killed or
// timed-out waiter leaves no count behind and steals no notification.
#include <cmath>
#include <mutex>
#include <optional>
#include <vector>

#include "fixture.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(TestCondition, clean_scheduler)

// ConditionTests.test_notify: notify(n) wakes n waiters in wait order; notify_all the rest.
BOOST_AUTO_TEST_CASE(test_notify) {
  lock l;
  condition c;
  std::vector<int> woke;
  for (int i = 0; i < 5; ++i)
    tasklet([&, i] {
      std::unique_lock g(l);
      c.wait(g);
      BOOST_TEST(l.locked());  // relocked on return
      woke.push_back(i);
    })();
  run();
  BOOST_TEST(c.waiting() == 5u);
  BOOST_TEST(!l.locked());
  c.notify_one();
  run();
  BOOST_TEST((woke == std::vector<int>{0}));
  c.notify(2);
  run();
  BOOST_TEST((woke == std::vector<int>{0, 1, 2}));
  c.notify_all();
  run();
  BOOST_TEST((woke == std::vector<int>{0, 1, 2, 3, 4}));
  BOOST_TEST(c.waiting() == 0u);
}

// A notification with nobody waiting is not stored (NLCondition / threading.Condition).
BOOST_AUTO_TEST_CASE(test_notify_without_waiters_is_lost) {
  lock l;
  condition c;
  c.notify_all();
  c.notify_one();
  std::unique_lock g(l);
  BOOST_TEST(!c.wait_for(g, 1ms));
  BOOST_TEST(g.owns_lock());
}

// ConditionTests.test_timeout: a timed wait returns false and holds the lock again.
BOOST_AUTO_TEST_CASE(test_timeout) {
  recursive_lock l;
  condition c;
  std::optional<bool> r;
  tasklet([&] {
    std::unique_lock g(l);
    r = c.wait_for(g, 2ms);
    BOOST_TEST(l.owned());
  })();
  run();
  BOOST_TEST(r.has_value());
  BOOST_TEST(!*r);
  BOOST_TEST(c.waiting() == 0u);
  BOOST_TEST(!l.locked());
}

// ConditionTests.test_waitfor / test_waitfor_timeout: the predicate's last value.
BOOST_AUTO_TEST_CASE(test_waitfor) {
  lock l;
  condition c;
  int state = 0;
  std::optional<bool> ok, timed;
  tasklet([&] {
    std::unique_lock g(l);
    ok = c.wait_for(g, std::chrono::hours(1), [&] { return state == 4; });
    timed = c.wait_for(g, 1ms, [&] { return state == 5; });
  })();
  // (run() would not return while the one-hour timer is pending: the producer is a tasklet.)
  tasklet([&] {
    for (int i = 0; i < 4; ++i) {
      {
        std::lock_guard g(l);
        ++state;
        c.notify_one();
      }
      schedule();
    }
  })();
  run();
  BOOST_TEST(ok.value());
  BOOST_TEST(!timed.value());
}

// stacklesslib bug (§6.5): a killed waiter stays counted, so a later notify is banked and a
// later wait returns at once. Here the killed waiter leaves, and the notify goes to the live one.
BOOST_AUTO_TEST_CASE(test_killed_waiter_not_counted) {
  lock l;
  condition c;
  tasklet a([&] {
    std::unique_lock g(l);
    c.wait(g);
  });
  a();
  run();
  a.kill();
  BOOST_TEST(c.waiting() == 0u);
  BOOST_TEST(!l.locked());  // relocked during the unwind, then released by unique_lock
  c.notify_one();           // nobody waits: lost, not banked
  bool woke = false;
  tasklet b([&] {
    std::unique_lock g(l);
    woke = c.wait_for(g, 2ms);
  });
  b();
  run();
  BOOST_TEST(!woke);
}

// Issue 16: a waiter notified and then killed before it ran passes the notification on (no
// stolen notification); a waiter that timed out takes none.
BOOST_AUTO_TEST_CASE(test_notified_then_killed_passes_notification) {
  lock l;
  condition c;
  int woke = 0;
  tasklet a([&] {
    std::unique_lock g(l);
    c.wait(g);
    woke += 1;
  });
  a();
  tasklet b([&] {
    std::unique_lock g(l);
    c.wait(g);
    woke += 10;
  });
  b();
  run();
  c.notify_one();  // to a
  a.kill();        // a passes it to b
  run();
  BOOST_TEST(woke == 10);
  BOOST_TEST(c.waiting() == 0u);
}

// A wait with a lock not held by the caller: the unlock's error propagates and nothing is queued
// (ConditionTests.test_unacquired_wait).
BOOST_AUTO_TEST_CASE(test_unacquired_wait) {
  recursive_lock l;
  condition c;
  BOOST_CHECK_THROW(c.wait(l), sync_error);
  BOOST_TEST(c.waiting() == 0u);
  BOOST_TEST(l.owned());  // wait relocks whatever happened (condition_variable_any's contract)
  l.unlock();
}

// Works with std::mutex too (any Lockable), main waiting without run().
BOOST_AUTO_TEST_CASE(test_std_mutex) {
  std::mutex m;
  condition c;
  bool flag = false;
  tasklet([&] {
    std::lock_guard g(m);
    flag = true;
    c.notify_all();
  })();
  std::unique_lock g(m);
  c.wait(g, [&] { return flag; });
  BOOST_TEST(flag);
}

// ---- event ----
// EventTests.test_is_set / test_notify / test_set_and_clear
BOOST_AUTO_TEST_CASE(test_event) {
  event e;
  BOOST_TEST(!e.is_set());
  BOOST_TEST(!e.wait(0.0));
  BOOST_TEST(!e.wait_for(1ms));
  std::vector<int> woke;
  for (int i = 0; i < 3; ++i)
    tasklet([&, i] {
      e.wait();
      woke.push_back(i);
    })();
  run();
  BOOST_TEST(e.waiting() == 3u);
  e.set();
  e.clear();  // the woken waiters still return (CPython 3)
  run();
  BOOST_TEST((woke == std::vector<int>{0, 1, 2}));
  e.set();
  BOOST_TEST(e.wait(-1.0));  // set: true at once, whatever the timeout
  BOOST_TEST(e.wait_for(0ms));
  e.wait();
  BOOST_CHECK_THROW(e.wait(std::nan("")), sync_error);
}

// EventTests.test_timeout: timed waiters return false and leave no trace; killed likewise.
BOOST_AUTO_TEST_CASE(test_event_timeout_and_kill) {
  event e;
  std::vector<bool> r;
  tasklet([&] { r.push_back(e.wait_for(1ms)); })();
  tasklet([&] { r.push_back(e.wait(0.002)); })();
  tasklet k([&] { e.wait(); });
  k();
  run();
  BOOST_TEST((r == std::vector<bool>{false, false}));
  BOOST_TEST(e.waiting() == 1u);
  k.kill();
  BOOST_TEST(e.waiting() == 0u);
  e.set();
}

// ---- barrier ----
// BarrierTests.test_barrier / test_wait_return: every cycle releases all parties; the indexes are
// 0..n-1 in arrival order.
BOOST_AUTO_TEST_CASE(test_barrier) {
  barrier b(3);
  std::vector<std::size_t> idx;
  for (int cycle = 0; cycle < 2; ++cycle) {
    for (int i = 0; i < 3; ++i) tasklet([&] { idx.push_back(b.wait()); })();
    run();
  }
  BOOST_TEST(idx.size() == 6u);
  // The completing arrival returns first (it does not block), then the others in FIFO order.
  BOOST_TEST((idx == std::vector<std::size_t>{2, 0, 1, 2, 0, 1}));
  BOOST_TEST(b.n_waiting() == 0u);
  BOOST_CHECK_THROW(barrier(0), sync_error);
  barrier one(1);
  BOOST_TEST(one.wait() == 0u);  // BarrierTests.test_single_thread
}

// BarrierTests.test_timeout, changed on purpose: a timed-out (or killed) party withdraws and
// the barrier is not broken; the cycle then needs a full set of parties again.
BOOST_AUTO_TEST_CASE(test_barrier_timeout_withdraws) {
  barrier b(2);
  std::optional<std::size_t> r = 7;
  tasklet([&] { r = b.wait_for(1ms); })();
  run();
  BOOST_TEST(!r.has_value());
  BOOST_TEST(b.n_waiting() == 0u);
  tasklet k([&] { b.wait(); });
  k();
  run();
  k.kill();
  BOOST_TEST(b.n_waiting() == 0u);
  // Had either counted, this single arrival would pass.
  std::optional<std::size_t> alone = 7;
  tasklet([&] { alone = b.wait_for(1ms); })();
  run();
  BOOST_TEST(!alone.has_value());
  int passed = 0;
  for (int i = 0; i < 2; ++i)
    tasklet([&] {
      b.wait();
      ++passed;
    })();
  run();
  BOOST_TEST(passed == 2);
}

BOOST_AUTO_TEST_SUITE_END()
