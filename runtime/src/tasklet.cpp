// The tasklet handle (tasklet.hpp): its operations (insert, remove, run, switch_to, kill,
// throw_exception, join), its attributes, binding a function and arguments (binding.hpp), and the
// reference count that decides who frees the control block.
#include <algorithm>
#include <cstdio>
#include <ostream>
#include <stdexcept>
#include <string>

#include "scheduler_internal.hpp"

namespace stackless {
namespace detail {

void throw_binding_error(const std::string& what) {
  throw tasklet_error(what);
}

void retain(tasklet_impl* t) noexcept {
  t->handles.fetch_add(1, std::memory_order_relaxed);
}

void release(tasklet_impl* t) noexcept {
  // handles counts the tasklet handles plus one for the scheduler while the tasklet is alive or
  // not yet reaped (and for main, while its thread runs): whoever takes it to 0 frees the block.
  // Read while our reference still holds t: after the decrement only t's own thread may touch
  // it (the scheduler may free it there at any moment).
  const bool own = !t->is_main && t->sched == tls_sched;
  const std::uint32_t old = t->handles.fetch_sub(1, std::memory_order_acq_rel);
  if (old == 1) {
    delete_impl(t);
    return;
  }
  // Only the scheduler's reference is left on a live tasklet: the last handle is gone. A paused
  // tasklet nobody can name any more is killed so its destructors run. Scheduled or blocked ones
  // belong to the scheduler until they end (or are killed at thread exit). (On another thread
  // t is not ours to read any more: such a paused tasklet is killed when its thread exits.)
  if (old == 2 && own && t->alive() && t->link == link_kind::none &&
      t->sched->unwinding == 0 &&  // kill_all() unwinds it itself
      std::find(t->sched->watchdogs.begin(), t->sched->watchdogs.end(), t) ==
          t->sched->watchdogs.end() &&
      t->sched->current != t) {
    tasklet keep = detail::tasklet_access::share(t);
    try {
      keep.kill();
    } catch (...) {
      std::fprintf(stderr, "stackless: exception while killing unreferenced tasklet %llu\n",
                   static_cast<unsigned long long>(t->id));
    }
  }
}

tasklet_impl* new_tasklet() {
  scheduler& s = sched();
  auto p = std::make_unique<tasklet_impl>();
  p->sched = &s;
  p->id = s.next_id++;
  p->handles.store(1, std::memory_order_relaxed);
  return p.release();
}

void bind_callable(tasklet_impl* t, std::unique_ptr<bound_callable> f) {
  check_thread(t);
  if (t->is_main) {
    if (!f) throw_tasklet_error("can't unbind the main tasklet");
    throw_tasklet_error("can't (re)bind the main tasklet");
  }
  if (t == t->sched->current) throw_tasklet_error("can't (re)bind the current tasklet");
  if (t->link != link_kind::none) throw_tasklet_error("tasklet is scheduled");
  if (t->started()) throw_tasklet_error("tasklet has C state on its stack");
  if (t->state == lifecycle::fresh) {
    // Unbinding a paused, never-started tasklet discards it without running anything.
    t->state = lifecycle::unbound;
    t->handles.fetch_sub(1, std::memory_order_relaxed);  // the scheduler's; the caller has one
    all_unlink(*t->sched, t);
    if (t->joiners) join_state_end(std::exchange(t->joiners, nullptr));
    t->call.reset();
    if (t->stack) {
      t->sched->stacks.release(t->stack);
      t->stack = nullptr;
      t->fctx = nullptr;
    }
  }
  t->bound = std::move(f);
}

namespace {
void make_alive(tasklet_impl* t, arg_pack_base* args) {
  if (t->alive()) throw_tasklet_error("tasklet is alive");
  if (!t->bound) throw_tasklet_error("the tasklet was not bound to a function");
  scheduler& s = *t->sched;
  // The stack first: make_call() moves the callable out of t->bound, so a stack_error after it
  // would leave the tasklet bound to a moved-from callable.
  prepare_stack(s, t);  // may throw stack_error; nothing changed yet
  unique_function call;
  try {
    call = t->bound->make_call(args);  // may throw tasklet_error (arguments don't fit)
  } catch (...) {
    s.stacks.release(t->stack);
    t->stack = nullptr;
    t->fctx = nullptr;
    throw;
  }
  t->bound.reset();
  t->call = std::move(call);
  // The scheduler's reference, until t is reaped. When the caller's handle is the only one, no
  // other thread can touch the count: a plain store saves the atomic add (skynet's case).
  if (t->handles.load(std::memory_order_relaxed) == 1)
    t->handles.store(2, std::memory_order_relaxed);
  else
    t->handles.fetch_add(1, std::memory_order_relaxed);
  t->state = lifecycle::fresh;
  all_link(s, t);
}
}  // namespace

void bind_args(tasklet_impl* t, arg_pack_base* args) {
  check_thread(t);
  make_alive(t, args);  // alive and paused
}

void setup_tasklet(tasklet_impl* t, arg_pack_base* args) {
  check_thread(t);
  make_alive(t, args);
  ring_append(*t->sched, t);
}
}  // namespace detail

using detail::link_kind;
using detail::scheduler;
using detail::tasklet_impl;

detail::tasklet_impl* tasklet::checked() const {
  if (!impl_) throw tasklet_error("operation on a null tasklet handle");
  return impl_;
}

tasklet& tasklet::insert() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  if (t->link == link_kind::wait) detail::throw_tasklet_error("You cannot run a blocked tasklet");
  if (!t->alive()) detail::throw_tasklet_error("You cannot run an unbound(dead) tasklet");
  if (t->link == link_kind::none) detail::ring_append(*t->sched, t);
  detail::check_invariants(*t->sched);
  return *this;
}

