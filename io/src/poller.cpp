// The per-thread poller: the poll tasklet, the timer queue and the bookkeeping of ops in flight.
//
// Protocol (issue 4): a tasklet that reads, writes, fsyncs or sleeps fills a record on its own
// stack (an op or a timer, each with its own channel), makes sure the poll tasklet exists and is
// scheduled, and blocks in receive() on the record's channel. The poll tasklet loops:
//   1. fire due timers and deliver completed ops: set the record's state, then send the result
//      on its channel if its tasklet is waiting there (balance < 0). The channels have
//      preference 1, so a send never switches: a whole batch is delivered before the woken
//      tasklets run, and the poll tasklet never touches a record after handing it over;
//   2. exit when no op and no timer is pending (so run() returns and the deadlock rules see only
//      the user's tasklets);
//   3. other tasklets runnable: one non-blocking backend pass (submit everything queued since
//      the last pass and reap, one kernel entry), then schedule();
//      nothing else runnable: one blocking backend pass that waits until a completion or the
//      earliest timer deadline (no busy polling).
//
// Invariants:
//   every op is on exactly one of inflight_ (state queued: owned by the backend) or done_ (state
//   completed); a delivered op is on neither and is never referenced again.
//   undelivered_ == |inflight_| + |done_|.
//   the poll tasklet is alive whenever undelivered_ > 0 or timers_ is non-empty, except between
//   an issuer starting an op and calling ensure_poll() (no switch happens in between).
#include <pthread.h>
#include <unistd.h>

#include <atomic>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <boost/intrusive/set.hpp>

#include "poller.hpp"
#include "stackless/channel.hpp"
#include "stackless/io/io.hpp"
#include "stackless/io/sleep.hpp"
#include "stackless/runtime/detail/assert.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless::io {
namespace detail {
namespace {

using clock = std::chrono::steady_clock;

// ---- records ---------------------------------------------------------------------------------
struct timer;
struct request : op {
  signal_channel sig;
  timer* deadline = nullptr;  // submit() with a deadline: its timer, until the op completes
};

// A timer is linked into the poller's timer queue (an intrusive multiset ordered by deadline:
// a sleep allocates nothing) from its start until it fires or its owner takes it out. Safe-link
// mode where STACKLESS_ASSERT is on: a timer destroyed while still queued asserts.
#ifdef STACKLESS_ENABLE_ASSERTS
using timer_hook =
    boost::intrusive::set_base_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>;
#else
using timer_hook =
    boost::intrusive::set_base_hook<boost::intrusive::link_mode<boost::intrusive::normal_link>>;
#endif
struct timer : timer_hook {
  clock::time_point deadline;
  request* target = nullptr;  // a deadline of this op (submit with a deadline): cancel it
  bool fired = false;
  long result = 0;
  signal_channel sig;
  friend bool operator<(const timer& a, const timer& b) noexcept { return a.deadline < b.deadline; }
};
// Equal deadlines stay in the order they were queued (insert() goes after its equals).
using timer_queue = boost::intrusive::multiset<timer>;

// The poller's lists of ops by state (inflight_, done_), threaded through op::state_hook.
using op_list =
    boost::intrusive::list<op, boost::intrusive::member_hook<op, op_hook, &op::state_hook>>;

class poller;
thread_local poller* tls_poller = nullptr;

// fork(): the child must not use the parent's poller (its ring is shared with the parent, its
// pool's threads do not exist in the child). A fork handler bumps the generation; a poller of an
// older generation is abandoned (leaked on purpose: it cannot be torn down safely) and the
// child's thread gets a new one on first use.
std::atomic<unsigned> g_fork_generation{0};
#ifndef _WIN32
void on_fork_child() noexcept {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
}
#endif
thread_local fault_hook tls_fault_hook;  // this thread's poller (see reaper below)

class poller {
 public:
  explicit poller(std::unique_ptr<backend> be)
      : be_(std::move(be)), generation_(g_fork_generation.load(std::memory_order_relaxed)) {}
  // stale(): made before a fork(), in the parent (see g_fork_generation).
  bool stale() const noexcept {
    return generation_ != g_fork_generation.load(std::memory_order_relaxed);
  }
  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;

