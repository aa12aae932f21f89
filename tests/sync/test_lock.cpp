// lock, recursive_lock and semaphore: ports of CPython Lib/test/lock_tests.py (BaseLockTests,
// LockTests, RLockTests, BaseSemaphoreTests, BoundedSemaphoreTests; also the copy stacklesslib
// runs as stacklesslib/test/lock_tests.py) and of stacklesslib/test/testlocks.py, plus the
// attacks of issue 16: a timed-out, killed or thrown-into waiter leaves the primitive as if it
// had never waited. Timeouts are short real ones; no assertion is about elapsed time.
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fixture.hpp"

using namespace stackless;
using namespace std::chrono_literals;

namespace {
struct boom : std::runtime_error {
  boom() : std::runtime_error("boom") {}
};
}  // namespace

BOOST_FIXTURE_TEST_SUITE(TestLock, clean_scheduler)

// lock_tests BaseLockTests.test_acquire_release / test_try_acquire / test_constructor
BOOST_AUTO_TEST_CASE(test_acquire_release) {
  lock l;
  BOOST_TEST(!l.locked());
  l.lock();
  BOOST_TEST(l.locked());
  BOOST_TEST(!l.try_lock());
  l.unlock();
  BOOST_TEST(!l.locked());
  BOOST_TEST(l.acquire());
  BOOST_TEST(!l.acquire(false));
  l.release();
  BOOST_TEST(l.try_lock());
  l.unlock();
}

// LockTests.test_release_unacquired (CPython: RuntimeError('release unlocked lock')).
BOOST_AUTO_TEST_CASE(test_release_unacquired) {
  lock l;
  BOOST_CHECK_THROW(l.unlock(), sync_error);
  BOOST_TEST(!l.locked());
  BOOST_TEST(l.try_lock());  // the failed release changed nothing
  l.unlock();
}

// BaseLockTests.test_with: std::lock_guard, std::unique_lock (timed), std::scoped_lock.
BOOST_AUTO_TEST_CASE(test_with) {
  lock a;
  recursive_lock b;
  {
    std::lock_guard g(a);
    BOOST_TEST(a.locked());
  }
  BOOST_TEST(!a.locked());
  {
    std::scoped_lock g(a, b);
    BOOST_TEST(a.locked());
    BOOST_TEST(b.owned());
  }
  BOOST_TEST(!a.locked());
  BOOST_TEST(!b.locked());
  {
    std::unique_lock g(a, 1ms);  // TimedLockable
    BOOST_TEST(g.owns_lock());
    std::unique_lock g2(a, std::defer_lock);
    BOOST_TEST(!g2.try_lock_for(1ms));
    BOOST_TEST(!g2.try_lock_until(std::chrono::system_clock::now() + 1ms));
  }
  BOOST_TEST(!a.locked());
}

// BaseLockTests.test_acquire_contended + FIFO hand-off (issue 16: no barging).
BOOST_AUTO_TEST_CASE(test_acquire_contended_fifo) {
  lock l;
  std::vector<int> order;
  l.lock();
  for (int i = 0; i < 4; ++i) {
    tasklet([&, i] {
      l.lock();
      order.push_back(i);
      schedule();
      l.unlock();
    })();
  }
  run();
  BOOST_TEST(l.waiting() == 4u);
  l.unlock();
  // The lock was handed to waiter 0: a newcomer cannot barge in before it runs.
  BOOST_TEST(l.locked());
  BOOST_TEST(!l.try_lock());
  run();
  BOOST_TEST((order == std::vector<int>{0, 1, 2, 3}));
  BOOST_TEST(!l.locked());
  BOOST_TEST(l.waiting() == 0u);
}

// BaseLockTests.test_timeout / test_try_acquire_contended: a timed acquire of a held lock
// gives up, is dequeued, and the lock still works.
BOOST_AUTO_TEST_CASE(test_timeout) {
  lock l;
  l.lock();
  bool got = true, got0 = true;
  tasklet([&] {
    got0 = l.try_lock_for(0ms);
    got = l.try_lock_for(2ms);
  })();
  run();
  BOOST_TEST(!got0);
  BOOST_TEST(!got);
  BOOST_TEST(l.waiting() == 0u);
  BOOST_TEST(l.locked());
  l.unlock();
  BOOST_TEST(!l.locked());
  BOOST_TEST(l.acquire(true, 0.5));
  BOOST_TEST(!l.acquire(true, 0.001));
  BOOST_TEST(!l.acquire(true, 0));
  l.unlock();
}

