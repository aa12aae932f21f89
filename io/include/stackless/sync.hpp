// stackless sync: locks, conditions, semaphores, events, barriers and queues for tasklets, all
// with timeouts (stacklesslib.locks and Python's queue.Queue, in C++ spelling).
//
// Every wait blocks the calling tasklet only, never the thread, and works across threads like a
// channel does. Fairness is FIFO: a release, notify, set or put hands what it frees straight to
// the longest-waiting tasklet (no barging: a tasklet that arrives later cannot take it first).
//
// Every wait has a timeout: `_for(d)`, `_until(t)` and the Python spelling
// `acquire(blocking, timeout_seconds)`. A timeout of zero (or a deadline already past) tries once
// without blocking. A waiter that times out, is killed or is thrown into leaves the primitive
// exactly as if it had never waited: it is taken out of the wait queue, and if it had already
// been handed a permit, a notification or an item before the exception reached it, that is
// passed on to the next waiter (or put back). A timeout that races with a hand-off loses: the
// wait then reports success.
//
// Timeouts use the I/O layer's timers (stackless::sleep_until), which is why this header lives
// in the io layer: a timed wait starts a small helper tasklet that sleeps until the deadline and
// then throws a private timeout signal into the waiter if it still waits (stacklesslib's
// util.timeout); the waiter turns it into `false`, an empty optional or timeout_error.
//
// The primitives meet C++'s Lockable/TimedLockable requirements where that applies, so
// std::lock_guard, std::unique_lock and std::scoped_lock work with lock and recursive_lock.
// Destroying a primitive while tasklets wait on it wakes each of them with sync_error.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>  // std::lock_guard, std::unique_lock and std::scoped_lock, for the users of lock
#include <optional>
#include <stdexcept>
#include <utility>

#include "stackless/channel.hpp"
#include "stackless/io/sleep.hpp"
#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"
#include "stackless/select.hpp"

namespace stackless {

// timeout_error: a throwing timed wait gave up (stacklesslib's WaitTimeoutError).
class timeout_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// sync_error: misuse of a primitive (releasing an unlocked lock, a recursive_lock released by a
// tasklet that does not own it, over-releasing a bounded_semaphore, too many task_done calls, a
// negative timeout, a primitive destroyed while tasklets wait on it).
class sync_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

using sync_clock = std::chrono::steady_clock;
inline constexpr sync_clock::time_point no_deadline = sync_clock::time_point::max();

// deadline_after(d): now + d, saturating (a huge d means no deadline); d <= 0 means "now".
template <class Rep, class Period>
sync_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  const auto now = stackless::now();
  if (d <= d.zero()) return now;
  // Compare in long double seconds: a duration<double> or a huge count must not overflow.
  const long double want = std::chrono::duration<long double>(d).count();
  const long double room = std::chrono::duration<long double>(no_deadline - now).count();
  if (want >= room / 2) return no_deadline;  // centuries away: wait without a timer
  return now + std::chrono::ceil<sync_clock::duration>(d);
}

// to_steady(t): a deadline on any clock as a steady_clock deadline.
template <class Clock, class Dur>
sync_clock::time_point to_steady(const std::chrono::time_point<Clock, Dur>& t) {
  if constexpr (std::is_same_v<Clock, sync_clock>) {
    if (t >= std::chrono::time_point_cast<Dur>(no_deadline)) return no_deadline;
    return std::chrono::time_point_cast<sync_clock::duration>(t);
  } else {
    return deadline_after(t - Clock::now());
  }
}

// seconds_deadline(blocking, timeout): Python's acquire(blocking, timeout) argument rules
// (CPython's): a negative timeout other than -1 is an error, and so is a timeout with
// blocking=false. -1 means no timeout.
sync_clock::time_point seconds_deadline(bool blocking, double timeout);

// sync_waiter: what a blocked tasklet leaves on its own stack (its park slot).
struct sync_waiter {
  unsigned which = 0;        // which of the core's queues it waits in
  bool granted = false;      // a waker handed it what it waits for (written under mu)
  std::exception_ptr error;  // the primitive was destroyed while it waited
  void* data = nullptr;      // per primitive: the item a queue put/get moves
};

