// Virtual time (issue 16; Go testing/synctest, Trio MockClock(autojump_threshold=0)): sleeps and
// timeouts under a virtual clock that jumps to the next deadline when every tasklet is blocked,
// and STACKLESS_VIRTUAL_TIME_TEST_CASE, which fails a test on deadlock or leaked tasklets.
// Virtual timestamps are exact, so these tests assert them.
#include <boost/test/unit_test.hpp>

#include <stackless/stackless.hpp>
#include <stackless/testing.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixture.hpp"

using namespace stackless;
using namespace std::chrono_literals;

namespace {
std::chrono::steady_clock::duration since(std::chrono::steady_clock::time_point t0) {
  return stackless::now() - t0;
}
}  // namespace

BOOST_FIXTURE_TEST_SUITE(TestVirtualTime, clean_scheduler)

// The one-hour timeout: returns at once in real time, exactly one virtual hour later.
STACKLESS_VIRTUAL_TIME_TEST_CASE(one_hour_timeout) {
  const auto real0 = std::chrono::steady_clock::now();
  const auto t0 = stackless::now();
  event e;
  BOOST_TEST(!e.wait_for(1h));
  BOOST_TEST((since(t0) == 1h));
  lock l;
  l.lock();
  BOOST_TEST(!l.try_lock_for(1h));
  channel<int> ch;
  BOOST_TEST(!receive_for(ch, 1h).has_value());
  BOOST_TEST(ch.balance() == 0);
  BOOST_TEST((since(t0) == 3h));
  const std::chrono::duration<double, std::micro> wall = std::chrono::steady_clock::now() - real0;
  BOOST_TEST_MESSAGE("three one-hour timeouts under virtual time took " << wall.count()
                                                                        << " us of wall time");
}

// Sleepers wake in deadline order at their exact virtual times.
STACKLESS_VIRTUAL_TIME_TEST_CASE(sleep_order) {
  const auto t0 = stackless::now();
  std::vector<std::pair<int, std::chrono::steady_clock::duration>> woke;
  for (int s : {3, 1, 2})
    tasklet([&, s] {
      stackless::sleep(std::chrono::seconds(s));
      woke.emplace_back(s, since(t0));
    })();
  stackless::sleep(10s);
  BOOST_TEST(woke.size() == 3u);
  for (std::size_t i = 0; i < woke.size(); ++i) {
    BOOST_TEST(woke[i].first == static_cast<int>(i) + 1);
    BOOST_TEST((woke[i].second == std::chrono::seconds(i + 1)));
  }
  BOOST_TEST((since(t0) == 10s));
}

// A holder keeps a lock for 10 s: a 5 s try gives up at exactly 5 s, a 10 s one gets it at 10 s.
STACKLESS_VIRTUAL_TIME_TEST_CASE(lock_timeouts_exact) {
  const auto t0 = stackless::now();
  lock l;
  tasklet([&] {
    std::lock_guard g(l);
    stackless::sleep(10s);
  })();
  schedule();
  BOOST_TEST(l.locked());
  BOOST_TEST(!l.try_lock_for(5s));
  BOOST_TEST((since(t0) == 5s));
  BOOST_TEST(l.try_lock_for(10s));
  BOOST_TEST((since(t0) == 10s));
  l.unlock();
}

// stacklesslib-semantics §6.6: a timeout and a release due at the same instant. Equal deadlines
// fire in the order they were armed. Release first: the lock is handed to the waiter, whose
// timer then finds it no longer blocked, and the wait succeeds. Timer first: the waiter gives
// up, and the release then leaves the lock free (no lost permit either way).
STACKLESS_VIRTUAL_TIME_TEST_CASE(timeout_and_release_at_the_same_instant) {
  lock l;
  const auto t0 = stackless::now();
  tasklet([&] {
    l.lock();
    stackless::sleep(5s);  // armed before the waiter's timer
    l.unlock();
  })();
  schedule();
  BOOST_TEST(l.try_lock_for(5s));
  BOOST_TEST((since(t0) == 5s));
  l.unlock();

  bool got = true;
  l.lock();
  tasklet([&] { got = l.try_lock_for(5s); })();
  schedule();  // the waiter blocks; its timer helper is queued
  schedule();  // the helper arms its timer, before ours
  stackless::sleep(5s);
  l.unlock();
  stackless::sleep(1s);
  BOOST_TEST(!got);
  BOOST_TEST(!l.locked());
  BOOST_TEST(l.waiting() == 0u);
}

