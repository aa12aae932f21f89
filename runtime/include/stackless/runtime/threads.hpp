// Threads: one scheduler per thread, and a pool of worker threads that each run one.
//
// Every thread that uses the library has its own scheduler, run queue and main tasklet; a
// tasklet stays on the thread that created it. Channels work between threads: when the partner
// of an operation belongs to another thread it is made runnable in its own thread (which is
// woken if it sleeps) and the caller continues; preference does not apply across threads, as in
// Stackless. A thread whose tasklets are all blocked sleeps instead of raising deadlock while
// another thread is still active and could wake it (Stackless's thread-block rule).
#pragma once

#include <memory>
#include <utility>

#include "stackless/runtime/tasklet.hpp"

namespace stackless {

// run(thread_block): like run(), but when nothing here is runnable and another thread is still
// active, the thread sleeps until that thread makes one of its tasklets runnable, instead of
// returning (Stackless `run(threadblock=True)`). Returns when nothing here is runnable and no
// other thread is active.
struct thread_block_t {
  explicit thread_block_t() = default;
};
inline constexpr thread_block_t thread_block{};
void run(thread_block_t);

namespace detail {
struct scheduler;
void post_call(scheduler* target, unique_function fn);
}  // namespace detail

// worker_pool: N threads, each running a scheduler. spawn() creates a tasklet on one of them
// (round robin; spawn_on picks the worker). Tasklets never migrate; use channels between them
// and with the spawning thread. join() (and the destructor) waits until every worker has nothing
// runnable and nothing queued, stops the threads and re-throws the first exception that escaped
// a worker's tasklet. Tasklets still blocked then are killed (their destructors run).
class worker_pool {
 public:
  // n == 0: one worker per hardware thread.
  explicit worker_pool(unsigned n = 0);
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  unsigned size() const noexcept;

  template <class F>
  void spawn(F&& f) {
    spawn_on(next_worker(), std::forward<F>(f));
  }
  template <class F>
  void spawn_on(unsigned worker, F&& f) {
    post(worker, detail::unique_function([fn = std::forward<F>(f)]() mutable {
           tasklet(std::move(fn))();
         }));
  }
  void join();

  struct state;  // internal

 private:
  unsigned next_worker() noexcept;
  void post(unsigned worker, detail::unique_function fn);
  std::unique_ptr<state> st_;
};

}  // namespace stackless
