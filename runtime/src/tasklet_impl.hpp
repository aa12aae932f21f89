// Internal: the tasklet control block and the per-thread scheduler.
//
// Glossary (docs/internals.md has the long story):
//   tasklet      - a control block (tasklet_impl) plus, while alive, a stack from the pool.
//   main tasklet - the thread's own context; it has no pooled stack and never finishes.
//   current      - the running tasklet; always linked in the run ring, and the ring's head.
//   run ring     - circular doubly-linked list of runnable tasklets through next/prev.
//                  "Append to the end of the run queue" means "insert just before current";
//                  the next tasklet to run is current->next.
//   wait queue   - a linear FIFO of blocked tasklets (a channel's), also through next/prev.
//   watchdog     - a tasklet paused inside run(); the innermost one is revived when the ring
//                  empties, and receives exceptions that escape tasklets (main if none).
//   bomb         - an exception stored in a tasklet, thrown when it next resumes.
//
// Invariants:
//   link == ring  <=> the tasklet is in the run ring (runcount counts them, current included).
//   link == wait  <=> the tasklet is in exactly one wait_owner's queue; owner != nullptr.
//   link == none  <=> next == prev == nullptr (paused, unbound, or finished).
//   alive         <=> bound with arguments or started, and not finished.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stack_pool.hpp"
#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACKLESS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define STACKLESS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define STACKLESS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define STACKLESS_TSAN 1
#endif

namespace stackless::detail {

namespace ctx = boost::context::detail;
struct scheduler;

enum class link_kind : std::uint8_t { none, ring, wait };

struct tasklet_impl {
  // next_/prev_: neighbours in the run ring when link == ring, or in one wait queue when
  // link == wait; both null otherwise.
  tasklet_impl* next = nullptr;
  tasklet_impl* prev = nullptr;
  scheduler* sched = nullptr;
  ctx::fcontext_t fctx = nullptr;  // saved context while not running
  stack_block* stack = nullptr;
  link_kind link = link_kind::none;
  bool alive = false;
  bool started = false;  // has executed code: has C state on its stack
  bool finished = false; // ended; its stack is released by whoever runs next
  bool is_main = false;
  bool atomic = false;
  bool block_trap = false;
  block_reason reason = block_reason::none;
  wait_owner* owner = nullptr;  // what it is blocked on (link == wait)
  void* slot = nullptr;         // the owner's per-wait data
  std::exception_ptr bomb;
  std::unique_ptr<bound_callable> bound;  // tasklet(f) / bind(f)
  unique_function call;                    // the closure to run once alive
  std::atomic<std::uint32_t> handles{0};   // tasklet handles naming this block
  std::uint64_t id = 0;
  std::size_t stack_size = 0;  // 0: the scheduler's default
  std::string name;
  // all-alive list of the scheduler (killed at shutdown)
  tasklet_impl* all_next = nullptr;
  tasklet_impl* all_prev = nullptr;
#ifdef STACKLESS_ASAN
  void* asan_fake = nullptr;
  const void* asan_bottom = nullptr;
  std::size_t asan_size = 0;
#endif
#ifdef STACKLESS_TSAN
  void* tsan_fiber = nullptr;
#endif
};

struct scheduler {
  scheduler();
  ~scheduler();

  tasklet_impl* main_t = nullptr;
  tasklet_impl* current = nullptr;
  int runcount = 0;
  std::vector<tasklet_impl*> watchdogs;
  stack_pool stacks;
  std::size_t default_stack;
  int trap = 0;
  std::uint64_t next_id = 1;
  std::uint64_t switch_count = 0;
  std::thread::id thread = std::this_thread::get_id();
  tasklet_impl* all_head = nullptr;
  std::size_t alive_count = 0;
  bool in_sched_cb = false;
  schedule_callback sched_cb;
  error_handler err_handler;

  // run(budget) state; only the outermost budgeted run() owns it.
  bool budget_active = false;
  bool interrupt_deferred = false;
  run_budget budget;
  tasklet_impl* budget_watchdog = nullptr;
  std::chrono::steady_clock::time_point budget_start, slice_start;
  std::uint64_t budget_switch0 = 0;
  tasklet_impl* interrupted = nullptr;
};

}  // namespace stackless::detail
