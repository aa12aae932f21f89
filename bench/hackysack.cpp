// hackysack: Grant Olson's hackysackstackless.py ported line by line (docs: stackless-semantics
// §3), timed like the original (`runit(N, 1000, 0)`, best of several runs), beside the figures
// Stackless Python 3.7.5 gave on this machine kind.
//
//   class hackysacker: a name, the shared circle, a channel, and a tasklet running messageLoop.
//   messageLoop: receive; 'exit' ends it; otherwise pick a random *other* player, increment the
//   global counter (the kicker that reaches `turns` pops every player off the circle and sends
//   each 'exit'), then send itself to the chosen player.
//   runit: player '1' plus N more; main does one.channel.send(one), then stackless.run().
//
// The original's shutdown quirk is kept: the last kicker eventually pops itself and sends 'exit'
// to its own channel, blocks as the last runnable tasklet, and run() returns; players not yet
// popped stay blocked receiving. The port then kills every player still alive (the cleanup that
// Python's garbage collector would do later), outside the timed region, and checks that no
// tasklet and no stack is left before the next size.
//
// Usage: hackysack [--turns=1000] [--max=100000] [--reps=10]
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "stackless/channel.hpp"

namespace {

struct hackysacker;
using message = hackysacker*;  // nullptr is 'exit'

int g_turns = 0;
int g_counter = 0;        // hackysacker.counter
std::uint64_t g_rng = 0;  // random.randint: a xorshift64*, reseeded for every game

std::size_t randint(std::size_t lo, std::size_t hi) {  // inclusive, like random.randint
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  const std::uint64_t r = g_rng * 0x2545F4914F6CDD1DULL;
  return lo + static_cast<std::size_t>((r >> 32) * (hi - lo + 1) >> 32);
}

struct hackysacker {
  std::string name;
  std::vector<hackysacker*>& circle;
  stackless::channel<message> channel;
  stackless::tasklet task;

  hackysacker(std::string n, std::vector<hackysacker*>& c) : name(std::move(n)), circle(c) {
    circle.push_back(this);
    task = stackless::tasklet([this] { message_loop(); });
    task.setup();  // stackless.tasklet(self.messageLoop)()
  }

  void increment_counter() {
    ++g_counter;
    if (g_counter >= g_turns) {
      while (!circle.empty()) {
        hackysacker* h = circle.back();
        circle.pop_back();
        h->channel.send(nullptr);  // 'exit'
      }
    }
  }

  void message_loop() {
    for (;;) {
      message m = channel.receive();
      if (m == nullptr) return;  // 'exit'
      hackysacker* kick_to = circle[randint(0, circle.size() - 1)];
      while (kick_to == this) kick_to = circle[randint(0, circle.size() - 1)];
      increment_counter();
      kick_to->channel.send(this);
    }
  }
};

struct game_result {
  double ms = 0;          // runit(): set-up and game
  double cleanup_ms = 0;  // killing the players left blocked
  std::size_t left_blocked = 0;
};

game_result runit(int hs, int ts) {
  g_turns = ts;
  g_counter = 0;
  g_rng = 0x9E3779B97F4A7C15ULL;
  const std::int64_t t0 = bench::now_ns();
  std::vector<hackysacker*> circle;
  std::vector<std::unique_ptr<hackysacker>> owners;  // Python's references to the objects
  owners.reserve(static_cast<std::size_t>(hs) + 1);
  owners.push_back(std::make_unique<hackysacker>("1", circle));
  hackysacker* one = owners.back().get();
  for (int i = 0; i < hs; ++i)
    owners.push_back(std::make_unique<hackysacker>(std::to_string(i), circle));
  one->channel.send(one);
  stackless::run();
  const std::int64_t t1 = bench::now_ns();
  game_result r;
  r.ms = static_cast<double>(t1 - t0) / 1e6;
  r.left_blocked = stackless::alive_tasklets();
  for (auto& h : owners)
    if (h->task.alive()) h->task.kill();
  owners.clear();
  r.cleanup_ms = static_cast<double>(bench::now_ns() - t1) / 1e6;
  const auto st = stackless::get_stack_stats();
  if (stackless::alive_tasklets() != 0 || st.in_use != 0) {
    std::fprintf(stderr, "hackysack: leak after %d players: %zu tasklets, %zu stacks in use\n", hs,
                 stackless::alive_tasklets(), st.in_use);
    std::exit(1);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int turns = static_cast<int>(bench::flag_value(argc, argv, "--turns", 1000));
  const long max_players = bench::flag_value(argc, argv, "--max", 100000);
  const int reps = static_cast<int>(bench::flag_value(argc, argv, "--reps", 10));
  struct row {
    int players;
    double python_ms;
  };
  const row rows[] = {{10, 2.6}, {100, 2.6}, {1000, 4.6}, {10000, 77.8}, {100000, 989.0}};
  std::printf(
      "hackysack: runit(N, %d, 0), best of %d (3 for 100,000, as for Python); "
      "'first' is the first run (fresh stacks: page faults)\n",
      turns, reps);
  bench::table t({"players", "best ms", "first ms", "median ms", "Stackless 3.7.5 ms",
                  "faster than Stackless", "left blocked", "cleanup ms", "RSS MiB"});
  double big = -1;
  for (const row& rw : rows) {
    if (rw.players > max_players) continue;
    const int n = rw.players >= 100000 ? std::min(reps, 3) : reps;
    std::size_t left = 0;
    double cleanup = 0;
    const auto s = bench::repeat(n, [&] {
      const game_result g = runit(rw.players, turns);
      left = g.left_blocked;
      cleanup = g.cleanup_ms;
      return g.ms;
    });
    if (rw.players == 100000) big = s.best;
    t.row({std::to_string(rw.players), bench::fmt("%.2f", s.best), bench::fmt("%.2f", s.first),
           bench::fmt("%.2f", s.median), bench::fmt("%.1f", rw.python_ms),
           bench::fmt("%.1fx", rw.python_ms / s.best), std::to_string(left),
           bench::fmt("%.2f", cleanup), std::to_string(bench::get_usage().maxrss_kib / 1024)});
  }
  t.print();
  if (big >= 0)
    std::printf("target: 100,000 players <= 100 ms: %.1f ms -> %s\n", big,
                big <= 100.0 ? "MET" : "MISSED");
  return 0;
}
