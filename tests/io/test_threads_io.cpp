// I/O and threads (issue 5): the poll tasklet is per scheduler, a thread asleep in the kernel for
// its I/O is woken by another thread's channel operation, and each thread's completions (from
// io_uring or from the thread pool's workers) come back to the thread that issued them.
#include <algorithm>
#include <atomic>
#include <thread>

#include "io_helpers.hpp"
#include "stackless/runtime/threads.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(Threads, iot::io_clean)

// The only runnable tasklet here is the poll tasklet, waiting in the kernel for a 30 s timer.
// A send from another thread must end that wait at once: the receiver then kills the sleeper.
// Were the wake-up lost, the sleeper would finish its sleep and `slept` would be set.
BOOST_AUTO_TEST_CASE(cross_thread_send_wakes_poll_tasklet_in_kernel) {
  channel<int> ch;
  bool slept = false, killed = false;
  tasklet sleeper = tasklet([&] {
    try {
      stackless::sleep(30s);
      slept = true;
    } catch (const tasklet_exit&) {
      killed = true;
      throw;
    }
  })();
  int got = 0;
  tasklet([&] {
    got = ch.receive();
    sleeper.kill();
  })();
  // The send must find the main thread in the kernel: polled, not assumed after a sleep (the
  // receiver is blocked, then the thread sleeps; elsewhere than on Linux only the first is seen
  // and wait_asleep() waits 50 ms). Checked on the main thread (Boost.Test is not thread-safe).
  const auto main_thread = testwait::os_thread::self();
  std::atomic<bool> saw_receiver{false}, saw_asleep{false};
  stackless::thread other([&] {
    saw_receiver = testwait::spin_until([&] { return ch.balance() == -1; });
    saw_asleep = main_thread.wait_asleep();
    ch.send(7);
  });
  run();
  other.join();
  BOOST_TEST(saw_receiver);
  BOOST_TEST(saw_asleep);
  BOOST_TEST(got == 7);
  BOOST_TEST(killed);
  BOOST_TEST(!slept);
}

// Two worker threads each write and read back their own file while exchanging the data with
// main over channels: every thread has its own poller, and the results are the thread's own.
BOOST_AUTO_TEST_CASE(per_thread_pollers_with_channels) {
  channel<std::string> results;
  std::atomic<int> bad{0};  // Boost.Test checks stay on the main thread
  {
    worker_pool pool(2);
    for (unsigned w = 0; w < 2; ++w)
      pool.spawn_on(w, [w, results, &bad]() mutable {
        const std::string p = iot::path("worker" + std::to_string(w)).string();
        const std::string data = "worker " + std::to_string(w) + " " + iot::numbers(3000);
        for (int k = 0; k < 4; ++k)  // a few tasklets per worker share its poller
          tasklet([p, data, k, &bad] {
            io::file f = io::open(p + "." + std::to_string(k), "w+b");
            f.write(data);
            f.seek(0);
            if (f.read() != data) ++bad;
          })();
        io::file f = io::open(p, "w+b");
        f.write(data);
        f.flush();
        std::string back(data.size(), '\0');
        back.resize(f.pread(std::span(back), 0));
        results.send(std::move(back));
      });
    std::vector<std::string> got{results.receive(), results.receive()};
    std::sort(got.begin(), got.end());
    BOOST_TEST(got[0] == "worker 0 " + iot::numbers(3000));
    BOOST_TEST(got[1] == "worker 1 " + iot::numbers(3000));
    pool.join();
  }
  BOOST_TEST(bad == 0);
  BOOST_TEST(io::pending_operations() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
