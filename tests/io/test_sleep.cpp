// stackless::sleep and timers on the poller: ordering, killing a sleeper, no busy waiting.
#include "io_helpers.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(Sleep, iot::io_clean)

// Sleepers wake in deadline order, whatever order they went to sleep in. Each sleep(d) ends at
// base + its offset: computing d at each tasklet's start from a shared base keeps the order
// independent of how long the starts take (the first one starts the backend, which took over
// 10 ms under TSan and reordered sleeps of 0, 10, ... ms counted from each start). The base is
// 100 ms ahead, generous for a loaded machine: every deadline is still in the future then.
BOOST_AUTO_TEST_CASE(sleepers_wake_in_deadline_order) {
  std::vector<int> woke;
  const auto t0 = std::chrono::steady_clock::now();
  const auto base = t0 + 100ms;
  for (int ms : {50, 10, 40, 20, 30, 0})
    tasklet([&woke, base, ms] {
      sleep(base + std::chrono::milliseconds(ms) - std::chrono::steady_clock::now());
      woke.push_back(ms);
    })();
  run();
  BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 150ms));
  BOOST_TEST(woke == (std::vector<int>{0, 10, 20, 30, 40, 50}), "order");
}

// Equal deadlines wake in the order the tasklets went to sleep. The deadline is 100 ms ahead (it
// was 5 ms, which a slow start under TSan passed before the last tasklet slept).
BOOST_AUTO_TEST_CASE(equal_deadlines_wake_in_call_order) {
  std::vector<int> woke;
  const auto at = std::chrono::steady_clock::now() + 100ms;
  for (int i = 0; i < 5; ++i)
    tasklet([&woke, at, i] {
      sleep_until(at);
      woke.push_back(i);
    })();
  run();
  BOOST_TEST(woke == (std::vector<int>{0, 1, 2, 3, 4}));
}

// A sleeping tasklet can be killed: it unwinds at once and its timer is gone.
BOOST_AUTO_TEST_CASE(kill_sleeping_tasklet) {
  bool unwound = false;
  tasklet t([&] {
    struct guard {
      bool* f;
      ~guard() { *f = true; }
    } g{&unwound};
    sleep(10s);
  });
  t();
  schedule();  // t starts and goes to sleep
  BOOST_TEST(t.blocked());
  BOOST_TEST(io::pending_operations() == 1u);
  const auto t0 = std::chrono::steady_clock::now();
  t.kill();
  BOOST_TEST(unwound);
  BOOST_TEST(!t.alive());
  run();
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 1s));
  BOOST_TEST(io::pending_operations() == 0u);
}

// Main sleeps without run(); when nothing else is runnable the thread waits in the kernel. Counted
// in the poll tasklet's backend passes, not in CPU time (which a loaded machine makes flaky): one
// wait in the kernel is a pass or two, a busy wait thousands in 100 ms.
BOOST_AUTO_TEST_CASE(main_sleep_blocks_in_kernel_not_busy) {
  const auto passes = io::get_poll_stats().backend_passes;
  const auto t0 = std::chrono::steady_clock::now();
  sleep(100ms);
  const auto wall = std::chrono::steady_clock::now() - t0;
  const auto made = io::get_poll_stats().backend_passes - passes;
  BOOST_TEST((wall >= 100ms));
  BOOST_TEST(made >= 1u);
  BOOST_TEST(made < 10u, made << " backend passes during a 100 ms sleep");
}

// While others are runnable the poll tasklet only yields; a busy tasklet does not delay it past
// its own yields, and sleepers keep their order relative to computing tasklets.
BOOST_AUTO_TEST_CASE(sleep_while_others_compute) {
  int spins = 0;
  bool done = false;
  tasklet([&] {
    sleep(20ms);
    done = true;
  })();
  tasklet([&] {
    while (!done) {
      ++spins;
      schedule();
    }
  })();
  run();
  BOOST_TEST(done);
  BOOST_TEST(spins > 0);
}

// A past deadline yields and returns.
BOOST_AUTO_TEST_CASE(past_deadline_just_yields) {
  std::vector<std::string> log;
  tasklet([&] {
    log.push_back("a1");
    sleep(0ms);
    log.push_back("a2");
  })();
  tasklet([&] { log.push_back("b"); })();
  run();
  BOOST_TEST(log == (std::vector<std::string>{"a1", "b", "a2"}));
}

BOOST_AUTO_TEST_SUITE_END()