  std::size_t pending() const noexcept { return undelivered_ + timers_.size(); }
  const poll_stats& stats() const noexcept { return stats_; }
  // idle(): nothing pending and no poll tasklet that could still run (one killed before it ever
  // ran, at thread exit, leaves its handle behind).
  bool idle() const noexcept { return pending() == 0 && (!poll_ || !poll_.alive()); }
  // orphan(): the thread is exiting while work is pending; the poll tasklet frees the poller
  // when the scheduler's teardown has finished that work.
  void orphan() noexcept { orphaned_ = true; }
  bool orphaned() const noexcept { return orphaned_; }

  outcome run(request& r, op_group* g, submit_flags flags,
              clock::time_point deadline = clock::time_point::max()) {
    const bool cancellable = flags == submit_flags::cancellable;
    // Refuse before starting anything: an op we could not wait for would outlive its buffer.
    // An uncancellable op (a file's last data) is started anyway and waited for with the
    // thread blocked if the tasklet may not block.
    bool blocking = false;
    // Every I/O call is a check point of run(budget) (docs/semantics.md), before it starts.
    if (cancellable) stackless::detail::check_point();
    if (cancellable)
      refuse_if_trapped();
    else
      blocking = trapped();
    // A poller made during its thread's teardown starts no poll tasklet: the exiting thread
    // waits for the operation itself.
    if (orphaned_ && !poll_) blocking = true;
    std::optional<long> injected;
    if (tls_fault_hook) [[unlikely]]
      injected = tls_fault_hook(r);
    // A socket call its caller expects to complete now (a send; a receive after one that
    // filled its buffer: net_impl.hpp) is tried once without blocking and, when it completes,
    // returns without the poll tasklet and without a switch (Go tries every call first; here a
    // receive that finds nothing would cost a system call the ring does not need). After
    // kAtOnceStreak such calls in a row, one goes the long way, so a tasklet whose peer always
    // has data ready still lets the others run.
    if (!injected && cancellable && r.at_once && at_once_streak_ < kAtOnceStreak &&
        try_at_once(r)) {
      ++at_once_streak_;
      ++stats_.at_once;
      outcome out;
      out.result = r.result;
      return out;
    }
    at_once_streak_ = 0;  // this one goes through the backend
    // The poll tasklet first: making it can fail (its stack), and nothing may be started or
    // linked on this frame before that can raise.
    if (!injected && !blocking) ensure_poll();
    if (!injected) be_->start(r);
    ++stats_.operations;
    inflight_.push_back(r);
    ++undelivered_;
    if (g) group_link(*g, r);
    check_invariants();
    timer deadline_timer;  // fires fire_timers()'s cancellation of r; removed below if unfired
    const bool timed = deadline != clock::time_point::max() && !injected;
    if (timed) {
      deadline_timer.deadline = deadline;
      deadline_timer.target = &r;
      timers_.insert(deadline_timer);
      r.deadline = &deadline_timer;
    }
    if (injected) {
      r.result = *injected;
      complete(&r);  // as if the backend had reported it
    }
    outcome out;
    // No check point between the take() test and the wait: see signal_channel.
    while (!take(r)) {
      if (blocking) {
        wait_blocking(r);
        continue;
      }
      try {
        r.sig.wait_step();
      } catch (...) {
        // Killed or thrown into: cancel (unless uncancellable), then keep waiting until the
        // backend is done with the buffer. A second exception here (another kill, or a refusal
        // to block) makes us wait with the thread blocked: nothing may unwind this frame first.
        if (out.interrupted)
          blocking = true;
        else
          out.interrupted = std::current_exception();
        if (cancellable && r.st == op::state::queued && !r.cancel_requested) {
          r.cancel_requested = true;
          be_->cancel(r);
          try {
            ensure_poll();  // a killed poll tasklet is made anew
          } catch (...) {
            blocking = true;  // none can be made: we drive the backend ourselves
          }
        }
      }
    }
    if (timed && !deadline_timer.fired) timers_.erase(timers_.iterator_to(deadline_timer));
    out.result = r.result;
    out.addrlen = r.addrlen;
    out.timed_out = r.timed_out && (r.result == kCancelled || r.result == -EINTR);
    return out;
  }

