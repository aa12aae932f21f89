// The per-thread scheduler's core: switching, when_idle()/finish() (what runs when a tasklet
// blocks, pauses or ends, with the deadlock rules of docs/semantics.md), the scheduler's
// lifetime, and run()/schedule()/schedule_remove(). The structures and their invariants are at
// the top of tasklet_impl.hpp; scheduler_internal.hpp lists the files that hold the rest.
//
// Switching protocol: a switch is always switch_context(to->fctx, from) (the contract of
// Boost.Context's jump_fcontext, see switch_context.hpp). Whoever resumes gets `from` in
// transfer_t::data and either stores the context it left (from->fctx) or, if `from` finished,
// returns its stack to the pool (it can't do that itself: it was standing on it).
#include <cxxabi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "scheduler_internal.hpp"
#include "switch_context.hpp"

namespace stackless {
namespace detail {

constinit thread_local scheduler* tls_sched = nullptr;
constinit thread_local std::uint8_t tls_slow = kSlowCheck;  // fast_path.hpp

#ifndef _WIN32  // Windows: scheduler_win.cpp
namespace {
thread_local std::unique_ptr<scheduler> tls_owner;
}
scheduler* new_thread_scheduler() {
  // The biased-lock record first: its release at thread exit then comes after the scheduler's
  // teardown, which may still take channel locks.
  if (bias_available()) (void)this_thread_rec();
  tls_owner = std::make_unique<scheduler>();
  return tls_owner.get();
}
#endif

[[noreturn]] void throw_tasklet_error(const char* msg) {
  throw tasklet_error(msg);
}

void check_thread(const tasklet_impl* t) {
  if (t->sched != tls_sched) [[unlikely]] {
    throw wrong_thread_error("tasklet " + std::to_string(t->id) +
                             " belongs to another thread (can't switch to a different thread.)");
  }
}

[[noreturn]] void throw_trap() {
  throw switch_trap_error("switch_trap");
}

void delete_impl(tasklet_impl* t) noexcept {
  if (t->joiners) join_state_end(t->joiners);
  hook_fiber_freed(t->san);
  std::unique_ptr<tasklet_impl> owned(t);
}

void check_ring_invariants(const scheduler& s) noexcept {
  const tasklet_impl* c = s.current;
  STACKLESS_ASSERT(c->link == link_kind::ring, "run ring: current is not in the ring");
  int n = 0;
  const tasklet_impl* t = c;
  do {
    STACKLESS_ASSERT(t->link == link_kind::ring && t->sched == &s, "run ring: a foreign member");
    STACKLESS_ASSERT(t->next->prev == t, "run ring: next/prev disagree");
    STACKLESS_ASSERT(t->owner == nullptr && !t->queued, "run ring: a member is still waiting");
    STACKLESS_ASSERT(t->alive(), "run ring: a member is not alive");
    ++n;
    t = t->next;
  } while (t != c && n <= s.runcount);
  STACKLESS_ASSERT(n == s.runcount, "run ring: runcount is not the ring's length");
  STACKLESS_ASSERT(c->started(), "current: has not started (or has ended)");
  STACKLESS_ASSERT(s.main_t->started() && s.main_t->is_main, "main: not started, or not main");
  std::size_t alive = 0;
  for (const tasklet_impl& member : s.all) {
    [[maybe_unused]] const tasklet_impl* a = &member;
    STACKLESS_ASSERT(a->alive() && !a->is_main, "alive list: a dead tasklet or main");
    STACKLESS_ASSERT(a->stack && (a == c || a->fctx), "alive list: no stack or saved context");
    STACKLESS_ASSERT(a->link != link_kind::wait || a->owner, "alive list: blocked on nothing");
    STACKLESS_ASSERT(a->link != link_kind::none || (!a->next && !a->prev && !a->owner),
                     "alive list: a paused tasklet still linked or waiting");
    ++alive;
  }
  STACKLESS_ASSERT(alive == s.all.size(), "alive list: its size is not its length");
}

// ---- switching ------------------------------------------------------------------------------
namespace {
void tasklet_entry(ctx::transfer_t t) noexcept;

// reap_orphan(s, t): t has just paused itself (schedule_remove(), switch_to()) while no handle
// names it, so nobody can ever insert it again. Kill it now, from the tasklet that resumed, so
// its destructors run, as release() does when the last handle of a paused tasklet goes away.
// Under a switch trap it is left alone (it is then killed at thread exit).
[[gnu::cold, gnu::noinline]] void reap_orphan(scheduler& s, tasklet_impl* t) noexcept {
  if (t->handles.load(std::memory_order_acquire) != 1 || s.trap > 0) return;  // 1: ours only
  if (std::find(s.watchdogs.begin(), s.watchdogs.end(), t) != s.watchdogs.end()) return;
  tasklet keep = detail::tasklet_access::share(t);
  try {
    keep.kill();
  } catch (...) {
    // It died with another error, routed to us: the resumer raises it from what it was doing.
    if (!s.current->bomb) s.current->bomb = std::current_exception();
    tls_slow |= kSlowCheck;
  }
}

// on_resume(tr): bookkeeping right after a switch lands on a tasklet.
void on_resume(scheduler& s, ctx::transfer_t tr) noexcept {
  auto* from = static_cast<tasklet_impl*>(tr.data);
  hook_after_switch(s.current->san, from->san, from->is_main);
  if (from->finished()) {
    STACKLESS_ASSERT(from->link == link_kind::none && !from->doomed && !from->is_main,
                     "reaping: a finished tasklet still linked, doomed, or main");
    from->state = lifecycle::unbound;  // reaped
    if (from->stack) {
      hook_finished_stack(tr.fctx, *from->stack);  // tr.fctx: the lowest frame left on it
      s.stacks.release(from->stack);
      from->stack = nullptr;
    }
    from->fctx = nullptr;
    // Drop the scheduler's reference (taken in make_alive). One atomic decides who frees the
    // block: this, or the last handle, which may be dropped on another thread at this moment.
    // Usually no handle is left: then no other thread can hold or make one, and a load will do.
    if (from->handles.load(std::memory_order_acquire) == 1 ||
        from->handles.fetch_sub(1, std::memory_order_acq_rel) == 1)
      delete_impl(from);
  } else {
    from->fctx = tr.fctx;
    if (from->link == link_kind::none && from->alive() && !from->is_main) [[unlikely]]
      reap_orphan(s, from);
  }
  // Work handed over by other threads joins the run queue at switch points.
  take_remote(s);
  check_invariants(s);
}

// Per-tasklet C++ exception-handling state. The Itanium ABI keeps, per thread, the stack of
// exceptions being handled in catch blocks and the uncaught count (__cxa_eh_globals, opaque in
// cxxabi.h; same two leading fields in libstdc++ and libc++abi). A tasklet may switch inside a
// catch block (Stackless's `except: ch.send_throw(*sys.exc_info())`), so each tasklet keeps its
// own: otherwise another tasklet sees its exception in std::current_exception() and ends the
// wrong handler (a use-after-free of the exception object).
struct eh_globals_layout {
  void* caught;
  unsigned int uncaught;
#ifdef __ARM_EABI_UNWINDER__
  void* propagating;
#endif
};
// The thread's __cxa_eh_globals never moves: look it up once per thread instead of paying a
// PLT call plus __tls_get_addr twice on every switch.
eh_globals_layout* eh_globals() noexcept {
  thread_local eh_globals_layout* g = nullptr;
  if (!g) [[unlikely]]
    g = reinterpret_cast<eh_globals_layout*>(abi::__cxa_get_globals());
  return g;
}
void eh_restore(const eh_globals_layout& e) noexcept {
  *eh_globals() = e;
}
}  // namespace

// jump(s, from, to): the one place that switches stacks. `to` must already be current. Inline
// here for park_unless_block_trapped(); everyone else calls jump().
[[gnu::always_inline]] inline void jump_inline(scheduler& s, tasklet_impl* from, tasklet_impl* to) {
  ++s.switch_count;
  if (s.budget_active && !s.budget.total) [[unlikely]] {
    s.slice_checks0 = s.budget_checks;  // a slice's check points count from here
    if (s.budget.time.count()) s.slice_start = std::chrono::steady_clock::now();
  }
  if (s.sched_cb) [[unlikely]] {
    if (!s.in_sched_cb) {
      s.in_sched_cb = true;
      try {
        // A copy: the callback may remove or replace itself, which must not destroy the
        // closure while it runs (Stackless holds a reference to the hook for the call).
        schedule_callback cb = s.sched_cb;
        // getcurrent() in the callback is still `from` (Stackless fixed this as a bug: "wrong
        // stackless.current in schedule callback").
        struct current_t {
          scheduler& s;
          tasklet_impl* to;
          ~current_t() { s.current = to; }
        } restore{s, to};
        s.current = from;
        cb(detail::tasklet_access::share(from), detail::tasklet_access::share(to));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "stackless: exception in schedule callback ignored: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "stackless: exception in schedule callback ignored\n");
      }
      s.in_sched_cb = false;
    }
  }
  hook_before_switch(from->san, from->finished(), to->san, to->stack);
  // One lookup for both sides: a tasklet resumes on its own thread only.
  eh_globals_layout* const g = eh_globals();
  const eh_globals_layout eh = *g;  // kept on this tasklet's stack while it is away
  ctx::transfer_t tr = switch_context(to->fctx, from);  // jump_fcontext, ret-terminated
  *g = eh;
  on_resume(s, tr);
}
void jump(scheduler& s, tasklet_impl* from, tasklet_impl* to) {
  jump_inline(s, from, to);
}

// park() (park.cpp) for a channel's fast path, in the common case only: one call, no nested
// frame for the switch. The last runnable tasklet (the deadlock rules) takes park() itself.
bool park_unless_block_trapped(wait_owner& owner, wait_queue& q, void* slot, block_reason reason,
                               biased_lock& lock) {
  scheduler& s = sched();
  tasklet_impl* self = s.current;
  if (self->block_trap) [[unlikely]]
    return false;
  tasklet_impl* next = self->next;
  if (next == self) [[unlikely]] {
    park(owner, q, slot, reason, &lock);
    return true;
  }
  // As park(): leave the ring, enter the owner's queue, release the owner's lock, switch.
  enter_wait(s, self, owner, q, slot, reason);
  lock.unlock();
  s.current = next;
  jump_inline(s, self, next);
  take_bomb(self);
  return true;
}

// prepare_stack(s, t): gives t a stack and an initial context.
void prepare_stack(scheduler& s, tasklet_impl* t) {
  if (t->stack) return;
  t->stack = s.stacks.acquire(t->stack_size ? t->stack_size : s.default_stack);
  t->fctx = make_context(*t->stack, tasklet_entry);
  hook_fiber_made(t->san);
}

// ---- when nothing is runnable, and the end of a tasklet ----------------------------------------
namespace {
const char* const kDeadlock = "Deadlock: the last runnable tasklet cannot be blocked.";

// when_idle(s, self, finishing): the ring is empty and self has left it (blocking, pausing or
// finishing). Returns the tasklet to switch to, linked in the ring: one another thread made
// runnable, or the revived watchdog/main (docs/semantics.md, "Deadlock" and "Threads"). Returns
// self when another thread made self itself runnable again meanwhile. Throws deadlock_error when
// nothing can ever run (after undoing self's wait); a finishing tasklet instead wakes a blocked
// main with the "main tasklet is receiving without a sender available." error.
tasklet_impl* when_idle(scheduler& s, tasklet_impl* self, bool finishing) {
  for (;;) {
    take_remote(s);
    if (!finishing && self->link == link_kind::ring) return self;
    if (s.runcount > 0) return s.ring_head;
    tasklet_impl* w = watchdog_or_main(s);
    const bool revivable = w != self && w->link != link_kind::wait;
    // run(thread_block) waits only while something here is blocked (another thread may
    // complete its operation); once every tasklet has ended it returns, as run() does.
    if (revivable && (!w->threadblock_run || s.all.empty())) break;
    if (thread_block_wait(s)) continue;
    if (revivable) break;
    if (finishing) {
      // Main is blocked and nobody anywhere can complete its operation.
      const block_reason why = w->reason;
      if (!cancel_block(w)) continue;  // completed by another thread after all
      w->bomb = std::make_exception_ptr(deadlock_error(
          why == block_reason::channel_send
              ? "the main tasklet is sending without a receiver available."
          : why == block_reason::join
              ? "the main tasklet is waiting for tasklets that can never end (all blocked)."
              : "the main tasklet is receiving without a sender available."));
      break;
    }
    if (self->link == link_kind::wait && !cancel_block(self)) continue;
    if (tls_gave_up_unseen > 0)
      throw deadlock_error(std::string(kDeadlock) + " (" + std::to_string(tls_gave_up_unseen) +
                           " other thread(s) never used stackless within " +
                           std::to_string(kForeignWait.count()) +
                           " ms; a thread counts once it has used the library, or from its "
                           "construction when it is a stackless::thread)");
    throw deadlock_error(kDeadlock);
  }
  tasklet_impl* w = watchdog_or_main(s);
  ring_append(s, w);
  return w;
}

// finish(s, self, err): the end of a tasklet; never returns.
[[noreturn]] void finish(scheduler& s, tasklet_impl* self, std::exception_ptr err) noexcept {
  if (err && s.err_handler) {
    // Stackless calls the error handler in the context of the dying tasklet.
    try {
      auto h = s.err_handler;
      h(err);
      err = nullptr;
    } catch (const tasklet_exit&) {
      err = nullptr;
    } catch (...) {
      err = std::current_exception();
    }
  }
  STACKLESS_ASSERT(self->started(), "finish: the tasklet has not started");
  self->state = lifecycle::finished;  // not alive any more; its stack is released once we left it
  self->atomic = false;
  self->doomed = false;
  if (self->joiners) join_state_end(std::exchange(self->joiners, nullptr));
  all_unlink(s, self);
  tasklet_impl* after = self->next;  // the tasklet that would run next
  const bool ring_empty = (after == self);
  ring_unlink(s, self);

  tasklet_impl* next;
  tasklet_impl* w = watchdog_or_main(s);
  if (err) {
    // Deliver to the innermost watchdog (or main): woken at once, ahead of everyone else.
    w->bomb = err;
    ensure_unblocked(s, w);
    if (w->link == link_kind::ring) {
      if (w == after) after = (s.runcount == 1) ? nullptr : w->next;
      ring_unlink(s, w);
    }
    if (ring_empty || !after) {
      ring_make_alone(s, w);
    } else {
      ring_insert_before(s, after, w);
    }
    next = w;
  } else if (ring_empty) {
    // Nothing left to run here: revive the watchdog (or main), or wait for another thread.
    next = when_idle(s, self, true);
  } else {
    next = after;
  }
  err = nullptr;
  s.current = next;
  jump(s, self, next);
  std::abort();  // unreachable: a finished tasklet is never resumed
}

void tasklet_entry(ctx::transfer_t tr) noexcept {
  scheduler& s = *tls_sched;
  eh_restore({});  // a new tasklet handles no exception yet (the thread's state is its caller's)
  tasklet_impl* self = s.current;
  STACKLESS_ASSERT(self->state == lifecycle::fresh, "tasklet_entry: the tasklet is not fresh");
  self->state = lifecycle::started;  // before on_resume's invariant check: current has started
  on_resume(s, tr);
  std::exception_ptr err;
  try {
    take_bomb(self);  // killed or thrown into before it ever ran: dies without running its code
    unique_function fn = std::move(self->call);
    fn();
  } catch (const tasklet_exit&) {
  } catch (...) {
    err = std::current_exception();
  }
  finish(s, self, std::move(err));
}

// leave_last(s, self): self, already out of the ring, was the last runnable tasklet. Switches to
}  // namespace

// throws deadlock_error; the caller restores self on a throw.
void leave_last(scheduler& s, tasklet_impl* self) {
  tasklet_impl* next = when_idle(s, self, false);
  if (next == self) return;  // made runnable again by another thread before we switched
  s.current = next;
  jump(s, self, next);
}

// ---- scheduler lifetime ---------------------------------------------------------------------
scheduler::scheduler() : default_stack(kDefaultStack) {
  main_t = new tasklet_impl;  // NOLINT: owned by the scheduler, freed in ~scheduler
  main_t->sched = this;
  main_t->is_main = true;
  main_t->state = lifecycle::started;
  main_t->handles.store(1, std::memory_order_relaxed);  // the scheduler's own (see release)
  main_t->id = 0;
  main_t->name = "main";
  main_t->next = main_t->prev = main_t;
  main_t->link = link_kind::ring;
  hook_thread_fiber(main_t->san);
  current = main_t;
  runcount = 1;
  tls_slow = kSlowCheck;  // a new scheduler: no trap; check_point() clears the rest
  thread_context_init();
  install_overflow_handler();
  register_scheduler(this);
}

scheduler::~scheduler() {
  drain_remote(*this);
  // The end-of-thread rule (docs/semantics.md): no leftover tasklet resumes its normal code;
  // each is unwound so that the destructors on its own stack run, and nothing else.
  report_leftovers(*this, "at the end of their thread; unwinding them");
  std::exception_ptr err;
  try {
    err = unwind_all(*this);
  } catch (...) {
    err = std::current_exception();
  }
  if (err) {
    try {
      std::rethrow_exception(err);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stackless: exception while unwinding a tasklet at thread exit: %s\n",
                   e.what());
    } catch (...) {
      std::fprintf(stderr, "stackless: exception while unwinding a tasklet at thread exit\n");
    }
  }
  if (!all.empty()) {
    std::fprintf(stderr, "stackless: %zu tasklet(s) refused to die at thread exit; leaked\n",
                 all.size());
  }
  unregister_scheduler(this);
  hook_thread_fiber_end(main_t->san);
  main_t->state = lifecycle::unbound;
  main_t->sched = nullptr;
  if (main_t->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) delete_impl(main_t);
  thread_context_fini();
  release_thread_rec();
  // "No scheduler" is a check point's work again: a channel operation from a later thread_local
  // destructor must not take the fast path (fast_path.hpp) on a scheduler that is gone.
  tls_slow |= kSlowCheck;
}

}  // namespace detail