// CPython test_timeout's argument checks: acquire(False, timeout) and a negative timeout raise.
BOOST_AUTO_TEST_CASE(test_timeout_arguments) {
  lock l;
  BOOST_CHECK_THROW(l.acquire(false, 1), sync_error);
  BOOST_CHECK_THROW(l.acquire(true, -100), sync_error);
  BOOST_CHECK_THROW(l.acquire(true, std::nan("")), sync_error);
  BOOST_TEST(!l.locked());
  BOOST_TEST(l.acquire(true, 1e300));  // huge: no timer overflow, taken at once
  l.unlock();
  BOOST_TEST(l.try_lock_for(std::chrono::hours::max()));
  l.unlock();
  BOOST_TEST(l.try_lock_until(std::chrono::steady_clock::time_point::max()));
  l.unlock();
  BOOST_TEST(l.try_lock_for(-5s));
  BOOST_TEST(!l.try_lock_for(-5s));  // negative duration: try once
  l.unlock();
}

// Issue 16: a killed waiter leaves the lock as if it had never waited.
BOOST_AUTO_TEST_CASE(test_killed_waiter_leaves_no_trace) {
  lock l;
  l.lock();
  std::vector<int> order;
  tasklet a([&] {
    l.lock();
    order.push_back(1);
    l.unlock();
  });
  a();
  tasklet b([&] {
    l.lock();
    order.push_back(2);
    l.unlock();
  });
  b();
  run();
  BOOST_TEST(l.waiting() == 2u);
  a.kill();
  BOOST_TEST(l.waiting() == 1u);
  l.unlock();
  run();
  BOOST_TEST((order == std::vector<int>{2}));
  BOOST_TEST(!l.locked());
}

// Issue 16: a waiter handed the lock and then killed before it ran passes it on (no lost
// permit): to the next waiter, or back to free.
BOOST_AUTO_TEST_CASE(test_granted_then_killed_passes_lock_on) {
  lock l;
  l.lock();
  int ran = 0;
  tasklet a([&] {
    l.lock();
    ++ran;
    l.unlock();
  });
  a();
  tasklet b([&] {
    l.lock();
    ran += 10;
    l.unlock();
  });
  b();
  run();
  l.unlock();  // handed to a, which is runnable but has not run
  BOOST_TEST(l.locked());
  a.kill();  // a gives the lock to b
  BOOST_TEST(l.locked());
  BOOST_TEST(l.waiting() == 0u);
  run();
  BOOST_TEST(ran == 10);
  BOOST_TEST(!l.locked());

  l.lock();
  tasklet c([&] { l.lock(); });
  c();
  run();
  l.unlock();
  c.kill();  // nobody else waits: the lock is free again
  BOOST_TEST(!l.locked());
}

// Issue 16: an exception thrown into a waiter propagates and leaves no trace.
BOOST_AUTO_TEST_CASE(test_thrown_into_waiter) {
  lock l;
  l.lock();
  bool caught = false;
  tasklet a([&] {
    try {
      l.lock();
    } catch (const boom&) {
      caught = true;
    }
  });
  a();
  run();
  a.raise_exception<boom>();
  BOOST_TEST(caught);
  BOOST_TEST(l.waiting() == 0u);
  l.unlock();
  BOOST_TEST(!l.locked());
}

// Main locking a held lock with nothing else runnable: deadlock_error, lock unchanged.
BOOST_AUTO_TEST_CASE(test_reacquire_deadlocks_cleanly) {
  lock l;
  l.lock();
  BOOST_CHECK_THROW(l.lock(), deadlock_error);
  BOOST_TEST(l.locked());
  BOOST_TEST(l.waiting() == 0u);
  l.unlock();
}

// LockTests.test_different_thread (tasklet flavour): a lock may be released by another tasklet.
BOOST_AUTO_TEST_CASE(test_different_tasklet) {
  lock l;
  tasklet([&] { l.lock(); })();
  run();
  BOOST_TEST(l.locked());
  l.unlock();
  BOOST_TEST(!l.locked());
}

// The block trap refuses a blocking acquire before anything changes.
BOOST_AUTO_TEST_CASE(test_block_trap) {
  lock l;
  l.lock();
  bool refused = false;
  tasklet t([&] {
    getcurrent().set_block_trap(true);
    try {
      l.lock();
    } catch (const block_trap_error&) {
      refused = true;
    }
  });
  t();
  run();
  BOOST_TEST(refused);
  BOOST_TEST(l.waiting() == 0u);
  l.unlock();
}

// Destroying a lock while a tasklet waits on it wakes that tasklet with sync_error.
BOOST_AUTO_TEST_CASE(test_destroyed_while_waiting) {
  auto l = std::make_unique<lock>();
  l->lock();
  std::string what;
  tasklet([&] {
    try {
      l->lock();
    } catch (const sync_error& e) {
      what = e.what();
    }
  })();
  run();
  l.reset();
  run();
  BOOST_TEST(what == "stackless::lock destroyed while tasklets wait on it");
}

