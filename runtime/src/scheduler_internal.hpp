// Internal: what the scheduler's source files share. Never included by the layers above (only
// runtime/src is on their private include path). The structures and their invariants are at the
// top of tasklet_impl.hpp; docs/architecture.md maps the files.
//
//   scheduler.cpp      the core: switching, when_idle/finish, the scheduler's lifetime, run()
//   park.cpp           wait queues, park/unpark, cancelling a block
//   threads.cpp        remote queues, the thread-block wait, worker_pool
//   budget.cpp         run(budget), tick(), check_point() and the interrupt
//   tasklet.cpp        the tasklet handle's API, binding, handle reference counts
//   unwind.cpp         the end of a thread and kill_all()
//   biased_lock.cpp    the biased lock's thread records and revocation
//   overflow_*.cpp     stack-overflow reporting (POSIX signal / Windows vectored handler)
//
// Lock order (outer first; never the other way round):
//   a wait owner's biased_lock (a channel's)  ->  g_threads_mu (threads.cpp)  ->  the idle
//   waker's own lock (the thread-pool I/O backend's dm_ in wake()).
// unpark_remote() runs under the owner's lock and pushes to another thread's remote queue under
// g_threads_mu, which calls that thread's idle waker. Nothing takes a channel lock while holding
// g_threads_mu: push_remote(), drain_remote() and unregister_scheduler() release it before they
// run calls or drop references (which may free a channel). rec_mu() (biased_lock.cpp) is a leaf.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <vector>

#include "stackless/runtime/detail/assert.hpp"
#include "stackless/runtime/detail/fast_path.hpp"
#include "tasklet_impl.hpp"