// ---- public API -----------------------------------------------------------------------------
using detail::scheduler;
using detail::tasklet_impl;

void run() {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  detail::take_remote(s);          // tasklets other threads made runnable take part in this run
  if (self->next == self) return;  // nothing else runnable
  if (s.trap > 0) detail::throw_trap();
  tasklet_impl* next = self->next;
  s.watchdogs.push_back(self);
  detail::ring_unlink(s, self);
  try {
    detail::switch_current(s, next);
  } catch (...) {
    // not reached: switch_current does not throw; kept for symmetry
    throw;
  }
  auto it = std::find(s.watchdogs.begin(), s.watchdogs.end(), self);
  if (it != s.watchdogs.end()) s.watchdogs.erase(it, s.watchdogs.end());
  detail::take_bomb(self);
}

void schedule() {
  scheduler& s = detail::sched();
  if (s.budget_active) [[unlikely]] {
    detail::check_point();
  }
  tasklet_impl* self = s.current;
  // Alone here: take in what other threads made runnable (the I/O poll tasklet relies on it).
  if (self->next == self) detail::take_remote(s);
  if (self->next == self) {
    detail::take_bomb(self);
    return;
  }
  if (s.trap > 0) detail::throw_trap();
  detail::switch_current(s, self->next);
  detail::take_bomb(self);
}