  void cancel_group(op_group& g) noexcept {
    bool any = false;
    for (op& o : g.ops) {
      if (o.st == op::state::queued && !o.cancel_requested) {
        o.cancel_requested = true;
        be_->cancel(o);
        any = true;
      }
    }
    if (any) {
      try {
        ensure_poll();
      } catch (...) {
        // No poll tasklet could be made (out of memory): wait_group_empty() drives the backend.
      }
    }
  }

  std::exception_ptr wait_group_empty(op_group& g) noexcept {
    std::exception_ptr err;
    bool blocking = trapped();
    while (g.count) {
      if (blocking) {
        backend_pass(std::nullopt);  // complete() unlinks the group's ops
        continue;
      }
      group_waiter w;
      g.waiter = &w;
      try {
        ensure_poll();
        while (!w.done) w.sig.wait_step();
      } catch (...) {
        if (err)
          blocking = true;
        else
          err = std::current_exception();
      }
      if (g.waiter == &w) g.waiter = nullptr;
      std::erase(ready_waiters_, &w);
    }
    return err;
  }

  void sleep_until(clock::time_point deadline) {
    stackless::detail::check_point();  // sleep is a check point of run(budget), like I/O calls
    refuse_if_trapped();
    ensure_poll();  // may raise: before the timer is linked on this frame
    timer t;
    t.deadline = deadline;
    timers_.insert(t);  // equal deadlines stay in call order
    while (!t.fired) {
      try {
        t.sig.wait_step();  // the poller sets fired before it delivers
      } catch (...) {
        if (!t.fired) timers_.erase(timers_.iterator_to(t));
        throw;
      }
    }
    if (t.result < 0) {
      throw std::system_error(static_cast<int>(-t.result), std::generic_category(),
                              "stackless::sleep: the I/O poll tasklet was killed");
    }
  }

 private:
  static bool trapped() noexcept {
    return getcurrent().block_trap() || stackless::detail::switch_trapped();
  }
  // refuse_if_trapped(): the block and switch traps refuse before anything is started (the
  // receive would refuse later, with an op already in the kernel).
  static void refuse_if_trapped() {
    if (getcurrent().block_trap())
      throw block_trap_error("this tasklet does not like to be blocked.");
    stackless::detail::throw_if_switch_trapped();
  }

  // take(r): true when r's result is the issuer's (delivered, or completed and taken off done_).
  bool take(request& r) noexcept {
    if (r.st == op::state::completed) {
      done_.erase(done_.iterator_to(r));
      r.st = op::state::delivered;
      --undelivered_;
    }
    return r.st == op::state::delivered;
  }

  void ensure_poll() {
    if (!poll_) {
      tasklet t([this] { loop(); });
      t.set_name("stackless.io.poll");
      t.setup();  // may raise (no stack): then there is still no poll tasklet, and none half-made
      poll_ = std::move(t);
    } else if (poll_.paused()) {
      poll_.insert();  // taken out by a hard-interrupting run(budget)
    }
  }

  static void group_link(op_group& g, op& o) noexcept {
    o.group = &g;
    g.ops.push_front(o);
    ++g.count;
  }

  // group_unlink(o): o's backend work is over (its descriptor and buffer are free again).
  void group_unlink(op& o) noexcept {
    op_group& g = *o.group;
    g.ops.erase(g.ops.iterator_to(o));
    o.group = nullptr;
    if (--g.count == 0 && g.waiter) {
      ready_waiters_.push_back(g.waiter);
      g.waiter = nullptr;
    }
  }

  void complete(op* o) noexcept {
    // A completed op's deadline is moot: drop its timer now, so that the poll tasklet does not
    // stay alive for it once everything is delivered.
    if (timer* t = static_cast<request*>(o)->deadline) {
      if (!t->fired) timers_.erase(timers_.iterator_to(*t));
      t->fired = true;
      static_cast<request*>(o)->deadline = nullptr;
    }
    inflight_.erase(inflight_.iterator_to(*o));
    o->st = op::state::completed;
    done_.push_back(*o);
    if (o->group) group_unlink(*o);
  }

