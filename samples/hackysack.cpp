// hackysack: a port of Grant Olson's hackysackstackless.py ("Introduction to Concurrent
// Programming with Stackless Python", 2006; grant-olson/why_stackless code/).
//
// A circle of hackysackers, each a tasklet blocked in its channel's receive(). The message is
// the player who kicked the sack; the receiver picks a random *other* player and kicks it on by
// sending itself to that player's channel. After `turns` kicks the last kicker pops every player
// off the circle and sends each one 'exit'.
//
// As in the original, the last kicker eventually pops itself and sends 'exit' to its own
// channel: it blocks as the last runnable tasklet, so run() simply returns, and players not yet
// popped stay blocked receiving. The port then kills the players still alive (what Python's
// garbage collector would do later) so every destructor runs before main returns.
//
// Usage: hackysack [--players N] [--turns N] [--debug] [--seed N]
// Prints the number of kicks; exits non-zero if the game did not reach `turns` kicks.
#include <stackless/stackless.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace {

bool debug = false;
int turns = 1000;
std::mt19937 rng(1);

void debug_print(const std::string& x) {
  if (debug) std::printf("%s\n", x.c_str());
}

class hackysacker;
using message = hackysacker*;      // the kicker ...
constexpr message exit_message{};  // ... or 'exit' (a null pointer)

class hackysacker {
 public:
  static inline int counter = 0;

  hackysacker(std::string name, std::vector<hackysacker*>& circle)
      : name(std::move(name)), circle(circle) {
    circle.push_back(this);
    task = stackless::tasklet([this] { message_loop(); });
    task();  // stackless.tasklet(self.messageLoop)()
  }

  void increment_counter() {
    hackysacker::counter += 1;
    if (hackysacker::counter >= turns) {
      while (!circle.empty()) {
        hackysacker* h = circle.back();
        circle.pop_back();
        h->channel.send(exit_message);
      }
    }
  }

  void message_loop() {
    for (;;) {
      message m = channel.receive();
      if (m == exit_message) return;
      debug_print(name + " got hackeysack from " + m->name);
      std::uniform_int_distribution<std::size_t> pick(0, circle.size() - 1);
      hackysacker* kick_to = circle[pick(rng)];
      while (kick_to == this) kick_to = circle[pick(rng)];
      debug_print(name + " kicking hackeysack to " + kick_to->name);
      increment_counter();
      kick_to->channel.send(this);
    }
  }

  std::string name;
  std::vector<hackysacker*>& circle;
  stackless::channel<message> channel;
  stackless::tasklet task;
};

void runit(int hackysackers) {
  hackysacker::counter = 0;
  std::vector<hackysacker*> circle;
  std::deque<hackysacker> players;  // owns them; `circle` is the game's view
  hackysacker& one = players.emplace_back("1", circle);

  for (int i = 0; i < hackysackers; ++i) players.emplace_back(std::to_string(i), circle);

  one.channel.send(&one);

  stackless::run();

  // Not in the original: end the players still blocked, while `players` is alive.
  for (hackysacker& h : players) h.task.kill();
}

}  // namespace

int main(int argc, char** argv) {
  int hackysackers = 100;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--players"))
      hackysackers = std::atoi(argv[++i]);
    else if (arg("--turns"))
      turns = std::atoi(argv[++i]);
    else if (arg("--seed"))
      rng.seed(static_cast<unsigned>(std::atoi(argv[++i])));
    else if (std::strcmp(argv[i], "--debug") == 0)
      debug = true;
    else {
      std::fprintf(stderr, "usage: %s [--players N] [--turns N] [--debug] [--seed N]\n", argv[0]);
      return 2;
    }
  }
  if (hackysackers < 1 || turns < 1) {
    std::fprintf(stderr, "hackysack: need at least 1 player besides '1' and 1 turn\n");
    return 2;
  }

  auto start = std::chrono::steady_clock::now();
  runit(hackysackers);
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;

  std::printf("%d players, %d kicks in %.2f ms; %zu tasklets left\n", hackysackers + 1,
              hackysacker::counter, took.count(), stackless::alive_tasklets());
  return hackysacker::counter == turns && stackless::alive_tasklets() == 0 ? 0 : 1;
}
