// Internal: the tasklet control block and the per-thread scheduler.
//
// Glossary (docs/architecture.md has the file map and the layering):
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
//   link != none   => alive() (state fresh or started).
//   alive() and not main <=> in the scheduler's all-tasklets list (all); it then has a stack.
//   current        => state == started (a tasklet is marked started before anything runs on it).
//   doomed         => alive().
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <boost/intrusive/list.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fiber_hooks.hpp"
#include "stack_pool.hpp"
#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless::detail {

namespace ctx = boost::context::detail;
struct scheduler;
struct scope_state;
// tasklet::join() support (scope.cpp): a tasklet's joiners wait on a scope_state counting it.
scope_state* join_state_new();
void join_state_end(scope_state* st) noexcept;  // wakes the joiners, drops the reference
void join_wait(scope_state* st);

enum class link_kind : std::uint8_t { none, ring, wait };

// lifecycle: where a tasklet is in its life. One state instead of the alive/started/finished
// flags, whose other combinations no code handled. The transitions:
//   unbound  --bind with arguments (make_alive)-->                    fresh
//   fresh    --unbind (bind(nullptr))-->                              unbound
//   fresh    --first switched to (tasklet_entry)-->                   started
//   started  --its function returned or threw (finish)-->             finished
//   finished --the tasklet that runs next released its stack-->       unbound (may be bound again)
// The main tasklet is started from its scheduler's construction to its destruction.
enum class lifecycle : std::uint8_t {
  unbound,   // nothing to run: new, unbound, or ended and reaped (Stackless's "unbound(dead)")
  fresh,     // bound with arguments and given a stack, never run: nothing on its stack yet
  started,   // has executed code: has C state on its stack
  finished,  // ended; its stack is released by whoever runs next (on_resume), then unbound
};

// The hook of the scheduler's list of alive tasklets (`all`). Safe-link mode where
// STACKLESS_ASSERT is on: a tasklet freed, or linked a second time, while still listed asserts.
#ifdef STACKLESS_ENABLE_ASSERTS
using all_list_hook =
    boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>;
#else
using all_list_hook =
    boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::normal_link>>;
#endif

struct tasklet_impl {
  // next_/prev_: neighbours in the run ring when link == ring, or in one wait queue when
  // link == wait; both null otherwise.
  tasklet_impl* next = nullptr;
  tasklet_impl* prev = nullptr;
  scheduler* sched = nullptr;
  ctx::fcontext_t fctx = nullptr;  // saved context while not running
  stack_block* stack = nullptr;
  link_kind link = link_kind::none;
  lifecycle state = lifecycle::unbound;
  bool is_main = false;
  bool atomic = false;
  bool block_trap = false;
  bool queued = false;           // in a wait queue; guarded by the owner's lock when it is shared
  bool threadblock_run = false;  // inside run(thread_block) as a watchdog
  // Being unwound by kill_all() / the end of its thread; only while alive (finish() clears it).
  // Not a lifecycle state: a fresh tasklet is doomed too, and stays doomed once it starts.
  bool doomed = false;
  block_reason reason = block_reason::none;
  wait_owner* owner = nullptr;  // what it is blocked on (link == wait)
  void* slot = nullptr;         // the owner's per-wait data
  std::exception_ptr bomb;
  std::unique_ptr<bound_callable> bound;  // tasklet(f) / bind(f)
  scope_state* joiners = nullptr;         // join() waiters (one reference), created on demand
  unique_function call;                   // the closure to run once alive
  // Tasklet handles naming this block, plus one for the scheduler from make_alive until the
  // tasklet is reaped (main: while its thread runs). Whoever takes it to 0 frees the block.
  std::atomic<std::uint32_t> handles{0};
  std::uint64_t id = 0;
  std::size_t stack_size = 0;  // 0: the scheduler's default
  std::string name;
  all_list_hook all_hook;  // in the scheduler's `all` list while alive (main never is)
  [[no_unique_address]] fiber_annotations san;  // sanitizer state (fiber_hooks.hpp)

  // alive(): bound with arguments or started, and not finished (Stackless's tasklet.alive).
  bool alive() const noexcept { return state == lifecycle::fresh || state == lifecycle::started; }
  // started(): has executed code, so it has C state on its stack, and has not ended.
  bool started() const noexcept { return state == lifecycle::started; }
  // finished(): has ended, and its stack is not released yet.
  bool finished() const noexcept { return state == lifecycle::finished; }
};

// all_list: a scheduler's alive tasklets, main excluded, newest first (all_link/all_unlink).
using all_list =
    boost::intrusive::list<tasklet_impl, boost::intrusive::member_hook<tasklet_impl, all_list_hook,
                                                                       &tasklet_impl::all_hook>>;

// remote_item: work another thread hands to this scheduler (threads.cpp).
struct remote_item {
  enum kind_t : std::uint8_t { ready, bomb, call } kind;
  tasklet_impl* t = nullptr;        // ready/bomb: holds one handle reference
  std::exception_ptr error;         // bomb
  unique_function fn;               // call: run on the scheduler's thread (in its main tasklet)
  wait_owner* owner_ref = nullptr;  // ready: a reference on what t waited on (unpark_remote)
};

struct scheduler {
  scheduler();
  ~scheduler();

  // ---- cross-thread state: every field in this block is guarded by g_threads_mu -------------
  std::vector<remote_item> remote_q;
  std::vector<remote_item> remote_spare;  // owner only: drain_remote's reusable buffer
  std::condition_variable wake_cv;
  bool thread_blocked = false;          // asleep: in thread_block_wait() or a worker's idle wait
  bool in_block_wait = false;           // asleep in thread_block_wait() (not a worker's idle wait)
  bool give_up = false;                 // woken because no thread is left that could wake it
  void (*idle_waker)(void*) = nullptr;  // called when remote work arrives (the io poller's wake)
  void* idle_waker_ctx = nullptr;
  // release: a pusher's remote_q contents are visible to the owner once it sees the flag.
  std::atomic<bool> remote_pending{false};
  // --------------------------------------------------------------------------------------

  tasklet_impl* main_t = nullptr;
  tasklet_impl* current = nullptr;
  int runcount = 0;
  // While current has left the ring (it is blocking, finishing or being switched away from) and
  // something is appended, the ring has no current to hang off: ring_head is its first member.
  tasklet_impl* ring_head = nullptr;
  std::vector<tasklet_impl*> watchdogs;
  stack_pool stacks;
  std::size_t default_stack;
  int trap = 0;
  std::uint64_t next_id = 1;
  std::uint64_t switch_count = 0;
  std::thread::id thread = std::this_thread::get_id();
  all_list all;  // killed at the end of the thread; all.size() is alive_tasklets()
  bool in_sched_cb = false;
  int unwinding = 0;  // > 0 while kill_all() switches into a doomed tasklet
  schedule_callback sched_cb;
  error_handler err_handler;

  // run(budget) state; only the outermost budgeted run() owns it.
  bool budget_active = false;
  bool interrupt_deferred = false;
  run_budget budget;
  tasklet_impl* budget_watchdog = nullptr;
  std::chrono::steady_clock::time_point budget_start, slice_start;
  std::uint64_t budget_switch0 = 0;
  std::uint64_t budget_checks = 0;  // check points reached under the current budget
  std::uint64_t slice_checks0 = 0;  // budget_checks when the current tasklet was switched in
  tasklet_impl* interrupted = nullptr;
};

}  // namespace stackless::detail
