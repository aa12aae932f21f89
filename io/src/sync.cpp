// The wait queues behind <stackless/sync.hpp>: parking with FIFO hand-off, timeouts through a
// helper tasklet that sleeps on the poller's timers, and the non-template primitives.
//
// Invariants (per sync_core, under mu):
//   n_[i] == number of tasklets in q_[i]; a queued tasklet's park slot is a sync_waiter.
//   A waiter leaves its queue exactly once: granted (grant_front: it got what it waited for),
//   failed (shutdown: the primitive is gone), or cancelled (cancel_wait: timeout, kill, throw,
//   deadlock), and only a granted waiter holds anything it may have to give back.
//   counting_sem: value_ > 0 implies nobody waits (a release hands permits to waiters first).
#include <cmath>
#include <string>

#include "stackless/io/sleep.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/sync.hpp"

namespace stackless {
namespace detail {
namespace {

// The timeout signal a timed wait's helper throws into the waiter. Not a std::exception, so no
// user `catch (const std::exception&)` can swallow it (it never leaves sync_core::wait anyway).
struct timeout_signal {
  const void* token;
};

bool expired(sync_clock::time_point deadline) {
  return deadline != no_deadline && deadline <= stackless::now();
}

// start_timer(deadline, token): a helper tasklet that sleeps until the deadline and then throws
// the timeout signal into the calling tasklet if that one is still blocked (stacklesslib's
// timeout(blocked=True)). It touches nothing of the waiter but its tasklet handle.
tasklet start_timer(sync_clock::time_point deadline, const void* token) {
  tasklet t([target = getcurrent(), deadline, token]() mutable {
    stackless::sleep_until(deadline);
    if (target.blocked())
      target.throw_exception(std::make_exception_ptr(timeout_signal{token}), true);
  });
  t.set_name("stackless.sync.timeout");
  t.setup();
  return t;
}

// stop_timer(t): the wait is over; the helper must not outlive it (it would throw into a
// tasklet that no longer waits here). kill() runs it now, so it is gone when this returns.
void stop_timer(tasklet& t) {
  if (t && t.alive()) t.kill();
}

}  // namespace

sync_clock::time_point seconds_deadline(bool blocking, double timeout) {
  if (!blocking) {
    if (timeout != -1) throw sync_error("can't specify a timeout for a non-blocking call");
    return sync_clock::time_point::min();
  }
  if (timeout == -1) return no_deadline;
  if (!(timeout >= 0)) throw sync_error("timeout value must be a non-negative number");
  return deadline_after(std::chrono::duration<double>(timeout));
}

sync_core* sync_core::create() {
  return new sync_core;  // NOLINT: reference counted; freed by release_ref
}

void sync_core::release_ref() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;  // NOLINT: see create
}

void sync_core::shutdown(const char* what) noexcept {
  mu.lock();
  for (unsigned i = 0; i < kQueues; ++i) {
    while (!q_[i].empty()) {
      tasklet_impl* t = q_[i].pop_front();
      --n_[i];
      slot(t).error = std::make_exception_ptr(
          sync_error(std::string("stackless::") + what + " destroyed while tasklets wait on it"));
      if (same_thread(t))
        unpark_append(t);
      else
        unpark_remote(t);
    }
  }
  mu.unlock();
  release_ref();
}

void sync_core::grant_front(unsigned which) noexcept {
  tasklet_impl* t = q_[which].pop_front();
  --n_[which];
  slot(t).granted = true;  // before it can run (on another thread: published by the hand-over)
  if (same_thread(t))
    unpark_append(t);
  else
    unpark_remote(t);
}

bool sync_core::cancel_wait(tasklet_impl* t) noexcept {
  mu.lock();
  if (!is_queued(t)) {  // granted (or failed) by another thread first
    mu.unlock();
    return false;
  }
  auto& w = slot(t);
  q_[w.which].erase(t);
  --n_[w.which];
  mu.unlock();
  return true;
}

bool sync_core::wait(sync_waiter& w, sync_clock::time_point deadline) {
  tasklet timer;
  try {
    if (getcurrent().block_trap())
      throw block_trap_error("this tasklet does not like to be blocked.");
    throw_if_switch_trapped();
    if (deadline != no_deadline) timer = start_timer(deadline, &w);
  } catch (...) {
    mu.unlock();
    throw;
  }
  ++n_[w.which];
  try {
    park(*this, q_[w.which], &w, block_reason::channel_receive, &mu);
  } catch (const timeout_signal& s) {
    stop_timer(timer);
    if (s.token != &w) throw;  // not ours (cannot happen: one timer per wait)
    if (w.error) std::rethrow_exception(w.error);
    return w.granted;  // a hand-off that beat the timer counts
  } catch (...) {
    stop_timer(timer);
    throw;
  }
  stop_timer(timer);
  if (w.error) std::rethrow_exception(w.error);
  return true;
}

bool with_timeout(sync_clock::time_point deadline, void (*op)(void*), void* ctx) {
  tasklet timer;
  if (deadline != no_deadline) timer = start_timer(deadline, ctx);
  try {
    op(ctx);
  } catch (const timeout_signal& s) {
    stop_timer(timer);
    if (s.token != ctx) throw;
    return false;
  } catch (...) {
    stop_timer(timer);
    throw;
  }
  stop_timer(timer);
  return true;
}

bool is_timeout_signal(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const timeout_signal&) {
    return true;
  } catch (...) {
    return false;
  }
}