// sync_core: the wait queues of one primitive and the lock guarding the primitive's state. It is
// heap-allocated and reference counted because a wake-up handed to another thread keeps it
// alive until that thread has taken the tasklet in (wait_owner::add_ref).
class sync_core final : public wait_owner {
 public:
  static constexpr unsigned kQueues = 3;
  static sync_core* create();
  // shutdown(): the primitive's destructor. Wakes every waiter with sync_error, then drops the
  // primitive's reference.
  void shutdown(const char* what) noexcept;

  biased_lock mu;
  bool empty(unsigned which) const noexcept { return q_[which].empty(); }
  std::size_t size(unsigned which) const noexcept { return n_[which]; }
  tasklet_impl* front(unsigned which) const noexcept { return q_[which].head; }
  static sync_waiter& slot(tasklet_impl* t) noexcept {
    return *static_cast<sync_waiter*>(wait_slot(t));
  }
  // grant_front(which): under mu. Unlinks the first waiter of queue `which`, marks it granted
  // and makes it runnable (at the end of its run queue, on its own thread). No switch.
  void grant_front(unsigned which) noexcept;
  // wait(w, deadline): called with mu held and the decision to block taken; releases mu.
  // Returns true when granted, false when the deadline passed first (then it was never granted
  // and is no longer queued). Any other exception (kill, throw, deadlock_error, block_trap_error,
  // sync_error from a destroyed primitive) propagates; the caller then checks w.granted and
  // gives back what it was handed.
  bool wait(sync_waiter& w, sync_clock::time_point deadline);

  bool cancel_wait(tasklet_impl* t) noexcept override;
  void add_ref() noexcept override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release_ref() noexcept override;

 private:
  sync_core() = default;
  ~sync_core() = default;
  wait_queue q_[kQueues];
  std::size_t n_[kQueues] = {};
  std::atomic<std::size_t> refs_{1};
};

// core_ptr: the primitive's handle on its core.
class core_ptr {
 public:
  explicit core_ptr(const char* what) : c_(sync_core::create()), what_(what) {}
  core_ptr(const core_ptr&) = delete;
  core_ptr& operator=(const core_ptr&) = delete;
  ~core_ptr() { c_->shutdown(what_); }
  sync_core* operator->() const noexcept { return c_; }
  sync_core& operator*() const noexcept { return *c_; }

 private:
  sync_core* c_;
  const char* what_;
};

// guard: mu held for a scope.
struct core_guard {
  explicit core_guard(sync_core& c) noexcept : c_(c) { c_.mu.lock(); }
  core_guard(const core_guard&) = delete;
  core_guard& operator=(const core_guard&) = delete;
  ~core_guard() {
    if (held_) c_.mu.unlock();
  }
  void release() noexcept {
    c_.mu.unlock();
    held_ = false;
  }
  // dismiss(): wait() releases mu itself.
  void dismiss() noexcept { held_ = false; }
  sync_core& c_;
  bool held_ = true;
};

// counting_sem: the engine of semaphore, bounded_semaphore and lock. FIFO hand-off.
class counting_sem {
 public:
  counting_sem(std::size_t initial, std::size_t max, const char* what)
      : value_(initial), max_(max), core_(what) {}
  bool acquire_until(sync_clock::time_point deadline);
  bool try_acquire() noexcept;
  // release(n, too_many): adds n permits (handing them to waiters first); throws
  // sync_error(too_many) before changing anything when the count would pass max.
  void release(std::size_t n, const char* too_many);
  std::size_t value() const noexcept;
  std::size_t waiting() const noexcept;

 private:
  void give_back() noexcept;
  std::size_t value_;
  const std::size_t max_;
  mutable core_ptr core_;
};

}  // namespace detail