// ---- recursive_lock ----
// RLockTests.test_reacquire / test__is_owned
BOOST_AUTO_TEST_CASE(test_rlock_reacquire) {
  recursive_lock l;
  BOOST_TEST(!l.owned());
  l.lock();
  l.lock();
  BOOST_TEST(l.try_lock());
  BOOST_TEST(l.depth() == 3u);
  BOOST_TEST(l.owned());
  l.unlock();
  l.unlock();
  BOOST_TEST(l.locked());
  l.unlock();
  BOOST_TEST(!l.locked());
  BOOST_TEST(!l.owned());
}

// RLockTests.test_release_unacquired / test_different_thread: only the owner may release.
BOOST_AUTO_TEST_CASE(test_rlock_release_unacquired_and_foreign) {
  recursive_lock l;
  BOOST_CHECK_THROW(l.unlock(), sync_error);
  tasklet([&] { l.lock(); })();
  run();
  BOOST_TEST(l.locked());
  BOOST_TEST(!l.owned());
  BOOST_CHECK_THROW(l.unlock(), sync_error);
  BOOST_TEST(l.depth() == 1u);
  BOOST_TEST(!l.try_lock());
  BOOST_TEST(!l.try_lock_for(1ms));
}

// Ownership passes FIFO, and a granted-then-killed waiter passes it on.
BOOST_AUTO_TEST_CASE(test_rlock_handoff_and_kill) {
  recursive_lock l;
  l.lock();
  std::vector<int> order;
  tasklet a([&] {
    std::lock_guard g(l);
    order.push_back(1);
  });
  a();
  tasklet b([&] {
    std::lock_guard g(l);
    std::lock_guard g2(l);
    order.push_back(2);
  });
  b();
  run();
  l.unlock();
  BOOST_TEST(!l.owned());
  a.kill();
  run();
  BOOST_TEST((order == std::vector<int>{2}));
  BOOST_TEST(!l.locked());
}

// ---- semaphore ----
// BaseSemaphoreTests.test_constructor / test_acquire / test_default_value
BOOST_AUTO_TEST_CASE(test_semaphore_acquire) {
  semaphore s(2);
  BOOST_TEST(s.value() == 2u);
  s.acquire();
  BOOST_TEST(s.acquire(false));
  BOOST_TEST(!s.acquire(false));
  BOOST_TEST(!s.try_acquire());
  s.release(2);
  BOOST_TEST(s.value() == 2u);
  semaphore d;
  BOOST_TEST(d.value() == 1u);
  semaphore z(0);
  BOOST_TEST(!z.try_acquire_for(1ms));
  BOOST_TEST(z.waiting() == 0u);
}

// BaseSemaphoreTests.test_acquire_contended: release(n) wakes n waiters, FIFO.
BOOST_AUTO_TEST_CASE(test_semaphore_acquire_contended) {
  semaphore s(0);
  std::vector<int> got;
  for (int i = 0; i < 5; ++i)
    tasklet([&, i] {
      s.acquire();
      got.push_back(i);
    })();
  run();
  BOOST_TEST(s.waiting() == 5u);
  s.release(2);
  run();
  BOOST_TEST((got == std::vector<int>{0, 1}));
  s.release();
  run();
  BOOST_TEST((got == std::vector<int>{0, 1, 2}));
  s.release(4);  // two waiters and two spare permits
  run();
  BOOST_TEST((got == std::vector<int>{0, 1, 2, 3, 4}));
  BOOST_TEST(s.value() == 2u);
}

// BoundedSemaphoreTests.test_release_unacquired: an over-release throws, and changes nothing.
BOOST_AUTO_TEST_CASE(test_bounded_release_unacquired) {
  bounded_semaphore s(2);
  BOOST_CHECK_THROW(s.release(), sync_error);
  s.acquire();
  BOOST_CHECK_THROW(s.release(2), sync_error);
  BOOST_TEST(s.value() == 1u);
  s.release();
  BOOST_TEST(s.value() == 2u);
  semaphore u(0);
  u.release(std::numeric_limits<std::size_t>::max());
  BOOST_CHECK_THROW(u.release(), sync_error);  // overflow refused
}

// testlocks.py (stacklesslib): permits are never lost on kill, throw or timeout.
BOOST_AUTO_TEST_CASE(test_semaphore_no_lost_permit) {
  semaphore s(0);
  int got = 0;
  tasklet a([&] {
    s.acquire();
    ++got;
  });
  a();
  tasklet b([&] {
    s.acquire();
    ++got;
  });
  b();
  tasklet c([&] {
    if (s.try_acquire_for(1ms)) ++got;
  });
  c();
  run();  // c times out
  BOOST_TEST(s.waiting() == 2u);
  s.release();  // to a
  a.kill();     // passes to b
  run();
  BOOST_TEST(got == 1);
  BOOST_TEST(s.value() == 0u);
  s.release();
  BOOST_TEST(s.value() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