  void backend_pass(std::optional<std::chrono::nanoseconds> timeout) {
    scratch_.clear();
    ++stats_.backend_passes;
    be_->poll(scratch_, timeout);
    for (op* o : scratch_) complete(o);
    check_invariants();
  }

  // wait_blocking(r): block the thread until the backend completes r (the fallback wait).
  void wait_blocking(request& r) {
    while (r.st == op::state::queued) backend_pass(std::nullopt);
  }

  void fire_timers(long result, bool all) {
    const auto now = stackless::now();  // virtual time when active
    while (!timers_.empty() && (all || timers_.begin()->deadline <= now)) {
      timer* t = &*timers_.begin();
      timers_.erase(timers_.begin());
      t->fired = true;
      if (request* o = t->target) {
        o->deadline = nullptr;
        // An operation's deadline: cancel it (its completion still comes from the backend).
        if (o->st == op::state::queued && !o->cancel_requested) {
          o->cancel_requested = true;
          o->timed_out = true;
          be_->cancel(*o);
        }
        continue;
      }
      t->result = result;
      t->sig.deliver(result);
    }
  }

  void deliver() {
    while (!done_.empty()) {
      auto* r = static_cast<request*>(&done_.front());
      done_.pop_front();
      r->st = op::state::delivered;
      --undelivered_;
      // Last touch of r: with preference 1 the send does not switch to the receiver.
      r->sig.deliver(r->result);
    }
    check_invariants();
    while (!ready_waiters_.empty()) {
      group_waiter* w = ready_waiters_.back();
      ready_waiters_.pop_back();
      w->done = true;
      w->sig.deliver(0);
    }
  }

  void pass() {
    {
      atomic_section atomic;  // a batch is delivered whole, even under run(budget)
      fire_timers(0, false);
      deliver();
    }
    if (undelivered_ == 0 && timers_.empty()) return;
    bool others = getruncount() > 1;
    const bool may_wait = !others;
    if (may_wait) {
      // About to wait in the kernel: another thread that makes a tasklet here runnable (a
      // channel partner, a kill) must end that wait. The waker is installed before the check
      // for work already handed over, so a hand-over is either seen here or wakes the backend.
      stackless::detail::set_idle_waker(&poller::wake_backend, this);
      others = stackless::detail::remote_work_pending();
    }
    if (others) {
      if (undelivered_) backend_pass(std::chrono::nanoseconds(0));
    } else if (timers_.empty()) {
      backend_pass(std::nullopt);
    } else if (virtual_time_active()) {
      virtual_idle();
    } else {
      // Saturated: a deadline years away (time_point::max()) waits a day at a time; a wait that
      // long must not overflow the backend's own clock arithmetic (condition_variable::wait_for).
      constexpr auto kLongestWait = std::chrono::nanoseconds(std::chrono::hours(24));
      const auto wait = timers_.begin()->deadline - clock::now();
      const auto ns = wait <= clock::duration::zero()
                          ? std::chrono::nanoseconds(0)
                          : std::min<std::chrono::nanoseconds>(kLongestWait, wait);
      backend_pass(ns);
    }
    if (may_wait) stackless::detail::clear_idle_waker(this);
    others = others || getruncount() > 1 || stackless::detail::remote_work_pending();
    {
      atomic_section atomic;
      fire_timers(0, false);
      deliver();
    }
    if (others) schedule();
  }

  // ---- virtual time (issue 16) ----
  // Every tasklet is blocked and timers are pending: I/O in flight is activity (wait for it);
  // otherwise the clock jumps to the earliest deadline, which fire_timers() then fires.
  void virtual_idle() {
    if (undelivered_)
      backend_pass(std::nullopt);
    else
      virtual_advance_to(timers_.begin()->deadline);
  }

  static void wake_backend(void* self) { static_cast<poller*>(self)->be_->wake(); }