namespace stackless::detail {

#if defined(STACKLESS_ASAN) || defined(STACKLESS_TSAN)
inline constexpr std::size_t kDefaultStack = 512 * 1024;  // sanitizers need more (folly, Seastar)
#else
inline constexpr std::size_t kDefaultStack = 128 * 1024;
#endif

// ---- the thread's scheduler (scheduler.cpp) ---------------------------------------------------
// tls_sched: this thread's scheduler; null until the thread first uses the library.
extern constinit thread_local scheduler* tls_sched;
// new_thread_scheduler(): creates the calling thread's scheduler, owned by the thread (destroyed
// at its exit). POSIX: scheduler.cpp; Windows: scheduler_win.cpp.
scheduler* new_thread_scheduler();
// sched(): this thread's scheduler, created on first use.
inline scheduler& sched() {
  if (!tls_sched) [[unlikely]]
    tls_sched = new_thread_scheduler();
  return *tls_sched;
}
// check_thread(t): throws wrong_thread_error unless t belongs to this thread.
void check_thread(const tasklet_impl* t);
[[noreturn]] void throw_tasklet_error(const char* msg);
[[noreturn]] void throw_trap();
// delete_impl(t): frees the control block (the last reference is gone).
void delete_impl(tasklet_impl* t) noexcept;
// install_overflow_handler(): per thread; overflow_posix.cpp / overflow_win.cpp.
void install_overflow_handler();
// release_thread_rec(): hands the thread's biased-lock record back (biased_lock.cpp).
void release_thread_rec() noexcept;

// ---- ring operations --------------------------------------------------------------------------
// ring_insert_before(s, pos, t): links t just before pos (t becomes the tail when pos is current).
inline void ring_insert_before(scheduler& s, tasklet_impl* pos, tasklet_impl* t) noexcept {
  // t comes from nowhere (paused, new) or from a wait queue it has just been taken out of.
  STACKLESS_ASSERT(t->link != link_kind::ring && pos->link == link_kind::ring,
                   "ring_insert_before: t already in the ring, or pos not in it");
  t->next = pos;
  t->prev = pos->prev;
  pos->prev->next = t;
  pos->prev = t;
  t->link = link_kind::ring;
  ++s.runcount;
}
// ring_make_alone(s, t): t becomes the only member of an empty ring.
inline void ring_make_alone(scheduler& s, tasklet_impl* t) noexcept {
  STACKLESS_ASSERT(t->link != link_kind::ring, "ring_make_alone: t already in the ring");
  t->next = t->prev = t;
  t->link = link_kind::ring;
  ++s.runcount;
}
// ring_append(s, t): "append to the end of the run queue". Normally that is just before current;
// while current is out of the ring (transiently, inside park/finish), appends queue up behind
// ring_head instead.
inline void ring_append(scheduler& s, tasklet_impl* t) noexcept {
  if (s.current->link == link_kind::ring) [[likely]] {
    ring_insert_before(s, s.current, t);
  } else if (s.runcount == 0) {
    ring_make_alone(s, t);
    s.ring_head = t;
  } else {
    ring_insert_before(s, s.ring_head, t);
  }
}
// ring_unlink(s, t): takes t out of the ring (which may become empty, only transiently: someone
// is put back at once).
inline void ring_unlink(scheduler& s, tasklet_impl* t) noexcept {
  STACKLESS_ASSERT(t->link == link_kind::ring && s.runcount > 0, "ring_unlink: t not in the ring");
  if (t->next != t) {
    t->prev->next = t->next;
    t->next->prev = t->prev;
  }
  t->next = t->prev = nullptr;
  t->link = link_kind::none;
  --s.runcount;
}

// all_link/all_unlink: the scheduler's list of alive tasklets (killed at thread exit).
inline void all_link(scheduler& s, tasklet_impl* t) noexcept {
  s.all.push_front(*t);  // newest first: unwind_all() reverses it into creation order
}
inline void all_unlink(scheduler& s, tasklet_impl* t) noexcept {
  s.all.erase(s.all.iterator_to(*t));
}

// check_invariants(s): asserts the invariants of the run ring and the alive list
// (tasklet_impl.hpp) by walking both; called where current must be in the ring (after a switch
// lands, after insert/remove). With STACKLESS_CHECK_INVARIANTS only (fuzz builds): O(n).
void check_ring_invariants(const scheduler& s) noexcept;
inline void check_invariants([[maybe_unused]] const scheduler& s) noexcept {
#ifdef STACKLESS_CHECK_INVARIANTS
  check_ring_invariants(s);
#endif
}

inline tasklet_impl* watchdog_or_main(scheduler& s) noexcept {
  return s.watchdogs.empty() ? s.main_t : s.watchdogs.back();
}

// ---- switching (scheduler.cpp) ----------------------------------------------------------------
// jump(s, from, to): the one place that switches stacks. `to` must already be current.
void jump(scheduler& s, tasklet_impl* from, tasklet_impl* to);
// switch_current(s, to): makes `to` current (it must be in the ring) and jumps to it. The caller
// must have put itself where it belongs (ring, wait queue or nowhere) first.
inline void switch_current(scheduler& s, tasklet_impl* to) {
  tasklet_impl* from = s.current;
  s.current = to;
  jump(s, from, to);
}
// take_bomb(t): throws the exception stored for t, if any.
inline void take_bomb(tasklet_impl* t) {
  if (t->bomb) [[unlikely]] {
    std::exception_ptr e = std::move(t->bomb);
    t->bomb = nullptr;
    std::rethrow_exception(e);
  }
}
// prepare_stack(s, t): gives t a stack and an initial context.
void prepare_stack(scheduler& s, tasklet_impl* t);
// leave_last(s, self): self, already out of the ring, was the last runnable tasklet. Switches to
// whatever when_idle() finds (the revived watchdog or main, or work from another thread), or
// throws deadlock_error; the caller then puts self back with relink_alone().
void leave_last(scheduler& s, tasklet_impl* self);
inline void relink_alone(scheduler& s, tasklet_impl* self) noexcept {
  ring_make_alone(s, self);
}

// ---- blocking (park.cpp) ----------------------------------------------------------------------
// wait_pop_front(q): wait_queue::pop_front, inline for pop_and_wake_here().
inline tasklet_impl* wait_pop_front(wait_queue& q) noexcept {
  tasklet_impl* t = q.head;
  STACKLESS_ASSERT(t && t->queued && !t->prev, "wait_queue: pop_front on a broken queue");
  q.head = t->next;
  if (q.head)
    q.head->prev = nullptr;
  else
    q.tail = nullptr;
  t->next = t->prev = nullptr;
  t->queued = false;
  return t;
}
// wait_push_back(q, t): wait_queue::push_back, inline for park_unless_block_trapped().
inline void wait_push_back(wait_queue& q, tasklet_impl* t) noexcept {
  STACKLESS_ASSERT(!t->queued && t->link == link_kind::wait,
                   "wait_queue: pushing a queued tasklet");
  t->queued = true;
  t->next = nullptr;
  t->prev = q.tail;
  if (q.tail)
    q.tail->next = t;
  else
    q.head = t;
  q.tail = t;
}
// enter_wait(s, self, owner, q, slot, reason): the current tasklet `self` leaves the run ring
// (unless it is alone there: the last runnable) and waits in owner's queue q. The caller then
// releases the owner's lock and switches away (park(), park_unless_block_trapped()).
inline void enter_wait(scheduler& s, tasklet_impl* self, wait_owner& owner, wait_queue& q,
                       void* slot, block_reason reason) noexcept {
  tasklet_impl* next = self->next;
  if (next != self) {
    self->prev->next = next;
    next->prev = self->prev;
  }
  --s.runcount;
  self->link = link_kind::wait;
  self->owner = &owner;
  self->slot = slot;
  self->reason = reason;
  wait_push_back(q, self);
}
// clear_wait(t): t, no longer in its owner's queue, is not blocked any more (and not linked).
void clear_wait(tasklet_impl* t) noexcept;
// cancel_block(t): takes a blocked t off its wait owner (the owner restores its accounting).
// Returns false when a partner on another thread completed t's operation first: t is then on its
// way back through this scheduler's remote queue (see ensure_unblocked).
bool cancel_block(tasklet_impl* t) noexcept;
// ensure_unblocked(s, t): t was blocked; after this it is not in any wait queue.
void ensure_unblocked(scheduler& s, tasklet_impl* t);

// ---- threads (threads.cpp) --------------------------------------------------------------------
// register_scheduler(s) / unregister_scheduler(s): s joins / leaves the process's live schedulers
// (and the thread-block rule's count of active ones). unregister drops what was still queued.
void register_scheduler(scheduler* s);
void unregister_scheduler(scheduler* s) noexcept;
void drain_remote(scheduler& s);
// take_remote(s): takes in whatever other threads have handed this scheduler (cheap when nothing).
inline void take_remote(scheduler& s) {
  if (s.remote_pending.load(std::memory_order_acquire)) [[unlikely]]
    drain_remote(s);
}
// push_remote_for(t, kind, e, owner_ref): hands t (a tasklet of another thread) to its own
// thread. The item holds a reference, so t stays valid until that thread takes it in. Returns
// false (the item dropped) when that thread has ended.
bool push_remote_for(tasklet_impl* t, remote_item::kind_t kind, std::exception_ptr e = nullptr,
                     wait_owner* owner_ref = nullptr);
// thread_block_wait(s): sleeps until another thread hands this one work. Returns false when no
// other thread is active, i.e. nobody could ever wake us (then every sleeper is told so too).
bool thread_block_wait(scheduler& s);
// How long a thread with nothing to do waits for threads that have not used the library yet,
// and how many there were when this thread last gave up (0: none; for the deadlock message).
inline constexpr auto kForeignWait = std::chrono::milliseconds(500);
extern constinit thread_local int tls_gave_up_unseen;

// ---- budgets (budget.cpp) and the end of a thread (unwind.cpp) --------------------------------
// report_leftovers(s, when): lists the tasklets still alive on stderr, when asked to by
// STACKLESS_REPORT_LEFTOVERS.
void report_leftovers(scheduler& s, const char* when);
// unwind_all(s): kills every tasklet of this thread except the caller (and main); returns the
// first exception that escaped an unwinding.
std::exception_ptr unwind_all(scheduler& s);

}  // namespace stackless::detail
