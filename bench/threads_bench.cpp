// threads_bench: channels across threads (issue 5), all contenders measured in the same run.
//
//   1. Cross-thread ping-pong round trip: a tasklet of the main thread and one of a second thread
//      (stackless::thread running run(thread_block)) bounce a value over two channels. Beside it:
//      the same ping-pong inside one thread, Boost.Fiber's unbuffered_channel between fibers of
//      two threads, and two plain threads handing a value over a mutex and condition variables.
//      Go's unbuffered channel at GOMAXPROCS=2 took ~615 ns on this machine kind (not measured
//      here: no Go toolchain in CI).
//   2. Skynet (1,000,000 leaf tasklets, dfs order) with its ten top-level subtrees spread over a
//      worker_pool of 1 and of 2 schedulers; the speed-up of 2 over 1.
//   3. Hackysack with several sacks in play: N players spread round robin over the workers, each
//      kick to a random other player (on any worker), S sacks of K kicks each; 1 vs 2 workers.
//      (Grant Olson's original has one sack, which is sequential by nature: spreading it over
//      threads only adds cross-thread hand-offs; the single-sack figure is printed too.)
//
// Usage: threads_bench [--n=200000] [--reps=5]
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/fiber/all.hpp>

#include "bench_util.hpp"
#include "stackless/channel.hpp"
#include "stackless/runtime/threads.hpp"