// ---- counting_sem ---------------------------------------------------------------------------
bool counting_sem::acquire_until(sync_clock::time_point deadline) {
  core_guard g(*core_);
  if (value_ > 0) {
    --value_;
    return true;
  }
  if (expired(deadline)) return false;
  sync_waiter w;
  g.dismiss();
  try {
    return core_->wait(w, deadline);
  } catch (...) {
    if (w.granted) give_back();
    throw;
  }
}

bool counting_sem::try_acquire() noexcept {
  core_guard g(*core_);
  if (value_ == 0) return false;
  --value_;
  return true;
}

void counting_sem::release(std::size_t n, const char* too_many) {
  core_guard g(*core_);
  if (n > max_ - value_) throw sync_error(too_many);
  while (n > 0 && !core_->empty(0)) {
    core_->grant_front(0);
    --n;
  }
  value_ += n;
}

void counting_sem::give_back() noexcept {
  core_guard g(*core_);
  if (!core_->empty(0))
    core_->grant_front(0);
  else
    ++value_;
}

std::size_t counting_sem::value() const noexcept {
  core_guard g(*core_);
  return value_;
}

std::size_t counting_sem::waiting() const noexcept {
  core_guard g(*core_);
  return core_->size(0);
}

}  // namespace detail

// ---- recursive_lock -------------------------------------------------------------------------
bool recursive_lock::acquire_until(detail::sync_clock::time_point deadline) {
  detail::tasklet_impl* me = detail::current_impl();
  detail::core_guard g(*core_);
  if (owner_ == me) {
    ++count_;
    return true;
  }
  if (!owner_) {
    owner_ = me;
    count_ = 1;
    return true;
  }
  if (detail::expired(deadline)) return false;
  detail::sync_waiter w;
  g.dismiss();
  try {
    return core_->wait(w, deadline);  // granted: the releaser made us the owner
  } catch (...) {
    if (w.granted) {
      detail::core_guard g2(*core_);
      release_all();
    }
    throw;
  }
}

bool recursive_lock::try_lock() {
  detail::tasklet_impl* me = detail::current_impl();
  detail::core_guard g(*core_);
  if (owner_ == me) {
    ++count_;
    return true;
  }
  if (owner_) return false;
  owner_ = me;
  count_ = 1;
  return true;
}

void recursive_lock::unlock() {
  detail::tasklet_impl* me = detail::current_impl();
  detail::core_guard g(*core_);
  if (owner_ != me) throw sync_error("cannot release un-acquired lock");
  if (--count_ == 0) release_all();
}