tasklet& tasklet::remove() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  if (t->link == link_kind::wait)
    detail::throw_tasklet_error("You cannot remove a blocked tasklet.");
  if (t->link == link_kind::none) return *this;
  scheduler& s = *t->sched;
  if (t == s.current) detail::throw_tasklet_error("The current tasklet cannot be removed.");
  detail::ring_unlink(s, t);
  detail::check_invariants(s);
  return *this;
}

namespace {
// check_switchable(s, t): Stackless's refusals for run() and switch_to() of t (not current).
void check_switchable(const scheduler& s, const tasklet_impl* t) {
  if (t->link == link_kind::wait) detail::throw_tasklet_error("You cannot run a blocked tasklet");
  if (!t->alive()) detail::throw_tasklet_error("You cannot run an unbound(dead) tasklet");
  if (s.trap > 0) detail::throw_trap();
}
}  // namespace

void tasklet::run() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  if (t == self) return;
  check_switchable(s, t);
  if (t->link == link_kind::none) detail::ring_append(s, t);  // just before the caller
  detail::switch_current(s, t);  // in place: everything between t and the caller runs first
  detail::take_bomb(self);
}

void tasklet::switch_to() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  if (t == self) return;
  check_switchable(s, t);
  if (t->link == link_kind::none) detail::ring_insert_before(s, self->next, t);
  detail::ring_unlink(s, self);  // the caller is paused
  detail::switch_current(s, t);
  detail::take_bomb(self);
}

void tasklet::kill(bool pending) {
  // tasklet_exit escaping main() would call std::terminate without unwinding main's stack.
  if (impl_ && impl_->is_main)
    detail::throw_tasklet_error(
        "the main tasklet can't be killed: return from main (or throw) to end the thread; "
        "kill_all() kills every other tasklet");
  throw_exception(std::make_exception_ptr(tasklet_exit{}), pending);
}

void tasklet::join() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  if (t->is_main) detail::throw_tasklet_error("the main tasklet can't be joined: it never ends");
  scheduler& s = *t->sched;
  if (t == s.current) detail::throw_tasklet_error("a tasklet can't join itself");
  if (!t->alive()) return;
  if (!t->joiners) t->joiners = detail::join_state_new();
  detail::join_wait(t->joiners);
}

