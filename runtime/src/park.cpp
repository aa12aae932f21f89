// Blocking (park.hpp): wait queues, park() and the unpark_*() family, and cancelling a block
// (a kill, a throw or the deadlock rules take a tasklet out of its owner's queue). The owner
// (a channel, a scope, the I/O poller) keeps its own accounting; the runtime only links.
#include "scheduler_internal.hpp"

namespace stackless::detail {

// clear_wait(t): t, no longer in its owner's queue, is not blocked any more (and not linked).
void clear_wait(tasklet_impl* t) noexcept {
  t->owner = nullptr;
  t->slot = nullptr;
  t->reason = block_reason::none;
  t->next = t->prev = nullptr;
  t->link = link_kind::none;
}

// cancel_block(t): takes a blocked t off its wait owner (the owner restores its accounting).
// Returns false when a partner on another thread completed t's operation first: t is then on its
// way back through this scheduler's remote queue (see ensure_unblocked).
bool cancel_block(tasklet_impl* t) noexcept {
  if (!t->owner->cancel_wait(t)) return false;
  clear_wait(t);
  return true;
}

// ensure_unblocked(s, t): if a partner on another thread got to t first, its "ready" item is
// already in our remote queue (the partner pushes it while still holding the owner's lock, which
// cancel_wait took after it): take it in.
void ensure_unblocked(scheduler& s, tasklet_impl* t) {
  if (t->link == link_kind::wait && !cancel_block(t)) drain_remote(s);
}

// ---- wait queues ----------------------------------------------------------------------------
void wait_queue::push_back(tasklet_impl* t) noexcept {
  wait_push_back(*this, t);
}
tasklet_impl* wait_queue::pop_front() noexcept {
  return wait_pop_front(*this);
}
void wait_queue::erase(tasklet_impl* t) noexcept {
  STACKLESS_ASSERT(t->queued, "wait_queue: erasing a tasklet that is not queued");
  if (t->prev)
    t->prev->next = t->next;
  else
    head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    tail = t->prev;
  t->next = t->prev = nullptr;
  t->queued = false;
}

tasklet_impl* current_impl() {
  return sched().current;
}
const std::exception_ptr& pending_exception_of(const tasklet_impl* t) noexcept {
  return t->bomb;
}
bool doomed_of(const tasklet_impl* t) noexcept {
  return t->doomed;
}
bool block_trap_of(const tasklet_impl* t) noexcept {
  return t->block_trap;
}
bool is_main_impl(const tasklet_impl* t) noexcept {
  return t->is_main;
}
void* wait_slot(tasklet_impl* t) noexcept {
  return t->slot;
}
wait_owner* waiting_on(const tasklet_impl* t) noexcept {
  return t->owner;
}
bool is_queued(const tasklet_impl* t) noexcept {
  return t->queued;
}

void throw_if_switch_trapped() {
  if (sched().trap > 0) throw_trap();
}
bool switch_trapped() noexcept {
  return tls_sched && tls_sched->trap > 0;
}

void park(wait_owner& owner, wait_queue& q, void* slot, block_reason reason, biased_lock* lock) {
  scheduler& s = *tls_sched;
  tasklet_impl* self = s.current;
  tasklet_impl* next = self->next;
  const bool last = (next == self);
  enter_wait(s, self, owner, q, slot, reason);
  // From here a partner on another thread may complete us; it hands us back through our remote
  // queue, which only this thread reads, so nothing runs us before we have switched away.
  if (lock) lock->unlock();
  if (last) {
    // The last runnable tasklet wants to block (docs/semantics.md, "Deadlock").
    try {
      leave_last(s, self);
    } catch (...) {
      relink_alone(s, self);  // when_idle undid the wait: balance as before
      throw;
    }
  } else {
    s.current = next;
    jump(s, self, next);
  }
  take_bomb(self);
}

void unpark_append(tasklet_impl* t) noexcept {
  scheduler& s = *t->sched;
  t->owner = nullptr;
  t->slot = nullptr;
  t->reason = block_reason::none;
  ring_append(s, t);
}

void unpark_and_switch(tasklet_impl* t) {
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  t->owner = nullptr;
  t->slot = nullptr;
  t->reason = block_reason::none;
  ring_insert_before(s, self->next, t);  // right after the caller
  switch_current(s, t);                  // the caller is now the tail
  take_bomb(self);
}

void unpark_append_and_schedule(tasklet_impl* t) {
  unpark_append(t);
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  switch_current(s, self->next);
  take_bomb(self);
}

namespace {
// wake_here_in(s, t, how, lock): wake_here() once t is known to be s's.
inline void wake_here_in(scheduler* s, tasklet_impl* t, wake how, biased_lock& lock) {
  lock.unlock();
  t->owner = nullptr;
  t->slot = nullptr;
  t->reason = block_reason::none;
  if (how == wake::append) [[likely]] {
    ring_append(*s, t);
    return;
  }
  tasklet_impl* self = s->current;
  if (how == wake::run_now) {
    ring_insert_before(*s, self->next, t);  // right after the caller, which becomes the tail
    switch_current(*s, t);
  } else {
    ring_append(*s, t);
    switch_current(*s, self->next);
  }
  take_bomb(self);
}
}  // namespace

bool wake_here(tasklet_impl* t, wake how, biased_lock& lock) {
  scheduler* s = tls_sched;
  if (t->sched != s) [[unlikely]]
    return false;
  wake_here_in(s, t, how, lock);
  return true;
}

tasklet_impl* pop_and_wake_here(wait_queue& q, wake how, biased_lock& lock) {
  tasklet_impl* t = wait_pop_front(q);
  scheduler* s = tls_sched;
  if (t->sched != s) [[unlikely]]
    return t;
  wake_here_in(s, t, how, lock);
  return nullptr;
}

bool same_thread(const tasklet_impl* t) noexcept {
  return t->sched == tls_sched;
}

void unpark_remote(tasklet_impl* t) {
  t->owner->add_ref();  // dropped by drop_item once t's thread has taken t in
  push_remote_for(t, remote_item::ready, nullptr, t->owner);
}

}  // namespace stackless::detail