  void loop() {
    try {
      while (undelivered_ || !timers_.empty()) pass();
    } catch (...) {
      // The poll tasklet itself was killed (or thread exit is killing everything): finish every
      // op in flight with the thread blocked, so no buffer is left with the kernel, and wake
      // every sleeper with ECANCELED.
      for (op& o : inflight_) {
        if (!o.cancel_requested) {
          o.cancel_requested = true;
          be_->cancel(o);
        }
      }
      while (!inflight_.empty()) backend_pass(std::nullopt);
      fire_timers(-ECANCELED, true);
      deliver();
      poll_ = tasklet();
      retire_if_orphaned();
      throw;
    }
    poll_ = tasklet();
    retire_if_orphaned();
  }

  // check_invariants(): the op lists' invariants (top of this file), with
  // STACKLESS_CHECK_INVARIANTS (fuzz builds) only: it walks both lists.
  void check_invariants() const noexcept {
#ifdef STACKLESS_CHECK_INVARIANTS
    std::size_t n = 0;
    for (const op& o : inflight_) {
      STACKLESS_ASSERT(o.st == op::state::queued, "poller: an op in inflight_ is not queued");
      ++n;
    }
    for (const op& o : done_) {
      STACKLESS_ASSERT(o.st == op::state::completed, "poller: an op in done_ is not completed");
      STACKLESS_ASSERT(o.group == nullptr, "poller: a completed op is still in its group");
      ++n;
    }
    STACKLESS_ASSERT(n == undelivered_, "poller: undelivered_ is not |inflight_| + |done_|");
#endif
  }

  // retire_if_orphaned(): called by the poll tasklet as its last act; touches nothing after.
  void retire_if_orphaned() noexcept {
    if (!orphaned_ || pending() != 0) return;
    if (tls_poller == this) tls_poller = nullptr;
    delete this;  // NOLINT: the thread's reaper handed ownership over (orphan())
  }

