// Run budgets and interrupts: run(budget) ends after a number of check points or switches, or an
// amount of time,
// handing back the interrupted tasklet (hard) or letting it run on behind the watchdog (soft);
// check_point() is where the budget is looked at (every channel operation and I/O call, tick(),
// schedule()), and where an exception left by deliver_later() is raised. The clock and the
// check-point count of a slice restart in jump() (scheduler.cpp).
#include <chrono>

#include "scheduler_internal.hpp"

namespace stackless {
namespace detail {
namespace {

bool budget_spent(scheduler& s) noexcept {
  if (s.budget.switches && s.switch_count - s.budget_switch0 >= s.budget.switches) return true;
  if (s.budget.checks &&
      s.budget_checks - (s.budget.total ? 0 : s.slice_checks0) >= s.budget.checks)
    return true;
  if (s.budget.time.count()) {
    auto now = std::chrono::steady_clock::now();
    auto since = s.budget.total ? s.budget_start : s.slice_start;
    if (now - since >= s.budget.time) return true;
  }
  return false;
}

void fire_interrupt(scheduler& s) {
  tasklet_impl* x = s.current;
  tasklet_impl* w = s.budget_watchdog;
  s.budget_active = false;
  s.interrupt_deferred = false;
  if (w->link != link_kind::none) return;  // someone already revived it
  if (s.budget.soft) {
    s.interrupted = nullptr;
    ring_insert_before(s, x->next, w);  // right after x; x stays runnable
  } else {
    s.interrupted = x;
    x->handles.fetch_add(1, std::memory_order_relaxed);  // held until run() hands it out
    if (x->next == x) {
      ring_unlink(s, x);
      ring_make_alone(s, w);
    } else {
      tasklet_impl* after = x->next;
      ring_unlink(s, x);
      ring_insert_before(s, after, w);
    }
  }
  s.current = w;
  jump(s, x, w);
  take_bomb(x);
}

}  // namespace

void check_point() {
  scheduler& s = sched();
  if (s.current->bomb) [[unlikely]]
    take_bomb(s.current);  // left by deliver_later()
  if (!s.budget_active) [[likely]] {
    tls_slow &= static_cast<std::uint8_t>(~kSlowCheck);  // nothing here until a bit is set again
    return;
  }
  if (s.current == s.budget_watchdog) return;
  ++s.budget_checks;
  if (!budget_spent(s)) return;
  if (s.current->atomic || s.trap > 0) {
    s.interrupt_deferred = true;
    return;
  }
  fire_interrupt(s);
}

void deliver_later(std::exception_ptr e) noexcept {
  if (!tls_sched || !e) return;
  tasklet_impl* self = tls_sched->current;
  if (!self->bomb) self->bomb = std::move(e);
  tls_slow |= kSlowCheck;
}

}  // namespace detail

using detail::scheduler;
using detail::tasklet_impl;

tasklet run(const run_budget& b) {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  const bool owner = !s.budget_active && (b.time.count() > 0 || b.switches > 0 || b.checks > 0);
  if (owner) {
    s.budget_active = true;
    detail::tls_slow |= detail::kSlowCheck;
    s.interrupt_deferred = false;
    s.budget = b;
    s.budget_watchdog = self;
    s.budget_start = s.slice_start = std::chrono::steady_clock::now();
    s.budget_switch0 = s.switch_count;
    s.budget_checks = s.slice_checks0 = 0;
    s.interrupted = nullptr;
  }
  struct reset_t {
    scheduler& s;
    bool owner;
    ~reset_t() {
      if (owner) {
        s.budget_active = false;
        s.budget_watchdog = nullptr;
      }
    }
  } reset{s, owner};
  run();
  if (owner && s.interrupted) {
    tasklet r = detail::tasklet_access::adopt(s.interrupted);  // the reference fire_interrupt took
    s.interrupted = nullptr;
    return r;
  }
  return {};
}

void tick() {
  scheduler& s = detail::sched();
  // A soft interrupt already yielded inside check_point() (the victim stays in the run queue);
  // when the victim is resumed it just goes on, it must not yield a second time.
  if (s.budget_active) [[unlikely]]
    detail::check_point();
}

}  // namespace stackless
