// The primitives across threads (tasklets of several schedulers), as channels work across
// threads: mutual exclusion, FIFO hand-off to a remote waiter, and the race between a timeout
// and a hand-off from another thread (the accounting must balance whichever wins).
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "fixture.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(TestSyncThreads, clean_scheduler)

// Mutual exclusion between tasklets of three threads, each switching inside the critical
// section.
BOOST_AUTO_TEST_CASE(test_lock_across_threads) {
  lock l;
  int inside = 0, max_inside = 0;
  long counter = 0;
  auto work = [&] {
    for (int t = 0; t < 3; ++t)
      tasklet([&] {
        for (int i = 0; i < 200; ++i) {
          std::lock_guard g(l);
          ++inside;
          max_inside = std::max(max_inside, inside);
          schedule();
          ++counter;
          --inside;
        }
      })();
    run(thread_block);
  };
  {
    stackless::thread a(work), b(work);
    work();
  }
  BOOST_TEST(counter == 3 * 3 * 200);
  BOOST_TEST(max_inside == 1);
  BOOST_TEST(!l.locked());
}

// A queue between threads: a producer thread, consumers here; every item exactly once.
BOOST_AUTO_TEST_CASE(test_queue_across_threads) {
  queue<int> q(4);
  long sum = 0;
  stackless::thread producer([&] {
    for (int i = 1; i <= 1000; ++i) q.put(i);
    for (int i = 0; i < 3; ++i) q.put(0);
  });
  for (int c = 0; c < 3; ++c)
    tasklet([&] {
      while (int v = q.get()) sum += v;
    })();
  run(thread_block);
  producer.join();
  BOOST_TEST(sum == 500500);
  BOOST_TEST(q.empty());
}

// Timeouts racing with releases from another thread: every permit is accounted for whichever
// side wins each race (a timed-out waiter never holds one; a granted one always does).
BOOST_AUTO_TEST_CASE(test_timeout_races_remote_release) {
  semaphore s(0);
  std::atomic<int> acquired{0};
  std::atomic<bool> done{false};
  stackless::thread releaser([&] {
    for (int i = 0; i < 300; ++i) {
      s.release();
      if (i % 8 == 0) stackless::sleep(50us);
    }
    done = true;
  });
  for (int t = 0; t < 4; ++t)
    tasklet([&] {
      while (!done || s.value() > 0) {
        if (s.try_acquire_for(20us)) ++acquired;
      }
    })();
  run(thread_block);
  releaser.join();
  BOOST_TEST(acquired + static_cast<int>(s.value()) == 300);
  BOOST_TEST(s.waiting() == 0u);
}

// A condition notified from another thread (the unlock-and-enqueue is atomic for it).
BOOST_AUTO_TEST_CASE(test_condition_across_threads) {
  lock l;
  condition c;
  int rounds = 0;
  bool ready = false;
  stackless::thread other([&] {
    for (int i = 0; i < 100; ++i) {
      std::unique_lock g(l);
      c.wait(g, [&] { return ready; });
      ready = false;
      ++rounds;
      c.notify_all();
    }
  });
  for (int i = 0; i < 100; ++i) {
    std::unique_lock g(l);
    ready = true;
    c.notify_all();
    c.wait(g, [&] { return !ready; });
  }
  other.join();
  BOOST_TEST(rounds == 100);
}

// A timed send hands its value to a receiver of another thread, then its timeout expires while
// it waits for that receive to return: the timeout must not end the wait (the send could then
// not say whether the value arrived). Receiver runs late: send_for returns true. Receiver is
// killed instead: undelivered_error. (Before, the expired timeout returned true in both cases.)
BOOST_AUTO_TEST_CASE(test_timed_send_waits_for_the_receivers_answer_past_its_timeout) {
  for (const bool kill_receiver : {false, true}) {
    channel<int> ch;
    std::atomic<bool> blocked{false}, handed{false}, expired{false};
    std::atomic<int> got{0};
    std::thread other([&] {
      tasklet r([&] { got = ch.receive(); });
      r();
      schedule();  // r blocks in receive
      blocked = true;
      while (ch.balance() != 0) std::this_thread::yield();  // the sender took r
      handed = true;
      while (!expired) std::this_thread::yield();  // past the sender's deadline
      if (kill_receiver)
        r.kill();
      else
        schedule();  // r runs now and answers
    });
    while (!blocked) std::this_thread::yield();
    // The deadline passes while we wait for the answer: a watcher tasklet says when.
    tasklet watcher([&] {
      while (!handed) schedule();
      sleep(20ms);
      expired = true;
    });
    watcher();
    bool sent = false, raised = false;
    try {
      sent = send_for(ch, 7, 5ms);
    } catch (const undelivered_error&) {
      raised = true;
    }
    watcher.join();  // the other thread waits for it
    other.join();
    BOOST_TEST_INFO("kill_receiver " << kill_receiver);
    BOOST_TEST(sent == !kill_receiver);
    BOOST_TEST(raised == kill_receiver);
    BOOST_TEST(got.load() == (kill_receiver ? 0 : 7));
  }
}

BOOST_AUTO_TEST_SUITE_END()