// ---- semaphore ------------------------------------------------------------------------------
// semaphore(n): n permits. acquire() takes one (blocking while none is free), release(k) returns
// k. FIFO: a released permit goes to the longest waiter. release() of more than the count can
// hold (SIZE_MAX) throws sync_error.
class semaphore {
 public:
  explicit semaphore(std::size_t initial = 1)
      : s_(initial, std::numeric_limits<std::size_t>::max(), "semaphore") {}
  void acquire() { s_.acquire_until(detail::no_deadline); }
  [[nodiscard("without the result you do not know whether you hold it")]] bool
  try_acquire() noexcept {
    return s_.try_acquire();
  }
  template <class Rep, class Period>
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_acquire_for(
      std::chrono::duration<Rep, Period> d) {
    return s_.acquire_until(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_acquire_until(
      const std::chrono::time_point<Clock, Dur>& t) {
    return s_.acquire_until(detail::to_steady(t));
  }
  // Python: acquire(blocking=True, timeout=-1) (seconds; -1 waits for ever).
  bool acquire(bool blocking, double timeout = -1) {
    return s_.acquire_until(detail::seconds_deadline(blocking, timeout));
  }
  void release(std::size_t n = 1) { s_.release(n, "semaphore released too many times"); }
  std::size_t value() const noexcept { return s_.value(); }
  std::size_t waiting() const noexcept { return s_.waiting(); }  // tasklets blocked in acquire

 protected:
  semaphore(std::size_t initial, std::size_t max, const char* what) : s_(initial, max, what) {}
  detail::counting_sem s_;
};

// bounded_semaphore(n): a semaphore whose count may never exceed n: an over-release throws
// sync_error("semaphore released too many times") and changes nothing.
class bounded_semaphore : public semaphore {
 public:
  explicit bounded_semaphore(std::size_t initial = 1)
      : semaphore(initial, initial, "bounded_semaphore") {}
};

// ---- lock -----------------------------------------------------------------------------------
// lock (= mutex; a class cannot be called `lock` and have a lock() member): a non-recursive lock
// (Python's Lock, stacklesslib.locks.Lock). Lockable and TimedLockable. As in Python any tasklet
// may unlock it; unlocking it while unlocked throws sync_error("release unlocked lock"). Locking it
// twice from one tasklet blocks that tasklet (and raises deadlock_error if nothing else can run).
class mutex {
 public:
  mutex() : s_(1, 1, "lock") {}
  void lock() { s_.acquire_until(detail::no_deadline); }
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_lock() noexcept {
    return s_.try_acquire();
  }
  template <class Rep, class Period>
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_lock_for(
      std::chrono::duration<Rep, Period> d) {
    return s_.acquire_until(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_lock_until(
      const std::chrono::time_point<Clock, Dur>& t) {
    return s_.acquire_until(detail::to_steady(t));
  }
  void unlock() { s_.release(1, "release unlocked lock"); }
  // Python spellings.
  bool acquire(bool blocking = true, double timeout = -1) {
    return s_.acquire_until(detail::seconds_deadline(blocking, timeout));
  }
  void release() { unlock(); }
  bool locked() const noexcept { return s_.value() == 0; }
  std::size_t waiting() const noexcept { return s_.waiting(); }

 private:
  detail::counting_sem s_;
};
using lock = mutex;

// ---- recursive_lock -------------------------------------------------------------------------
// recursive_lock: may be locked again by the tasklet that holds it (Python's RLock); must be
// unlocked as many times. Only the owner may unlock it: anyone else gets
// sync_error("cannot release un-acquired lock"). Ownership passes FIFO to the longest waiter.
class recursive_lock {
 public:
  recursive_lock() : core_("recursive_lock") {}
  void lock() { acquire_until(detail::no_deadline); }
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_lock();
  template <class Rep, class Period>
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_lock_for(
      std::chrono::duration<Rep, Period> d) {
    return acquire_until(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  [[nodiscard("without the result you do not know whether you hold it")]] bool try_lock_until(
      const std::chrono::time_point<Clock, Dur>& t) {
    return acquire_until(detail::to_steady(t));
  }
  void unlock();
  bool acquire(bool blocking = true, double timeout = -1) {
    return acquire_until(detail::seconds_deadline(blocking, timeout));
  }
  void release() { unlock(); }
  bool locked() const noexcept;
  bool owned() const noexcept;  // held by the calling tasklet (Python's _is_owned)
  std::size_t depth() const noexcept;

 private:
  bool acquire_until(detail::sync_clock::time_point deadline);
  void release_all() noexcept;  // under mu: ownership passes to the first waiter, or ends
  mutable detail::core_ptr core_;
  detail::tasklet_impl* owner_ = nullptr;
  std::size_t count_ = 0;
};

// ---- condition ------------------------------------------------------------------------------
// condition: a condition variable for any lockable (std::condition_variable_any's contract):
// wait(lk) unlocks lk and blocks atomically (a notify from any thread after the unlock reaches
// this waiter), and relocks lk before returning, also when the wait ends by timeout, kill or
// throw (if relocking is itself interrupted it keeps trying, then raises the first exception).
// notify_one/notify_all wake in FIFO wait order; a notification with nobody waiting is lost.
// A notified waiter that is killed before it runs passes its notification to the next waiter.
class condition {
 public:
  condition() : core_("condition") {}
  template <class Lockable>
  void wait(Lockable& lk) {
    wait_impl(lk, detail::no_deadline);
  }
  template <class Lockable, class Pred>
  void wait(Lockable& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  // wait_for/wait_until return false on timeout (std::cv_status::timeout).
  template <class Lockable, class Rep, class Period>
  bool wait_for(Lockable& lk, std::chrono::duration<Rep, Period> d) {
    return wait_impl(lk, detail::deadline_after(d));
  }
  template <class Lockable, class Clock, class Dur>
  bool wait_until(Lockable& lk, const std::chrono::time_point<Clock, Dur>& t) {
    return wait_impl(lk, detail::to_steady(t));
  }
  // With a predicate: returns the predicate's last value (Python's wait_for).
  template <class Lockable, class Rep, class Period, class Pred>
  bool wait_for(Lockable& lk, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_until_pred(lk, detail::deadline_after(d), std::move(pred));
  }
  template <class Lockable, class Clock, class Dur, class Pred>
  bool wait_until(Lockable& lk, const std::chrono::time_point<Clock, Dur>& t, Pred pred) {
    return wait_until_pred(lk, detail::to_steady(t), std::move(pred));
  }
  void notify_one() noexcept { notify(1); }
  void notify_all() noexcept { notify(std::numeric_limits<std::size_t>::max()); }
  void notify(std::size_t n) noexcept;
  std::size_t waiting() const noexcept;

 private:
  template <class Lockable, class Pred>
  bool wait_until_pred(Lockable& lk, detail::sync_clock::time_point deadline, Pred pred) {
    bool r = pred();
    while (!r) {
      if (stackless::now() >= deadline) break;
      wait_impl(lk, deadline);
      r = pred();
    }
    return r;
  }
  template <class Lockable>
  bool wait_impl(Lockable& lk, detail::sync_clock::time_point deadline) {
    bool notified = false;
    std::exception_ptr err;
    try {
      notified = enqueue_and_wait(
          deadline, [](void* p) { static_cast<Lockable*>(p)->unlock(); }, &lk);
    } catch (...) {
      err = std::current_exception();
    }
    // Relock, whatever ended the wait. A second interruption here must not leave the caller
    // believing it holds the lock: keep trying, report the first exception.
    for (;;) {
      try {
        lk.lock();
        break;
      } catch (...) {
        if (!err) err = std::current_exception();
      }
    }
    if (err) std::rethrow_exception(err);
    return notified;
  }
  bool enqueue_and_wait(detail::sync_clock::time_point deadline, void (*unlock)(void*), void* lk);
  mutable detail::core_ptr core_;
};

// ---- event ----------------------------------------------------------------------------------
// event: a flag. wait() returns at once while it is set, else blocks until set() (which wakes
// every waiter, FIFO). The timed waits return the flag: false on timeout. A waiter woken by
// set() returns true even if clear() ran before it was scheduled (CPython 3's rule).
class event {
 public:
  event() : core_("event") {}
  void set() noexcept;
  void clear() noexcept;
  bool is_set() const noexcept;
  void wait() { wait_until_(detail::no_deadline); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until_(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  bool wait_until(const std::chrono::time_point<Clock, Dur>& t) {
    return wait_until_(detail::to_steady(t));
  }
  // Python: wait(timeout) in seconds (negative: CPython treats it as 0).
  bool wait(double timeout_seconds);
  std::size_t waiting() const noexcept;

 private:
  bool wait_until_(detail::sync_clock::time_point deadline);
  mutable detail::core_ptr core_;
  bool flag_ = false;
};

// ---- barrier --------------------------------------------------------------------------------
// barrier(parties): wait() blocks until `parties` tasklets have called it, then releases them all
// and starts the next cycle. It returns the arrival index (0 for the first, parties-1 for the one
// that completed the cycle). A timed-out, killed or thrown-into waiter withdraws its arrival
// (the barrier is left as if it had never arrived: unlike Python's Barrier it is not broken).
class barrier {
 public:
  explicit barrier(std::size_t parties);
  std::size_t wait() { return *wait_until_(detail::no_deadline); }
  template <class Rep, class Period>
  std::optional<std::size_t> wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until_(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  std::optional<std::size_t> wait_until(const std::chrono::time_point<Clock, Dur>& t) {
    return wait_until_(detail::to_steady(t));
  }
  std::size_t parties() const noexcept { return parties_; }
  std::size_t n_waiting() const noexcept;

 private:
  std::optional<std::size_t> wait_until_(detail::sync_clock::time_point deadline);
  mutable detail::core_ptr core_;
  const std::size_t parties_;
};

// ---- queue<T> -------------------------------------------------------------------------------
// queue<T>(maxsize): Python's queue.Queue. maxsize 0 means unbounded. put() blocks while the
// queue is full, get() while it is empty; both hand over FIFO (an item put while getters wait
// goes straight to the longest-waiting getter; a get from a full queue admits the longest-waiting
// putter's item). The _nowait forms and the timed forms return false / an empty optional instead
// of blocking; put_or_throw/get_or_throw raise timeout_error (Python's Full / Empty).
// task_done()/join() count unfinished items as Python does; an extra task_done() throws
// sync_error("task_done() called too many times").
// A getter killed after it was handed an item puts it back at the head (or hands it to the next
// getter). A putter killed after its item was taken has still put it (the put completed).
template <class T>
class queue {
  static constexpr unsigned kGetters = 0, kPutters = 1, kJoiners = 2;

 public:
  explicit queue(std::size_t maxsize = 0) : maxsize_(maxsize), core_("queue") {}

  void put(T v) { put_until(std::move(v), detail::no_deadline); }
  bool put_nowait(T v) { return put_until(std::move(v), detail::sync_clock::time_point::min()); }
  template <class Rep, class Period>
  bool put_for(T v, std::chrono::duration<Rep, Period> d) {
    return put_until(std::move(v), detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  bool put_until(T v, const std::chrono::time_point<Clock, Dur>& t) {
    return put_impl(v, detail::to_steady(t));
  }
  template <class Rep, class Period>
  void put_or_throw(T v, std::chrono::duration<Rep, Period> d) {
    if (!put_for(std::move(v), d)) throw timeout_error("queue::put: the queue stayed full");
  }

  T get() { return std::move(*get_impl(detail::no_deadline)); }
  std::optional<T> get_nowait() { return get_impl(detail::sync_clock::time_point::min()); }
  template <class Rep, class Period>
  std::optional<T> get_for(std::chrono::duration<Rep, Period> d) {
    return get_impl(detail::deadline_after(d));
  }
  template <class Clock, class Dur>
  std::optional<T> get_until(const std::chrono::time_point<Clock, Dur>& t) {
    return get_impl(detail::to_steady(t));
  }
  template <class Rep, class Period>
  T get_or_throw(std::chrono::duration<Rep, Period> d) {
    auto v = get_for(d);
    if (!v) throw timeout_error("queue::get: the queue stayed empty");
    return std::move(*v);
  }

  void task_done() {
    detail::core_guard g(*core_);
    if (unfinished_ == 0) throw sync_error("task_done() called too many times");
    if (--unfinished_ == 0)
      while (!core_->empty(kJoiners)) core_->grant_front(kJoiners);
  }
  void join() { join_until(detail::no_deadline); }
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> d) {
    return join_until(detail::deadline_after(d));
  }

  std::size_t size() const noexcept {
    detail::core_guard g(*core_);
    return items_.size();
  }
  bool empty() const noexcept { return size() == 0; }
  bool full() const noexcept {
    detail::core_guard g(*core_);
    return maxsize_ > 0 && items_.size() >= maxsize_;
  }
  std::size_t maxsize() const noexcept { return maxsize_; }
  std::size_t unfinished_tasks() const noexcept {
    detail::core_guard g(*core_);
    return unfinished_;
  }

 private:
  bool join_until(detail::sync_clock::time_point deadline) {
    detail::core_guard g(*core_);
    if (unfinished_ == 0) return true;
    if (deadline <= stackless::now()) return false;
    detail::sync_waiter w;
    w.which = kJoiners;
    g.dismiss();
    return core_->wait(w, deadline);  // nothing to give back
  }

  bool put_impl(T& v, detail::sync_clock::time_point deadline) {
    detail::core_guard g(*core_);
    if (!core_->empty(kGetters)) {  // a getter waits: the queue is empty; hand v to it
      auto& w = detail::sync_core::slot(core_->front(kGetters));
      static_cast<std::optional<T>*>(w.data)->emplace(std::move(v));
      ++unfinished_;
      core_->grant_front(kGetters);
      return true;
    }
    if (maxsize_ == 0 || items_.size() < maxsize_) {
      items_.push_back(std::move(v));
      ++unfinished_;
      return true;
    }
    if (deadline <= stackless::now()) return false;
    detail::sync_waiter w;
    w.which = kPutters;
    w.data = &v;
    g.dismiss();
    // A putter granted and then interrupted has put its item: nothing to give back.
    return core_->wait(w, deadline);
  }

  std::optional<T> get_impl(detail::sync_clock::time_point deadline) {
    std::optional<T> out;
    detail::core_guard g(*core_);
    if (!items_.empty()) {
      out.emplace(std::move(items_.front()));
      items_.pop_front();
      admit_putter();
      return out;
    }
    if (deadline <= stackless::now()) return out;
    detail::sync_waiter w;
    w.which = kGetters;
    w.data = &out;
    g.dismiss();
    try {
      if (!core_->wait(w, deadline)) out.reset();
    } catch (...) {
      if (w.granted && out) give_back(std::move(*out));
      throw;
    }
    return out;
  }

  // Under mu: a slot freed up; the longest-waiting putter's item enters the queue.
  void admit_putter() noexcept {
    if (core_->empty(kPutters)) return;
    auto& w = detail::sync_core::slot(core_->front(kPutters));
    items_.push_back(std::move(*static_cast<T*>(w.data)));
    ++unfinished_;
    core_->grant_front(kPutters);
  }

  // A getter handed an item was interrupted before it could use it: the item is still the
  // oldest one, so it goes to the next getter or back to the head of the queue.
  void give_back(T v) noexcept {
    detail::core_guard g(*core_);
    if (!core_->empty(kGetters)) {
      auto& w = detail::sync_core::slot(core_->front(kGetters));
      static_cast<std::optional<T>*>(w.data)->emplace(std::move(v));
      core_->grant_front(kGetters);
      return;
    }
    items_.push_front(std::move(v));
  }

  const std::size_t maxsize_;
  mutable detail::core_ptr core_;
  std::deque<T> items_;
  std::size_t unfinished_ = 0;
};

// ---- timed channel operations ---------------------------------------------------------------
// receive_for(ch, d) / receive_until(ch, t): ch.receive(), but give up at the deadline and
// return an empty optional; the channel's balance is then exactly as before the call.
// send_for(ch, v, d) / send_until(ch, v, t): ch.send(v), or false when no receiver took v in time
// (v was not delivered). receive_or_throw / send_or_throw raise timeout_error instead
// (stacklesslib's util.channel_wait and WaitTimeoutError). A zero timeout (or a past deadline)
// completes only with a partner that is already waiting. Preference, close and send_exception
// behave as for the untimed operations. (Free functions, not members: timers live in the io
// layer, which the channel layer does not see.)
namespace detail {
// with_timeout(deadline, op, ctx): runs op(ctx), a blocking channel operation, with a timer that
// throws the timeout signal into this tasklet if it is still blocked at the deadline. Returns
// false when the signal ended op; op's own exceptions propagate.
bool with_timeout(sync_clock::time_point deadline, void (*op)(void*), void* ctx);
// is_timeout_signal(e): e is the timeout signal (the operation absorbs it when already done).
bool is_timeout_signal(std::exception_ptr e) noexcept;
}  // namespace detail

template <class T>
std::optional<T> receive_until(channel<T>& ch, detail::sync_clock::time_point deadline) {
  std::optional<T> out;
  if (deadline != detail::no_deadline && deadline <= stackless::now() && ch.balance() <= 0)
    return out;  // nothing waits to be received: don't start a timer
  struct ctx_t {
    channel<T>* ch;
    std::optional<T>* out;
  } ctx{&ch, &out};
  detail::with_timeout(
      deadline,
      [](void* p) {
        auto* c = static_cast<ctx_t*>(p);
        c->ch->receive_into(*c->out, &detail::is_timeout_signal);
      },
      &ctx);
  return out;
}
template <class T, class Clock, class Dur>
std::optional<T> receive_until(channel<T>& ch, const std::chrono::time_point<Clock, Dur>& t) {
  return receive_until(ch, detail::to_steady(t));
}
template <class T, class Rep, class Period>
std::optional<T> receive_for(channel<T>& ch, std::chrono::duration<Rep, Period> d) {
  return receive_until(ch, detail::deadline_after(d));
}
template <class T, class Rep, class Period>
T receive_or_throw(channel<T>& ch, std::chrono::duration<Rep, Period> d) {
  auto v = receive_for(ch, d);
  if (!v) throw timeout_error("channel receive timed out");
  return std::move(*v);
}

template <class T>
bool send_until(channel<T>& ch, T v, detail::sync_clock::time_point deadline) {
  if (deadline != detail::no_deadline && deadline <= stackless::now() && ch.balance() >= 0)
    return false;  // no receiver waits
  struct ctx_t {
    channel<T>* ch;
    T* v;
  } ctx{&ch, &v};
  return detail::with_timeout(
      deadline,
      [](void* p) {
        auto* c = static_cast<ctx_t*>(p);
        c->ch->send_into(*c->v, &detail::is_timeout_signal);
      },
      &ctx);
}
template <class T, class Clock, class Dur>
bool send_until(channel<T>& ch, T v, const std::chrono::time_point<Clock, Dur>& t) {
  return send_until(ch, std::move(v), detail::to_steady(t));
}
template <class T, class Rep, class Period>
bool send_for(channel<T>& ch, T v, std::chrono::duration<Rep, Period> d) {
  return send_until(ch, std::move(v), detail::deadline_after(d));
}
template <class T, class Rep, class Period>
void send_or_throw(channel<T>& ch, T v, std::chrono::duration<Rep, Period> d) {
  if (!send_for(ch, std::move(v), d)) throw timeout_error("channel send timed out");
}

// ---- select's timeout case ------------------------------------------------------------------
// on_timeout(d, f) / on_deadline(t, f): the case stackless::select (<stackless/select.hpp>) takes
// when no channel case completed by the deadline; f() then runs. A zero or negative timeout (a
// past deadline) makes the select try its cases once, like on_default; a huge one waits without a
// timer. A partner that completes a case just as the timer fires wins (the case is taken).
template <class F>
class timeout_case {
 public:
  static constexpr detail::select_kind kind = detail::select_kind::timeout;
  timeout_case(detail::sync_clock::time_point deadline, F f)
      : deadline_(deadline), f_(std::move(f)) {}
  bool expired() const { return deadline_ != detail::no_deadline && deadline_ <= stackless::now(); }
  bool wait(void (*op)(void*), void* ctx) { return detail::with_timeout(deadline_, op, ctx); }
  static bool absorb(std::exception_ptr e) noexcept { return detail::is_timeout_signal(e); }
  void complete() {
    if constexpr (!std::is_same_v<F, detail::no_handler>) std::invoke(f_);
  }

 private:
  detail::sync_clock::time_point deadline_;
  F f_;
};

template <class Rep, class Period, class F>
timeout_case<std::decay_t<F>> on_timeout(std::chrono::duration<Rep, Period> d, F&& f) {
  return {detail::deadline_after(d), std::forward<F>(f)};
}
template <class Rep, class Period>
timeout_case<detail::no_handler> on_timeout(std::chrono::duration<Rep, Period> d) {
  return {detail::deadline_after(d), {}};
}
template <class Clock, class Dur, class F>
timeout_case<std::decay_t<F>> on_deadline(const std::chrono::time_point<Clock, Dur>& t, F&& f) {
  return {detail::to_steady(t), std::forward<F>(f)};
}
template <class Clock, class Dur>
timeout_case<detail::no_handler> on_deadline(const std::chrono::time_point<Clock, Dur>& t) {
  return {detail::to_steady(t), {}};
}

}  // namespace stackless
