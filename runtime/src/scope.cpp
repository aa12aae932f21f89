// stackless::scope and tasklet::join(): waiting for tasklets to end (scope.hpp).
//
// A scope_state counts the children not yet ended and queues the tasklets waiting for that
// count to reach 0. It is a wait_owner: a waiter parks on it as on a channel, so a wait can be
// killed, is woken from any thread, and is a deadlock when nothing anywhere could end a child.
// It is reference counted: the scope, each child's ticket, and a remote wake-up in flight.
#include <atomic>
#include <cstdio>
#include <memory>
#include <vector>

#include "stackless/runtime/park.hpp"
#include "stackless/runtime/scope.hpp"
#include "tasklet_impl.hpp"

namespace stackless::detail {

struct scope_child {
  scope_child* next = nullptr;
  scope_child* prev = nullptr;
  tasklet t;  // set when the child starts running (for cancel)
};

struct scope_state final : wait_owner {
  std::atomic<std::uint32_t> refs{1};
  biased_lock lock;  // guards everything below (children may run on other threads)
  wait_queue waiters;
  std::size_t count = 0;
  scope_child* head = nullptr;
  bool cancelled = false;
  std::exception_ptr error;

  bool cancel_wait(tasklet_impl* t) noexcept override {
    lock.lock();
    const bool queued = is_queued(t);
    if (queued) waiters.erase(t);
    lock.unlock();
    return queued;
  }
  void add_ref() noexcept override { refs.fetch_add(1, std::memory_order_relaxed); }
  void release_ref() noexcept override {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;  // NOLINT: refcounted
  }
};

namespace {

// wake_all_locked(st, local): every waiter leaves the queue. Waiters of other threads are handed
// over while the lock is held (their own cancel_wait then finds them gone, see channel.cpp);
// ours are returned, to be made runnable once the lock is released.
void wake_all_locked(scope_state* st, std::vector<tasklet_impl*>& local) {
  while (!st->waiters.empty()) {
    tasklet_impl* t = st->waiters.pop_front();
    if (same_thread(t))
      local.push_back(t);
    else
      unpark_remote(t);
  }
}

// one_done(st, node): a child (or the joined tasklet) has ended.
void one_done(scope_state* st, scope_child* node) noexcept {
  tasklet handle;
  std::vector<tasklet_impl*> local;
  st->lock.lock();
  if (node) {
    if (node->prev)
      node->prev->next = node->next;
    else
      st->head = node->next;
    if (node->next) node->next->prev = node->prev;
    handle = std::move(node->t);
  }
  if (--st->count == 0) {
    try {
      wake_all_locked(st, local);
    } catch (...) {  // out of memory for `local`: the waiters stay queued; a later end wakes them
    }
  }
  st->lock.unlock();
  for (tasklet_impl* t : local) unpark_append(t);
  delete node;  // NOLINT: owned by the ticket until now
  st->release_ref();
}

// kill_children(st): pending kills for every child that has started (not the caller: a child
// that fails cancels its siblings from its own stack).
void kill_children(scope_state* st) noexcept {
  std::vector<tasklet> victims;
  st->lock.lock();
  st->cancelled = true;
  try {
    for (scope_child* c = st->head; c; c = c->next)
      if (c->t) victims.push_back(c->t);
  } catch (...) {  // out of memory: those not collected are not killed
  }
  st->lock.unlock();
  const tasklet self = getcurrent();
  for (auto& v : victims) {
    if (v == self) continue;
    try {
      v.kill(true);
    } catch (...) {  // a dead tasklet, or its thread ended: nothing to kill
    }
  }
}

}  // namespace

scope_state* scope_new() {
  return new scope_state;  // NOLINT: refcounted, released by scope_release
}
void scope_release(scope_state* st) noexcept {
  st->release_ref();
}

scope_child* scope_add(scope_state* st) {
  auto node = std::make_unique<scope_child>();
  st->lock.lock();
  if (st->cancelled) {
    std::exception_ptr e = std::exchange(st->error, nullptr);
    st->lock.unlock();
    // A failed child cancelled the scope: its exception says more than "cancelled".
    if (e) std::rethrow_exception(e);
    throw tasklet_error("stackless::scope: spawn after cancel()");
  }
  node->next = st->head;
  if (st->head) st->head->prev = node.get();
  st->head = node.get();
  ++st->count;
  st->add_ref();
  st->lock.unlock();
  return node.release();
}

scope_ticket::~scope_ticket() {
  if (node) one_done(st, node);  // the child never ran
}

void scope_child_run(scope_ticket& ticket, unique_function& fn) {
  scope_state* st = ticket.st;
  scope_child* node = std::exchange(ticket.node, nullptr);
  struct done_t {
    scope_state* st;
    scope_child* node;
    ~done_t() { one_done(st, node); }
  } done{st, node};
  tasklet self = getcurrent();
  st->lock.lock();
  node->t = std::move(self);
  const bool run = !st->cancelled;
  st->lock.unlock();
  if (!run) return;  // cancelled between spawn and start (a child on another thread)
  try {
    fn();
  } catch (const tasklet_exit&) {
    throw;  // killed (cancel): a normal end for a child
  } catch (...) {
    st->lock.lock();
    const bool first = !st->error && !st->cancelled;
    if (first) st->error = std::current_exception();
    st->lock.unlock();
    if (first) kill_children(st);
  }
}

void scope_cancel(scope_state* st) noexcept {
  kill_children(st);
}

void scope_wait(scope_state* st) {
  for (;;) {
    st->lock.lock();
    if (st->count == 0) {
      std::exception_ptr e = std::exchange(st->error, nullptr);
      st->lock.unlock();
      if (e) std::rethrow_exception(e);
      return;
    }
    try {
      throw_if_switch_trapped();
    } catch (...) {
      st->lock.unlock();
      throw;
    }
    park(*st, st->waiters, nullptr, block_reason::join, &st->lock);
  }
}

void scope_wait_quietly(scope_state* st) noexcept {
  for (;;) {
    try {
      scope_wait(st);
      return;
    } catch (const tasklet_exit&) {
      // killed while waiting for children that still reference our stack: wait on
    } catch (...) {
      st->lock.lock();
      const std::size_t left = st->count;
      st->lock.unlock();
      if (left == 0) return;  // only a child's error, dropped: another exception is in flight
      // Nothing can end them (a deadlock), or we may not block (unwinding at thread end): give
      // up rather than loop forever. They keep the scope's state alive, not our stack.
      if (!current_impl()->doomed)
        std::fprintf(stderr, "stackless::scope: left with %zu child tasklet(s) still alive\n",
                     left);
      return;
    }
  }
}

std::size_t scope_children(const scope_state* st) noexcept {
  auto* s = const_cast<scope_state*>(st);
  s->lock.lock();
  const std::size_t n = s->count;
  s->lock.unlock();
  return n;
}

// ---- tasklet::join() ----------------------------------------------------------------------
scope_state* join_state_new() {
  auto* st = new scope_state;  // NOLINT: refcounted; the tasklet holds this reference
  st->count = 1;               // the tasklet itself
  return st;
}
void join_state_end(scope_state* st) noexcept {
  one_done(st, nullptr);  // wakes the joiners and drops the tasklet's reference
}
void join_wait(scope_state* st) {
  st->add_ref();
  struct rel_t {
    scope_state* st;
    ~rel_t() { st->release_ref(); }
  } rel{st};
  scope_wait(st);
}

}  // namespace stackless::detail

namespace stackless {

scope::scope() : st_(detail::scope_new()), uncaught_(std::uncaught_exceptions()) {}

scope::~scope() noexcept(false) {
  struct rel_t {
    detail::scope_state* st;
    ~rel_t() { detail::scope_release(st); }
  } rel{st_};
  if (std::uncaught_exceptions() > uncaught_) {
    // Left by an exception: cancel, wait, and let that exception go on.
    detail::scope_cancel(st_);
    detail::scope_wait_quietly(st_);
    return;
  }
  try {
    detail::scope_wait(st_);
  } catch (...) {
    // A child's exception (nothing left running), or our wait was interrupted (killed,
    // deadlock): then the children, which may use our stack, are cancelled and waited for first.
    if (size() > 0) {
      detail::scope_cancel(st_);
      detail::scope_wait_quietly(st_);
    }
    throw;
  }
}

}  // namespace stackless