void tasklet::throw_exception(std::exception_ptr e, bool pending) {
  tasklet_impl* t = checked();
  if (t->sched != detail::tls_sched && t->sched) {
    // A tasklet of another thread: the exception is handed to its thread, where the tasklet is
    // unblocked and made runnable (pending semantics: the caller never switches to it).
    if (!e) throw std::invalid_argument("tasklet::throw_exception: null exception_ptr");
    bool is_exit = false;
    try {
      std::rethrow_exception(e);
    } catch (const tasklet_exit&) {
      is_exit = true;
    } catch (...) {
    }
    if (!detail::push_remote_for(t, detail::remote_item::bomb, std::move(e)) && !is_exit)
      detail::throw_tasklet_error("You cannot throw to a dead tasklet (its thread has ended)");
    return;
  }
  detail::check_thread(t);
  // Stackless's throw(None) is a TypeError. Here a null exception_ptr would be undefined
  // behaviour for rethrow_exception, and as a bomb it would just run the target.
  if (!e) throw std::invalid_argument("tasklet::throw_exception: null exception_ptr");
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  if (t == self) std::rethrow_exception(e);
  if (!t->alive()) {
    try {
      std::rethrow_exception(e);
    } catch (const tasklet_exit&) {
      return;  // killing a dead tasklet is a no-op
    } catch (...) {
    }
    detail::throw_tasklet_error("You cannot throw to a dead tasklet");
  }
  if (!pending && s.trap > 0) detail::throw_trap();
  t->bomb = std::move(e);
  detail::tls_slow |= detail::kSlowCheck;
  detail::ensure_unblocked(s, t);
  if (pending) {
    if (t->link == link_kind::none) detail::ring_append(s, t);
    return;
  }
  if (t->link == link_kind::none) detail::ring_append(s, t);  // at the end, just before us
  detail::switch_current(s, t);
  detail::take_bomb(self);
}

bool tasklet::alive() const noexcept {
  return impl_ && impl_->alive();
}
bool tasklet::paused() const noexcept {
  return impl_ && impl_->alive() && impl_->link == link_kind::none;
}
bool tasklet::blocked() const noexcept {
  return impl_ && impl_->link == link_kind::wait;
}
bool tasklet::scheduled() const noexcept {
  return impl_ && impl_->link != link_kind::none;
}
bool tasklet::is_main() const noexcept {
  return impl_ && impl_->is_main;
}
bool tasklet::is_current() const noexcept {
  // Only this thread's scheduler may be read: another thread's may be gone (or changing).
  return impl_ && impl_->sched == detail::tls_sched && detail::tls_sched &&
         detail::tls_sched->current == impl_;
}
bool tasklet::atomic() const noexcept {
  return impl_ && impl_->atomic;
}
bool tasklet::set_atomic(bool flag) {
  tasklet_impl* t = checked();
  bool old = t->atomic;
  t->atomic = flag;
  if (!flag && old && t->sched == detail::tls_sched && t->sched->current == t &&
      t->sched->interrupt_deferred) {
    detail::check_point();  // a deferred interrupt fires as the atomic section ends
  }
  return old;
}
bool tasklet::block_trap() const noexcept {
  return impl_ && impl_->block_trap;
}
void tasklet::set_block_trap(bool flag) noexcept {
  if (impl_) impl_->block_trap = flag;
}
tasklet tasklet::next() const noexcept {
  if (!impl_ || impl_->link == link_kind::none) return {};
  return from_impl(impl_->next);
}
tasklet tasklet::prev() const noexcept {
  if (!impl_ || impl_->link == link_kind::none) return {};
  return from_impl(impl_->prev);
}
std::uint64_t tasklet::id() const noexcept {
  return impl_ ? impl_->id : 0;
}
std::string tasklet::name() const {
  if (!impl_) return {};
  if (!impl_->name.empty()) return impl_->name;
  return "tasklet " + std::to_string(impl_->id);
}
tasklet& tasklet::set_name(std::string n) {
  checked()->name = std::move(n);
  return *this;
}
std::size_t tasklet::stack_size() const noexcept {
  if (!impl_) return 0;
  // Another thread's tasklet: its stack and its scheduler are that thread's (maybe freed).
  if (impl_->sched != detail::tls_sched || !impl_->sched) return impl_->stack_size;
  if (impl_->stack) return impl_->stack->usable;
  return impl_->stack_size ? impl_->stack_size : impl_->sched->default_stack;
}
tasklet& tasklet::set_stack_size(std::size_t bytes) {
  if (bytes < 16 * 1024) throw std::invalid_argument("tasklet stack size must be at least 16 KiB");
  checked()->stack_size = bytes;
  return *this;
}

std::ostream& operator<<(std::ostream& os, const tasklet& t) {
  if (!t) return os << "<tasklet null>";
  return os << "<tasklet " << t.id() << " '" << t.name() << "'>";
}

atomic_section::atomic_section() : old_(getcurrent().set_atomic(true)) {}
atomic_section::~atomic_section() {
  try {
    getcurrent().set_atomic(old_);
  } catch (...) {
    // an interrupt cannot throw here: fire_interrupt only switches
  }
}

}  // namespace stackless
