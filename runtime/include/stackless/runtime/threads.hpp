// Threads: one scheduler per thread, and a pool of worker threads that each run one.
//
// Every thread that uses the library has its own scheduler, run queue and main tasklet; a
// tasklet stays on the thread that created it. Channels work between threads: when the partner
// of an operation belongs to another thread it is made runnable in its own thread (which is
// woken if it sleeps) and the caller continues; preference does not apply across threads, as in
// Stackless. A thread whose tasklets are all blocked sleeps instead of raising deadlock while
// another thread is still active and could wake it (Stackless's thread-block rule).
#pragma once

#include <functional>
#include <memory>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>

#include "stackless/runtime/tasklet.hpp"

namespace stackless {

// run(thread_block): like run(), but when nothing here is runnable while some tasklet here is
// still blocked and another thread is active, the thread sleeps until that thread makes one of
// its tasklets runnable, instead of returning (Stackless `run(threadblock=True)`). Returns when
// every tasklet here has ended, or nothing here is runnable and no other thread is active.
struct thread_block_t {
  explicit thread_block_t() = default;
};
inline constexpr thread_block_t thread_block{};
void run(thread_block_t);

namespace detail {
struct scheduler;
void post_call(scheduler* target, unique_function fn);
void reserve_thread();
void adopt_reservation() noexcept;
void end_reservation() noexcept;
void unreserve_thread() noexcept;
}  // namespace detail

// thread: a std::jthread that the thread-block rule counts from the moment it is constructed.
// A plain std::thread counts only once it first uses the library (creating its scheduler), so
// a thread that blocks right after starting one may find nobody active, give up and raise
// deadlock (or return from run(thread_block)) before the new thread has said a word. Stackless
// counts every Python thread; stackless::thread gives the same guarantee, and also gives the
// constructing thread its scheduler (so the new thread can't find it uncounted either). Joins on
// destruction and on move assignment, as std::jthread does (its stop token is not passed to f).
class thread {
 public:
  thread() noexcept = default;
  template <class F, class... A>
  explicit thread(F&& f, A&&... args) {
    detail::reserve_thread();
    try {
      // The leading std::stop_token makes std::jthread always take its stop-token form, so
      // the arguments reach f as given whatever their types.
      th_ = std::jthread(
          [](std::stop_token, std::decay_t<F> fn, std::decay_t<A>... as) {
            detail::adopt_reservation();
            struct end_t {
              ~end_t() { detail::end_reservation(); }
            } end;
            std::invoke(std::move(fn), std::move(as)...);
          },
          std::forward<F>(f), std::forward<A>(args)...);
    } catch (...) {
      detail::unreserve_thread();
      throw;
    }
  }
  bool joinable() const noexcept { return th_.joinable(); }
  void join() { th_.join(); }
  std::thread::id get_id() const noexcept { return th_.get_id(); }

 private:
  std::jthread th_;
};

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
    post(worker, detail::unique_function(
                     [fn = std::forward<F>(f)]() mutable { tasklet(std::move(fn))(); }));
  }
  void join();

 private:
  struct state;
  static void worker_main(state* ps, unsigned i);
  unsigned next_worker() noexcept;
  void post(unsigned worker, detail::unique_function fn);
  std::unique_ptr<state> st_;
};

}  // namespace stackless