void recursive_lock::release_all() noexcept {
  if (core_->empty(0)) {
    owner_ = nullptr;
    count_ = 0;
    return;
  }
  owner_ = core_->front(0);
  count_ = 1;
  core_->grant_front(0);
}

bool recursive_lock::locked() const noexcept {
  detail::core_guard g(*core_);
  return owner_ != nullptr;
}

bool recursive_lock::owned() const noexcept {
  detail::tasklet_impl* me = detail::current_impl();
  detail::core_guard g(*core_);
  return owner_ == me;
}

std::size_t recursive_lock::depth() const noexcept {
  detail::core_guard g(*core_);
  return count_;
}

// ---- condition ------------------------------------------------------------------------------
bool condition::enqueue_and_wait(detail::sync_clock::time_point deadline, void (*unlock)(void*),
                                 void* lk) {
  // The unlock happens under mu, so a notifier (of any thread) that got the user's lock after
  // it must take mu next, and finds this waiter queued.
  detail::core_guard g(*core_);
  unlock(lk);
  if (detail::expired(deadline)) return false;
  detail::sync_waiter w;
  g.dismiss();
  try {
    return core_->wait(w, deadline);
  } catch (...) {
    if (w.granted) notify(1);  // the notification goes to the next waiter, if any
    throw;
  }
}

void condition::notify(std::size_t n) noexcept {
  detail::core_guard g(*core_);
  for (; n > 0 && !core_->empty(0); --n) core_->grant_front(0);
}

std::size_t condition::waiting() const noexcept {
  detail::core_guard g(*core_);
  return core_->size(0);
}

// ---- event ----------------------------------------------------------------------------------
void event::set() noexcept {
  detail::core_guard g(*core_);
  flag_ = true;
  while (!core_->empty(0)) core_->grant_front(0);
}

void event::clear() noexcept {
  detail::core_guard g(*core_);
  flag_ = false;
}

bool event::is_set() const noexcept {
  detail::core_guard g(*core_);
  return flag_;
}

bool event::wait(double timeout_seconds) {
  if (std::isnan(timeout_seconds)) throw sync_error("timeout value must be a number");
  return wait_until_(timeout_seconds <= 0
                         ? detail::sync_clock::time_point::min()
                         : detail::deadline_after(std::chrono::duration<double>(timeout_seconds)));
}

bool event::wait_until_(detail::sync_clock::time_point deadline) {
  detail::core_guard g(*core_);
  if (flag_) return true;
  if (detail::expired(deadline)) return false;
  detail::sync_waiter w;
  g.dismiss();
  return core_->wait(w, deadline);  // nothing to give back: set() wakes everybody
}

std::size_t event::waiting() const noexcept {
  detail::core_guard g(*core_);
  return core_->size(0);
}

// ---- barrier --------------------------------------------------------------------------------
barrier::barrier(std::size_t parties) : core_("barrier"), parties_(parties) {
  if (parties == 0) throw sync_error("barrier: parties must be at least 1");
}

std::optional<std::size_t> barrier::wait_until_(detail::sync_clock::time_point deadline) {
  detail::core_guard g(*core_);
  // The arrivals of this cycle are the waiters still queued: a withdrawn one (timeout, kill) is
  // no longer counted, atomically with its leaving the queue.
  if (core_->size(0) + 1 == parties_) {
    for (std::size_t i = 0; !core_->empty(0); ++i) {
      *static_cast<std::size_t*>(detail::sync_core::slot(core_->front(0)).data) = i;
      core_->grant_front(0);
    }
    return parties_ - 1;
  }
  if (detail::expired(deadline)) return std::nullopt;
  std::size_t index = 0;
  detail::sync_waiter w;
  w.data = &index;
  g.dismiss();
  if (!core_->wait(w, deadline)) return std::nullopt;
  return index;
}

std::size_t barrier::n_waiting() const noexcept {
  detail::core_guard g(*core_);
  return core_->size(0);
}

}  // namespace stackless
