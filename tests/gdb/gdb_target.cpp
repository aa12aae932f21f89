// The program the gdb script test (tests/gdb/CMakeLists.txt) debugs: a few named tasklets in
// every state stackless-list reports, then abort() so that gdb stops (live) or a core is written.
//   1 producer  blocked sending on `requests`   (frame: producer_loop)
//   2 consumer  blocked receiving on `replies`  (frame: consumer_loop)
//   3 napper    paused after running            (frame: napper_body)
//   4 worker    runnable, never started
//   5 sleeper   paused, never started (bound with arguments)
#include <stackless/channel.hpp>
#include <stackless/runtime/tasklet.hpp>

#include <cstdio>
#include <cstdlib>

namespace {

stackless::channel<int>* requests;
stackless::channel<int>* replies;

// noinline: the test looks for these names in the tasklets' backtraces.
[[gnu::noinline]] void producer_loop(int n) {
  for (int i = 0; i < n; ++i) requests->send(i);  // nobody receives: blocks on the first send
}
[[gnu::noinline]] void consumer_loop() {
  for (;;) std::printf("got %d\n", replies->receive());
}
[[gnu::noinline]] void napper_body() {
  stackless::schedule_remove();
}
void never_runs(int) {}

}  // namespace

// A stable place to break in the live test; abort() right after makes the core.
extern "C" [[gnu::noinline]] void stackless_gdb_marker() {
  asm volatile("" ::: "memory");
}

int main() {
  stackless::channel<int> req, rep;
  requests = &req;
  replies = &rep;
  stackless::tasklet producer([] { producer_loop(3); });
  stackless::tasklet consumer([] { consumer_loop(); });
  stackless::tasklet napper([] { napper_body(); });
  producer.set_name("producer")();
  consumer.set_name("consumer")();
  napper.set_name("napper")();
  stackless::run();  // each one blocks or pauses; run() returns
  stackless::tasklet worker([] {});
  worker.set_name("worker")();
  stackless::tasklet sleeper(never_runs, 1);
  sleeper.set_name("sleeper");
  std::printf("gdb_target: %zu tasklets alive, runcount %d\n", stackless::alive_tasklets(),
              stackless::getruncount());
  std::fflush(stdout);
  stackless_gdb_marker();
  std::abort();
}
