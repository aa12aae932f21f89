// queue<T>: CPython Lib/test/test_queue.py's BaseQueueTestMixin scenarios that apply (FIFO order,
// bounded put blocking, nowait/timeout forms, task_done/join, too many task_done), plus the
// issue 16 attacks: a timed-out or killed getter or putter leaves the queue as before.
#include <memory>
#include <optional>
#include <vector>

#include "fixture.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(TestQueue, clean_scheduler)

// test_queue.py simple_queue_test: FIFO, sizes, full/empty.
BOOST_AUTO_TEST_CASE(test_simple_queue) {
  queue<int> q(3);
  BOOST_TEST(q.empty());
  BOOST_TEST(q.maxsize() == 3u);
  for (int i : {111, 333, 222}) q.put(i);
  BOOST_TEST(q.full());
  BOOST_TEST(!q.put_nowait(444));
  BOOST_TEST(!q.put_for(444, 1ms));
  BOOST_CHECK_THROW(q.put_or_throw(444, 0ms), timeout_error);
  BOOST_TEST(q.size() == 3u);
  BOOST_TEST(q.get() == 111);
  BOOST_TEST(*q.get_nowait() == 333);
  BOOST_TEST(*q.get_for(1ms) == 222);
  BOOST_TEST(!q.get_nowait());
  BOOST_TEST(!q.get_for(1ms));
  BOOST_CHECK_THROW(q.get_or_throw(1ms), timeout_error);
  BOOST_TEST(q.empty());
}

// Blocking put on a full queue and blocking get on an empty one hand over FIFO.
BOOST_AUTO_TEST_CASE(test_blocking_handover) {
  queue<int> q(1);
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) tasklet([&] { got.push_back(q.get()); })();
  run();
  for (int i = 1; i <= 3; ++i) q.put(i);  // straight to the waiting getters
  run();
  BOOST_TEST((got == std::vector<int>{1, 2, 3}));
  q.put(10);
  for (int i = 11; i <= 13; ++i) tasklet([&, i] { q.put(i); })();
  run();
  BOOST_TEST(q.size() == 1u);
  std::vector<int> out;
  for (int i = 0; i < 4; ++i) out.push_back(q.get());
  BOOST_TEST((out == std::vector<int>{10, 11, 12, 13}));
  run();
}

// test_queue.py queue_join_test / test_queue_task_done.
BOOST_AUTO_TEST_CASE(test_task_done_join) {
  queue<int> q;
  BOOST_CHECK_THROW(q.task_done(), sync_error);
  int sum = 0;
  for (int w = 0; w < 2; ++w)
    tasklet([&] {
      for (;;) {
        int v = q.get();
        if (v < 0) {
          q.task_done();
          return;
        }
        sum += v;
        schedule();
        q.task_done();
      }
    })();
  for (int i = 0; i < 100; ++i) q.put(i);
  q.join();
  BOOST_TEST(sum == 4950);
  BOOST_TEST(q.unfinished_tasks() == 0u);
  q.put(-1);
  q.put(-1);
  BOOST_TEST(q.join_for(1h));
  run();
  BOOST_CHECK_THROW(q.task_done(), sync_error);
  q.put(5);
  BOOST_TEST(!q.join_for(1ms));
}

// Issue 16: a getter handed an item and killed before it ran gives it back: to the next
// getter, or to the head of the queue.
BOOST_AUTO_TEST_CASE(test_killed_getter_gives_item_back) {
  queue<int> q;
  std::optional<int> b_got;
  tasklet a([&] { q.get(); });
  a();
  tasklet b([&] { b_got = q.get(); });
  b();
  run();
  q.put(1);  // to a
  a.kill();  // a hands it to b
  run();
  BOOST_TEST(b_got.value() == 1);

  tasklet c([&] { q.get(); });
  c();
  run();
  q.put(2);
  q.put(3);  // 2 to c, 3 queued
  c.kill();  // 2 back at the head
  BOOST_TEST(q.size() == 2u);
  BOOST_TEST(q.get() == 2);
  BOOST_TEST(q.get() == 3);
}

// Issue 16: a putter that times out or is killed on a full queue leaves it unchanged.
BOOST_AUTO_TEST_CASE(test_putter_timeout_and_kill) {
  queue<int> q(1);
  q.put(1);
  bool put = true;
  tasklet([&] { put = q.put_for(2, 1ms); })();
  tasklet k([&] { q.put(3); });
  k();
  run();
  BOOST_TEST(!put);
  k.kill();
  BOOST_TEST(q.size() == 1u);
  BOOST_TEST(q.get() == 1);
  BOOST_TEST(!q.get_nowait());
  BOOST_TEST(q.unfinished_tasks() == 1u);
}

// Move-only items.
BOOST_AUTO_TEST_CASE(test_move_only) {
  queue<std::unique_ptr<int>> q(1);
  tasklet([&] {
    q.put(std::make_unique<int>(1));
    q.put(std::make_unique<int>(2));
  })();
  run();
  BOOST_TEST(*q.get() == 1);
  run();
  BOOST_TEST(*q.get() == 2);
}

BOOST_AUTO_TEST_SUITE_END()