  std::unique_ptr<backend> be_;
  unsigned generation_;
  tasklet poll_;
  op_list inflight_;
  op_list done_;
  std::size_t undelivered_ = 0;
  timer_queue timers_;
  std::vector<op*> scratch_;
  std::vector<group_waiter*> ready_waiters_;  // their group emptied; told by deliver()
  poll_stats stats_;
  // Socket calls completed at once since the last one that went through the backend.
  static constexpr unsigned kAtOnceStreak = 32;
  unsigned at_once_streak_ = 0;
  bool orphaned_ = false;
};

// ---- the thread's poller ----------------------------------------------------------------------
// tls_poller is a plain pointer (never destroyed by the runtime) plus a reaper whose destructor
// frees an idle poller at thread exit. A poller with work pending then is orphaned instead:
// tasklets killed later by the scheduler's own teardown still use it, and its poll tasklet frees
// it when that work is done.
thread_local bool tls_reaped = false;

void reap() noexcept {
  tls_reaped = true;
  if (!tls_poller) return;
  if (tls_poller->idle()) {
    delete tls_poller;  // NOLINT: owned through tls_poller
    tls_poller = nullptr;
  } else {
    tls_poller->orphan();
  }
}

#ifdef _WIN32
// MinGW: the reaper is a pthread key created during static initialisation, not a thread_local,
// as the scheduler's is (scheduler_key() in runtime/src/scheduler_win.cpp): a key made before
// emutls' runs with the thread's thread_locals intact.
void reap_key(void* p) noexcept {
  tls_poller = static_cast<poller*>(p);
  reap();
}
pthread_key_t reaper_key() {
  static const pthread_key_t key = [] {
    pthread_key_t k{};
    if (::pthread_key_create(&k, reap_key) != 0) std::abort();
    return k;
  }();
  return key;
}
[[maybe_unused]] const pthread_key_t g_reaper_key_early = reaper_key();
#else
struct reaper {
  ~reaper() { reap(); }
};
#endif

poller& the_poller() {
#ifndef _WIN32
  static const bool fork_handler = [] {
    ::pthread_atfork(nullptr, nullptr, [] { on_fork_child(); });
    return true;
  }();
  (void)fork_handler;
  if (tls_poller && tls_poller->stale()) [[unlikely]]
    tls_poller = nullptr;  // the parent's: abandoned in this child
#endif
  if (!tls_poller) {
    tls_poller = new poller(thread_backend_for_this_thread());  // NOLINT: see reaper
    // Made during the thread's teardown (a destructor flushing a file after the reaper ran):
    // nobody will reap it, so it frees itself once idle (retire_if_idle_orphan()).
    if (tls_reaped) tls_poller->orphan();
    if (!tls_reaped) {
#ifdef _WIN32
      ::pthread_setspecific(reaper_key(), tls_poller);
#else
      static thread_local reaper r;
      (void)r;
#endif
    }
  }
  return *tls_poller;
}

// retire_if_idle_orphan(): frees an orphaned poller that has nothing left to do and no poll
// tasklet (which would free it itself).
void retire_if_idle_orphan() noexcept {
  if (tls_poller && tls_poller->orphaned() && tls_poller->idle()) {
    delete tls_poller;  // NOLINT: orphaned, owned by nobody else
    tls_poller = nullptr;
  }
}

}  // namespace

outcome submit(op_kind kind, int fd, void* buf, std::uint32_t len, std::int64_t offset,
               op_group* group, submit_flags flags) {
  request r;
  r.kind = kind;
  r.fd = fd;
  r.buf = buf;
  r.len = len;
  r.offset = offset;
  outcome out = the_poller().run(r, group, flags);
  retire_if_idle_orphan();
  return out;
}

outcome submit_open(const std::filesystem::path::value_type* path, int flags, unsigned mode) {
  request r;
  r.kind = op_kind::openat;
  r.buf = const_cast<std::filesystem::path::value_type*>(path);
  r.open_flags = flags;
  r.open_mode = mode;
  const bool forked_child_without_poller = g_fork_generation.load(std::memory_order_relaxed) != 0 &&
                                           (!tls_poller || tls_poller->stale());
  if (getcurrent().block_trap() || stackless::detail::switch_trapped() ||
      forked_child_without_poller) {
    // A tasklet that may not block still opens files, as before opening went asynchronous:
    // with the thread blocked. So does a forked child that has no poller yet: fork-then-open
    // (then exec) must not start a thread pool in the child of a threaded process.
    long fd;
    do {
      fd = run_blocking(r);
    } while (fd == kInterrupted);
    return {fd, nullptr};
  }
  outcome out = the_poller().run(r, nullptr, submit_flags::cancellable);
  retire_if_idle_orphan();
  if (out.interrupted && out.result >= 0) {
    request c;  // opened, but nobody will own it
    c.kind = op_kind::close;
    c.fd = static_cast<int>(out.result);
    (void)run_blocking(c);
    out.result = kCancelled;
  }
  return out;
}
outcome submit(const op_args& a, op_group* group, deadline_clock::time_point deadline) {
  request r;
  r.kind = a.kind;
  r.fd = a.fd;
  r.buf = a.buf;
  r.len = a.len;
  r.offset = a.offset;
  r.addrlen = a.addrlen;
  r.msg_flags = a.msg_flags;
  r.at_once = a.at_once;
  outcome out = the_poller().run(r, group, submit_flags::cancellable, deadline);
  retire_if_idle_orphan();
  return out;
}

void set_fault_hook(fault_hook hook) {
  tls_fault_hook = std::move(hook);
}

void cancel_group(op_group& g) noexcept {
  if (g.count && tls_poller) tls_poller->cancel_group(g);
}

std::exception_ptr wait_group_empty(op_group& g) noexcept {
  if (!g.count || !tls_poller) return nullptr;
  return tls_poller->wait_group_empty(g);
}

}  // namespace detail

poll_stats get_poll_stats() noexcept {
  return detail::tls_poller ? detail::tls_poller->stats() : poll_stats{};
}

std::size_t pending_operations() noexcept {
  return detail::tls_poller ? detail::tls_poller->pending() : 0;
}

}  // namespace stackless::io

namespace stackless {
void sleep_until(std::chrono::steady_clock::time_point deadline) {
  if (deadline <= stackless::now()) {
    schedule();
    return;
  }
  io::detail::the_poller().sleep_until(deadline);
}
}  // namespace stackless
