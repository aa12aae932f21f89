// producer_consumer: a port of Carlos de Paula's producerConsumerTextmode.py
// (stackless-dev/stacklessexamples, examples/producerConsumerTextmode.py).
//
// Five producers and five consumers share a queue of capacity 60. Each worker appends (or pops)
// one unit, prints the queue's status, then sleeps for its own random time: a producer longer
// when the queue is more than a quarter full, a consumer longer when it is less. A worker that
// finds the queue full (or empty) counts it and yields with schedule().
//
// Differences from the original: its "nice way to put the tasklet to sleep" (a Sleep function
// and a ManageSleepingTasklets tasklet) is stackless::sleep; printStatus's time.sleep(0.05),
// which the original says stalls every tasklet, is gone; and instead of running until Ctrl-C the
// program stops after --seconds (a timer tasklet clears `running`) and prints the report.
//
// Usage: producer_consumer [--seconds S] [--scale S] [--quiet] [--seed N]
//   --scale: the sleep times are random() * scale seconds (the original: scale 1).
// Exits non-zero if the bookkeeping does not add up (produced - consumed != left in queue).
#include <stackless/stackless.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

//-------------------- Configuration --------------------------------
const std::size_t q_size = 60;  // Defines the queue size
std::vector<char> queue;        // Defines the queue (start size 0)

std::vector<stackless::tasklet> producers;  // List to reference the producers
std::vector<stackless::tasklet> consumers;  // List to reference the consumers
std::vector<int> p_counter;  // Counter to hold how much units each producer inserted in queue
std::vector<int> c_counter;  // Counter to hold how much units each consumer removed from queue

const int num_prod = 5;  // Number of starting producers
const int num_cons = 5;  // Number of starting consumers

int zero_queue = 0;
int full_queue = 0;

bool running = true;  // not in the original (it runs until Ctrl-C)
bool quiet = false;
bool tty = false;
double scale = 1.0;
std::mt19937 rng(2007);

void Sleep(double seconds) {
  stackless::sleep(std::chrono::duration<double>(seconds * scale));
}

void printStatus(const std::string& reporter) {
  if (quiet) return;
  std::string bar(queue.size(), '#');
  bar.resize(q_size, ' ');
  std::printf("%-3s[%s] Qty: %2zu%s", reporter.c_str(), bar.c_str(), queue.size(),
              tty ? " \r" : "\n");
  std::fflush(stdout);
}

void producer(int who, double sleeptime) {
  while (running) {
    if (queue.size() < q_size) {
      queue.push_back('#');
      p_counter[who] += 1;
      printStatus("P" + std::to_string(who));
      if (queue.size() < q_size / 4)
        Sleep(sleeptime);
      else
        Sleep(sleeptime * 1.5);
    } else {
      full_queue += 1;
      stackless::schedule();
    }
  }
}

void consumer(int who, double sleeptime) {
  while (running) {
    if (queue.size() >= 1) {
      queue.pop_back();
      c_counter[who] += 1;
      printStatus("C" + std::to_string(who));
      if (queue.size() < q_size / 4)
        Sleep(sleeptime * 1.5);
      else
        Sleep(sleeptime);
    } else {
      zero_queue += 1;
      stackless::schedule();
    }
  }
}

void launch_p(int ind, double sleeptime) {  // Launches and initializes the producers lists
  p_counter.push_back(0);
  producers.push_back(stackless::tasklet{producer}(ind, sleeptime));
}

void launch_c(int ind, double sleeptime) {  // Launches and initializes the consumers lists
  c_counter.push_back(0);
  consumers.push_back(stackless::tasklet{consumer}(ind, sleeptime));
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--seconds"))
      seconds = std::atof(argv[++i]);
    else if (arg("--scale"))
      scale = std::atof(argv[++i]);
    else if (arg("--seed"))
      rng.seed(static_cast<unsigned>(std::atoi(argv[++i])));
    else if (std::strcmp(argv[i], "--quiet") == 0)
      quiet = true;
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--scale S] [--quiet] [--seed N]\n", argv[0]);
      return 2;
    }
  }
  tty = ::isatty(1);
  std::uniform_real_distribution<double> random(0.0, 1.0);

  for (int p = 0; p < num_prod; ++p) launch_p(p, random(rng));
  for (int c = 0; c < num_cons; ++c) launch_c(c, random(rng));

  // Instead of Ctrl-C: stop the workers after `seconds`. They finish their current sleep.
  stackless::tasklet([seconds] {
    stackless::sleep(std::chrono::duration<double>(seconds));
    running = false;
  })();

  stackless::run();

  int total_p = 0, total_c = 0;
  std::printf("\n");
  for (std::size_t p = 0; p < producers.size(); ++p) {
    std::printf("Producer %zu produced: %d\n", p, p_counter[p]);
    total_p += p_counter[p];
  }
  for (std::size_t c = 0; c < consumers.size(); ++c) {
    std::printf("Consumer %zu consumed: %d\n", c, c_counter[c]);
    total_c += c_counter[c];
  }
  std::printf("\nProduced units: %d\nConsumed units: %d\nLeft in queue: %zu\n\n", total_p, total_c,
              queue.size());
  std::printf("Queue became zero %d times.\nQueue became full %d times.\n", zero_queue, full_queue);

  const bool ok = total_p > 0 && total_c > 0 &&
                  total_p - total_c == static_cast<int>(queue.size()) &&
                  stackless::alive_tasklets() == 0;
  return ok ? 0 : 1;
}