void schedule_remove() {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  if (s.trap > 0 && self->next != self) detail::throw_trap();
  if (self->next == self) {
    tasklet_impl* w = detail::watchdog_or_main(s);
    if (w == self) return;  // main alone: a no-op
    if (s.trap > 0) detail::throw_trap();
    detail::ring_unlink(s, self);
    try {
      detail::leave_last(s, self);
    } catch (...) {
      detail::relink_alone(s, self);
      throw;
    }
  } else {
    tasklet_impl* next = self->next;
    detail::ring_unlink(s, self);
    detail::switch_current(s, next);
  }
  detail::take_bomb(self);
}

tasklet getcurrent() {
  return detail::tasklet_access::share(detail::sched().current);
}
tasklet getmain() {
  return detail::tasklet_access::share(detail::sched().main_t);
}
int getruncount() noexcept {
  return detail::tls_sched ? detail::tls_sched->runcount : 1;
}
int switch_trap(int delta) {
  scheduler& s = detail::sched();
  int old = s.trap;
  s.trap += delta;
  if (s.trap > 0)
    detail::tls_slow |= detail::kSlowTrap;
  else
    detail::tls_slow &= static_cast<std::uint8_t>(~detail::kSlowTrap);
  // An interrupt deferred by the trap fires as soon as the trap is released (as on leaving an
  // atomic section).
  if (old > 0 && s.trap <= 0 && s.interrupt_deferred && !s.current->atomic) [[unlikely]]
    detail::check_point();
  return old;
}

schedule_callback set_schedule_callback(schedule_callback cb) {
  return std::exchange(detail::sched().sched_cb, std::move(cb));
}
schedule_callback get_schedule_callback() {
  return detail::sched().sched_cb;
}
error_handler set_error_handler(error_handler h) {
  return std::exchange(detail::sched().err_handler, std::move(h));
}
std::size_t default_stack_size() noexcept {
  return detail::tls_sched ? detail::tls_sched->default_stack : detail::kDefaultStack;
}
void set_default_stack_size(std::size_t bytes) {
  if (bytes < 16 * 1024) throw std::invalid_argument("tasklet stack size must be at least 16 KiB");
  detail::sched().default_stack = bytes;
}
stack_stats get_stack_stats() noexcept {
  stack_stats r;
  if (auto* s = detail::tls_sched) {
    r.in_use = s->stacks.in_use();
    r.pooled = s->stacks.pooled();
    r.mapped = s->stacks.mapped();
    r.guarded = s->stacks.guarded();
    r.guard_install = s->stacks.guard_install();
  }
  return r;
}
std::size_t alive_tasklets() noexcept {
  return detail::tls_sched ? detail::tls_sched->all.size() : 0;
}

}  // namespace stackless