namespace {

using u64 = std::uint64_t;

// ---- 1. round trips -----------------------------------------------------------------------
// stackless_round_trip(n, cross): the pinger runs in this thread; the echo in a second thread
// (cross) or beside the pinger in this one.
double stackless_round_trip(std::int64_t n, bool cross) {
  stackless::channel<int> ping, pong;
  auto start_echo = [&] {
    stackless::tasklet([&] {
      for (std::int64_t i = 0; i < n; ++i) pong.send(ping.receive());
    })();
  };
  stackless::thread other;
  if (cross) {
    other = stackless::thread([&] {
      start_echo();
      stackless::run(stackless::thread_block);
    });
  } else {
    start_echo();
  }
  std::int64_t t0 = 0, t1 = 0;
  stackless::tasklet([&] {
    t0 = bench::now_ns();
    for (std::int64_t i = 0; i < n; ++i) {
      ping.send(static_cast<int>(i));
      bench::do_not_optimize(pong.receive());
    }
    t1 = bench::now_ns();
  })();
  if (cross) {
    stackless::run(stackless::thread_block);
    other.join();
  } else {
    stackless::run();
  }
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

double fiber_cross_thread(std::int64_t n) {
  boost::fibers::unbuffered_channel<int> ping, pong;
  std::thread other([&] {
    boost::fibers::fiber([&] {
      for (std::int64_t i = 0; i < n; ++i) {
        int v = 0;
        ping.pop(v);
        pong.push(v);
      }
    }).join();
  });
  std::int64_t t0 = 0, t1 = 0;
  boost::fibers::fiber([&] {
    t0 = bench::now_ns();
    for (std::int64_t i = 0; i < n; ++i) {
      ping.push(static_cast<int>(i));
      int v = 0;
      pong.pop(v);
      bench::do_not_optimize(v);
    }
    t1 = bench::now_ns();
  }).join();
  other.join();
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

// Two OS threads, one slot each way, mutex + condition variable (what a thread-per-task
// program would write).
double threads_cross_thread(std::int64_t n) {
  std::mutex m;
  std::condition_variable cv;
  int slot = 0;
  bool full_ping = false, full_pong = false;
  std::thread other([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return full_ping; });
      full_ping = false;
      full_pong = true;
      cv.notify_all();
    }
  });
  const std::int64_t t0 = bench::now_ns();
  for (std::int64_t i = 0; i < n; ++i) {
    std::unique_lock lk(m);
    slot = static_cast<int>(i);
    full_ping = true;
    cv.notify_all();
    cv.wait(lk, [&] { return full_pong; });
    full_pong = false;
  }
  const std::int64_t t1 = bench::now_ns();
  other.join();
  bench::do_not_optimize(slot);
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

// ---- 2. skynet over a worker pool -----------------------------------------------------------
using chan = stackless::channel<u64>;

void skynet_dfs(chan c, u64 num, u64 size) {
  if (size == 1) {
    c.send(num);
    return;
  }
  chan rc;
  const u64 sub = size / 10;
  u64 sum = 0;
  for (u64 i = 0; i < 10; ++i) {
    stackless::tasklet{skynet_dfs}(rc, num + i * sub, sub);
    sum += rc.receive();
  }
  c.send(sum);
}

double skynet_pool(unsigned workers, u64 size) {
  stackless::worker_pool pool(workers);
  chan results;
  const u64 sub = size / 10;
  const std::int64_t t0 = bench::now_ns();
  for (u64 i = 0; i < 10; ++i)
    pool.spawn_on(static_cast<unsigned>(i % workers),
                  [results, num = i * sub, sub] { skynet_dfs(results, num, sub); });
  u64 sum = 0;
  for (u64 i = 0; i < 10; ++i) sum += results.receive();
  const std::int64_t t1 = bench::now_ns();
  pool.join();
  if (sum != size * (size - 1) / 2) {
    std::fprintf(stderr, "threads_bench: skynet: wrong sum %llu\n",
                 static_cast<unsigned long long>(sum));
    std::exit(1);
  }
  return static_cast<double>(t1 - t0) / 1e6;
}

// ---- 3. hackysack with S sacks over a worker pool -------------------------------------------
struct sack {
  int left;  // kicks still to make
};

struct game {
  std::vector<stackless::channel<sack>> players;
  stackless::channel<int> done;
  std::atomic<u64> rng_seed{0x9E3779B97F4A7C15ULL};
};

double hackysack_pool(unsigned workers, int n_players, int sacks, int kicks) {
  auto g = std::make_shared<game>();
  g->players.resize(static_cast<std::size_t>(n_players));
  const std::int64_t t0 = bench::now_ns();
  {
    stackless::worker_pool pool(workers);
    for (int p = 0; p < n_players; ++p)
      pool.spawn_on(static_cast<unsigned>(p) % workers, [g, p, n_players] {
        u64 rng = 0x2545F4914F6CDD1DULL * static_cast<u64>(p + 1);
        for (;;) {
          sack s = g->players[static_cast<std::size_t>(p)].receive();
          if (s.left < 0) return;  // exit
          if (s.left == 0) {
            g->done.send(1);
            continue;
          }
          --s.left;
          int to = p;
          while (to == p) {
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            to = static_cast<int>(((rng * 0x2545F4914F6CDD1DULL) >> 33) %
                                  static_cast<u64>(n_players));
          }
          // Kick through a fresh tasklet: with several sacks in play, two players kicking to
          // each other with a plain send would both block in send (a rendezvous) for ever.
          stackless::tasklet(
              [ch = g->players[static_cast<std::size_t>(to)], s]() mutable { ch.send(s); })();
        }
      });
    // Results are collected beside the sends: a sack may end before the last one is sent (a
    // player blocked sending `done` to a main busy sending would never take its next sack).
    stackless::tasklet collector([g, sacks] {
      for (int s = 0; s < sacks; ++s) g->done.receive();
    });
    collector();
    for (int s = 0; s < sacks; ++s)
      g->players[static_cast<std::size_t>(s % n_players)].send(sack{kicks});
    collector.join();
    for (auto& ch : g->players) ch.send(sack{-1});
    pool.join();
  }
  return static_cast<double>(bench::now_ns() - t0) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = bench::flag_value(argc, argv, "--n", 200'000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 5));

  std::vector<double> same, cross, fiber, thr;
  for (int r = 0; r < reps; ++r) {
    same.push_back(stackless_round_trip(n, false));
    cross.push_back(stackless_round_trip(n, true));
    fiber.push_back(fiber_cross_thread(n / 4));
    thr.push_back(threads_cross_thread(n / 4));
  }
  const auto ss = bench::summarize(same), sc = bench::summarize(cross),
             sf = bench::summarize(fiber), st = bench::summarize(thr);
  std::printf(
      "threads_bench: channel ping-pong round trip across two threads, %lld round trips, "
      "best of %d (median beside); %u hardware threads\n",
      static_cast<long long>(n), reps, std::thread::hardware_concurrency());
  bench::table t({"contender", "ns/round trip", "median", "this / stackless cross-thread"});
  auto add = [&](const char* name, const bench::stats& s) {
    t.row({name, bench::fmt("%.1f", s.best), bench::fmt("%.1f", s.median),
           bench::ratio(s.best, sc.best)});
  };
  add("stackless channel, one thread (reference)", ss);
  add("stackless channel, two threads", sc);
  add("Boost.Fiber unbuffered_channel, two threads", sf);
  add("std::thread + mutex/condvar, two threads", st);
  t.print();
  std::printf(
      "Go unbuffered channel, GOMAXPROCS=2, this machine kind (issue 5): ~615 ns -> "
      "stackless is %.2fx that\n\n",
      sc.best / 615.0);

  const u64 size = static_cast<u64>(bench::flag_value(argc, argv, "--skynet", 1'000'000));
  std::vector<double> s1, s2;
  for (int r = 0; r < reps; ++r) {
    s1.push_back(skynet_pool(1, size));
    s2.push_back(skynet_pool(2, size));
  }
  const auto k1 = bench::summarize(s1), k2 = bench::summarize(s2);
  std::printf("skynet dfs, %llu leaves, ten subtrees spread over a worker_pool, best of %d\n",
              static_cast<unsigned long long>(size), reps);
  bench::table ts({"workers", "ms", "median", "speed-up over 1"});
  ts.row({"1", bench::fmt("%.1f", k1.best), bench::fmt("%.1f", k1.median), "1.00x"});
  ts.row({"2", bench::fmt("%.1f", k2.best), bench::fmt("%.1f", k2.median),
          bench::ratio(k1.best, k2.best)});
  ts.print();
  std::printf("\n");

  struct cfg {
    int players, sacks, kicks;
  };
  bench::table th({"hackysack", "1 worker ms", "2 workers ms", "speed-up"});
  for (cfg c : {cfg{1000, 1, 100000}, cfg{1000, 64, 2000}, cfg{10000, 256, 1000}}) {
    std::vector<double> h1, h2;
    for (int r = 0; r < reps; ++r) {
      h1.push_back(hackysack_pool(1, c.players, c.sacks, c.kicks));
      h2.push_back(hackysack_pool(2, c.players, c.sacks, c.kicks));
    }
    const auto a = bench::summarize(h1), b = bench::summarize(h2);
    th.row({std::to_string(c.players) + " players, " + std::to_string(c.sacks) + " sack(s) x " +
                std::to_string(c.kicks) + " kicks",
            bench::fmt("%.1f", a.best), bench::fmt("%.1f", b.best), bench::ratio(a.best, b.best)});
  }
  std::printf(
      "hackysack over a worker_pool (players round robin, kicks to any worker), best of "
      "%d\n",
      reps);
  th.print();
  return 0;
}