// The same for a condition: a notify at the instant of the timeout is not lost when it came
// first, and not stolen by the timed-out waiter when the timeout came first.
STACKLESS_VIRTUAL_TIME_TEST_CASE(timeout_and_notify_at_the_same_instant) {
  lock l;
  condition c;
  tasklet([&] {
    stackless::sleep(5s);
    c.notify_one();
  })();
  schedule();
  {
    std::unique_lock g(l);
    BOOST_TEST(c.wait_for(g, 5s));  // notified, though its timer was due too
  }
  int woke = 0;
  bool first = true;
  tasklet([&] {
    std::unique_lock g(l);
    first = c.wait_for(g, 5s);  // times out (its timer is armed first)
  })();
  tasklet([&] {
    std::unique_lock g(l);
    if (c.wait_for(g, 1h)) ++woke;
  })();
  schedule();  // both wait; their timer helpers are queued
  schedule();  // the helpers arm their timers, before ours
  stackless::sleep(5s);
  c.notify_one();  // reaches the second waiter
  stackless::sleep(1s);
  BOOST_TEST(!first);
  BOOST_TEST(woke == 1);
}

// The fixture's rules, checked by calling its engine directly (so the failure is observed, not
// suffered): a deadlocked body, a body that raises, a body that leaks a tasklet.
BOOST_AUTO_TEST_CASE(fixture_reports_deadlock) {
  channel<int> ch, out;
  tasklet helper;
  const std::string r = testing::run_virtual("stuck", [&] {
    helper = tasklet([&] { out.send(1); });
    helper.set_name("helper");
    helper();
    ch.receive();
  });
  BOOST_TEST(r.find("deadlock") != std::string::npos, r);
  // The listing of the blocked tasklets, each with what it waits on.
  BOOST_TEST(r.find("'stuck': blocked receiving on channel") != std::string::npos, r);
  BOOST_TEST(r.find("'helper': blocked sending on channel") != std::string::npos, r);
  BOOST_TEST(ch.balance() == 0);  // the stuck body was killed
  helper.kill();
  BOOST_TEST(out.balance() == 0);
}

BOOST_AUTO_TEST_CASE(fixture_reports_exception) {
  const std::string r = testing::run_virtual("raises", [] {
    stackless::sleep(1h);
    throw std::runtime_error("bad thing");
  });
  BOOST_TEST(r.find("bad thing") != std::string::npos, r);
}

BOOST_AUTO_TEST_CASE(fixture_reports_leak) {
  channel<int> ch;
  tasklet leaked;
  const std::string r = testing::run_virtual("leaks", [&] {
    leaked = tasklet([&] { ch.receive(); });
    leaked.set_name("leaker");
    leaked();
  });
  BOOST_TEST(r.find("1 tasklet(s) leaked") != std::string::npos, r);
  BOOST_TEST(r.find("'leaker': blocked receiving on channel") != std::string::npos, r);
  leaked.kill();
}

BOOST_AUTO_TEST_CASE(virtual_time_misuse) {
  virtual_time vt;
  BOOST_CHECK_THROW(virtual_time(), std::logic_error);
  BOOST_CHECK_THROW(vt.advance(-1s), std::invalid_argument);
  const auto t0 = stackless::now();
  vt.advance(2h);
  BOOST_TEST((since(t0) == 2h));
  BOOST_TEST(virtual_time::active());
}

BOOST_AUTO_TEST_SUITE_END()
