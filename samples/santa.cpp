// santa: a port of santaAgentsOO.py (stackless-dev/stacklessexamples, examples/santaAgentsOO.py),
// the Santa Claus problem (J. Trono, 1994) with agents: every actor is an object with a channel
// and a tasklet that repeats its action().
//
//   santa: waits for a group of visitors, greets it, and lets each visitor go.
//   secretary: collects visitors of one kind; when it has `count` of them (3 elves, 9 reindeer)
//              it sends the group to santa.
//   worker: sleeps a random while, queues at its secretary, waits until santa lets it go, then
//           prints its message.
//
// Differences from the original: its Sleep class (a sorted list and a manager tasklet) is
// stackless::sleep, a time unit (--unit) scales the random sleeps, and instead of running forever
// santa ends the story after --groups groups: it kills the other agents, which are blocked or
// sleeping, and run() returns.
//
// Usage: santa [--groups N] [--unit S] [--seed N]
// Exits non-zero if a group had the wrong size or a visitor went before santa saw its group.
#include <stackless/stackless.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

double unit = 1.0;  // seconds per unit of the original's random sleeps
int groups = 10;
int errors = 0;
std::mt19937 rng(1994);

void sleep(int units) {
  stackless::sleep(std::chrono::duration<double>(units * unit));
}

using visitor = stackless::channel<void>;  // santa lets a visitor go by sending on its channel

class Agent {
 public:
  Agent() : task_(stackless::tasklet([this] { runAction(); })) { task_(); }
  virtual ~Agent() = default;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  void runAction() {
    while (running) action();
  }
  virtual void action() {}

  bool running = true;
  stackless::tasklet task_;
};

std::vector<std::unique_ptr<Agent>> agents;

class santa : public Agent {
 public:
  stackless::channel<std::pair<std::string, std::vector<visitor>>> ch;
  int elves_size = 3, reindeer_size = 9;

  void action() override {
    auto [kind, visitors] = ch.receive();
    std::printf("%s\n", kind == "elves" ? "Ho, ho, ho!  Let's meet in the study!"
                                        : "Ho, ho, ho!  Let's deliver toys!");
    const int want = kind == "elves" ? elves_size : reindeer_size;
    if (static_cast<int>(visitors.size()) != want) ++errors;
    ++greeted;
    for (visitor& v : visitors) v.send();
    if (greeted == groups) end_of_story();
  }

  // Not in the original: end every other agent (blocked on a channel or asleep), then itself.
  void end_of_story() {
    for (auto& a : agents)
      if (a.get() != this) a->task_.kill();
    running = false;
  }

  int greeted = 0;
};

class secretary : public Agent {
 public:
  secretary(santa& s, std::string kind, std::size_t count)
      : santa_(s), kind(std::move(kind)), count(count) {}

  void action() override {
    visitor v = ch.receive();
    visitors.push_back(v);
    if (visitors.size() == count) {
      santa_.ch.send({kind, visitors});
      visitors.clear();
    }
    stackless::schedule();
  }

  stackless::channel<visitor> ch;
  santa& santa_;
  std::string kind;
  std::size_t count;
  std::vector<visitor> visitors;
};

class worker : public Agent {
 public:
  worker(secretary& sec, std::string message) : sec(sec), message(std::move(message)) {}

  void action() override {
    sleep(std::uniform_int_distribution<int>(0, 3)(rng));
    const int before = greeted_so_far();
    sec.ch.send(ch);
    ch.receive();
    if (greeted_so_far() == before) ++errors;  // let go before santa greeted our group?
    std::printf("%s\n", message.c_str());
    stackless::schedule();
  }

  static int greeted_so_far();
  secretary& sec;
  std::string message;
  visitor ch;
};

santa* the_santa = nullptr;
int worker::greeted_so_far() {
  return the_santa->greeted;
}

template <class A, class... Args>
A& make(Args&&... args) {
  agents.push_back(std::make_unique<A>(std::forward<Args>(args)...));
  return static_cast<A&>(*agents.back());
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--groups"))
      groups = std::atoi(argv[++i]);
    else if (arg("--unit"))
      unit = std::atof(argv[++i]);
    else if (arg("--seed"))
      rng.seed(static_cast<unsigned>(std::atoi(argv[++i])));
    else {
      std::fprintf(stderr, "usage: %s [--groups N] [--unit S] [--seed N]\n", argv[0]);
      return 2;
    }
  }

  santa& sa = make<santa>();
  the_santa = &sa;
  secretary& edna = make<secretary>(sa, "elves", 3);
  secretary& robin = make<secretary>(sa, "reindeer", 9);

  for (int i = 0; i < 21; ++i)
    make<worker>(edna, " Elf " + std::to_string(i) + " meeting in the study.");
  for (int i = 0; i < 10; ++i)
    make<worker>(robin, " Reindeer " + std::to_string(i) + " delivery toys.");

  stackless::run();

  std::printf("santa greeted %d groups; %d errors; %zu tasklets left\n", sa.greeted, errors,
              stackless::alive_tasklets());
  const bool ok = sa.greeted == groups && errors == 0 && stackless::alive_tasklets() == 0;
  agents.clear();
  return ok ? 0 : 1;
}
