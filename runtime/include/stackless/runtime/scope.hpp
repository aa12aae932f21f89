// stackless::scope: structured concurrency (Trio's nursery, Kotlin's coroutineScope, P2300's
// async_scope) for tasklets.
//
// A scope spawns tasklets (its children) and does not end before they do:
//   - join() waits until every child has ended, then re-throws the first exception that escaped
//     a child (after the first failure the other children are killed: nothing is left running);
//   - cancel() kills every child (pending kills: the caller goes on) without waiting;
//   - the destructor joins; when the scope is left by an exception it cancels first, waits, and
//     lets that exception continue (a child's exception is then dropped). Left normally, the
//     destructor re-throws the first child exception, as join() does; call join() yourself
//     when that reads better.
// Children may run on this thread (spawn) or on a worker_pool's threads (spawn_on); the waiting
// tasklet blocks like a channel receive (other tasklets run; nothing runnable anywhere is a
// deadlock_error). Scopes nest: a child may open its own scope. A scope belongs to the tasklet
// that created it: join() and the destructor must run there.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "stackless/runtime/tasklet.hpp"
#include "stackless/runtime/threads.hpp"

namespace stackless {

namespace detail {
struct scope_state;
struct scope_child;
scope_state* scope_new();
void scope_release(scope_state*) noexcept;
// scope_add(st): counts one more child (refused after cancel()); returns the child's node.
scope_child* scope_add(scope_state*);
// scope_ticket: a child's claim on its scope, carried by the child's closure. If the closure is
// destroyed without having run (the tasklet was killed before it started, or the spawn failed),
// the child is counted done all the same, so join() never waits for a child that can't come.
struct scope_ticket {
  scope_state* st;
  scope_child* node;
  scope_ticket(scope_state* s, scope_child* n) noexcept : st(s), node(n) {}
  scope_ticket(scope_ticket&& o) noexcept : st(o.st), node(std::exchange(o.node, nullptr)) {}
  scope_ticket& operator=(scope_ticket&&) = delete;
  ~scope_ticket();
};
// scope_child_run(ticket, fn): a child's body on its own tasklet: registers the tasklet (for
// cancel), runs fn unless the scope was cancelled meanwhile, records the first exception that
// escapes it (and then cancels the other children), and counts the child done.
void scope_child_run(scope_ticket& ticket, unique_function& fn);
void scope_cancel(scope_state*) noexcept;
void scope_wait(scope_state*);  // until no child is left; re-throws the first child exception
void scope_wait_quietly(scope_state*) noexcept;  // the same, dropping errors (unwinding path)
std::size_t scope_children(const scope_state*) noexcept;
}  // namespace detail

class scope {
 public:
  scope();
  ~scope() noexcept(false);
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

  // spawn(f, args...): a child tasklet on this thread, appended to the run queue (as
  // tasklet(f)(args...)). Returns its handle. Throws tasklet_error after cancel().
  template <class F, class... A>
  requires std::is_invocable_v < std::decay_t<F>
  &, std::decay_t<A>&... > tasklet spawn(F&& f, A&&... a) {
    tasklet t(child_body(std::forward<F>(f), std::forward<A>(a)...));
    t();
    return t;
  }
  // spawn_on(pool, f, args...): a child tasklet on one of pool's workers (round robin).
  template <class F, class... A>
  requires std::is_invocable_v < std::decay_t<F>
  &, std::decay_t<A>&... > void spawn_on(worker_pool& pool, F&& f, A&&... a) {
    pool.spawn(child_body(std::forward<F>(f), std::forward<A>(a)...));
  }

  // cancel(): kills every child (pending kills: the caller goes on); later spawns are refused.
  void cancel() noexcept { detail::scope_cancel(st_); }
  // join(): waits for every child; re-throws the first exception that escaped one.
  void join() { detail::scope_wait(st_); }
  std::size_t size() const noexcept { return detail::scope_children(st_); }  // children left

 private:
  template <class F, class... A>
  auto child_body(F&& f, A&&... a) {
    detail::unique_function fn(
        [f = std::forward<F>(f), ... as = std::forward<A>(a)]() mutable { std::invoke(f, as...); });
    return [ticket = detail::scope_ticket(st_, detail::scope_add(st_)),
            fn = std::move(fn)]() mutable { detail::scope_child_run(ticket, fn); };
  }

  detail::scope_state* st_;
  int uncaught_;
};

}  // namespace stackless
