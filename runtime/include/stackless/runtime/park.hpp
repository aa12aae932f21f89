// The runtime's blocking API: the only way the layers above (channels, I/O) block and wake
// tasklets. It knows nothing about channels or files: a blocked tasklet waits on a wait_owner,
// which the runtime asks to cancel the wait when the tasklet is killed, thrown into, or has to be
// woken by the deadlock rules. (Go's gopark/goready, libdill's dill_wait/dill_trigger.)
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>

#include "stackless/runtime/tasklet.hpp"

namespace stackless::detail {

// block_reason: why a tasklet is parked (diagnostics, deadlock messages).
enum class block_reason : std::uint8_t { none, channel_send, channel_receive, join };

// thread_rec: per-thread record of the biased lock below (never freed; recycled between
// threads). in_op is the biased lock the thread is inside without having taken it for real.
struct thread_rec {
  std::atomic<const void*> in_op{nullptr};
};
extern constinit thread_local thread_rec* tls_rec;
thread_rec* make_thread_rec() noexcept;
// this_thread_rec(): the calling thread's record (created on first use).
inline thread_rec* this_thread_rec() noexcept {
  thread_rec* r = tls_rec;
  return r ? r : make_thread_rec();
}
// bias_available(): false when the process can't issue an asymmetric fence (no membarrier, a
// TSan build, Windows): then every biased_lock is a plain spinlock. Set once, during the
// runtime's static initialisation (a lock taken before then is a plain spinlock, which stays
// consistent: unlock() tells the two kinds apart by the thread's in_op).
extern bool g_bias_ok;
inline bool bias_available() noexcept {
  return g_bias_ok;
}
// revoke_bias(home, lock, shared): called by a thread other than the lock's home, holding the
// lock's real (spin) lock. Marks the lock shared, forces a full fence on every thread
// (membarrier), then waits until home is no longer inside the lock. From then on the home thread
// takes the lock for real too.
void revoke_bias(thread_rec* home, const void* lock, std::atomic<bool>& shared) noexcept;

// biased_lock: guards a wait owner that tasklets of several threads may use (a channel).
// Most channels are only ever used by one thread, which then pays no atomic read-modify-write:
// the first thread to take the lock becomes its home; while no other thread has touched it, the
// home thread "locks" it by publishing the lock in its thread_rec and re-checking `shared_`
// (plain stores and loads; the revoker's membarrier supplies the fence this side omits: an
// asymmetric Dekker handshake, as folly's hazard pointers do). The first use from another
// thread revokes the bias once, and from then on everybody takes a spinlock (one atomic
// exchange uncontended). Critical sections are a few dozen instructions and never switch.
class biased_lock {
 public:
  struct unbiased_t {
    explicit unbiased_t() = default;
  };
  static constexpr unbiased_t unbiased{};
  biased_lock() = default;
  // biased_lock(unbiased): a plain spinlock from the start, for an owner made for one exchange
  // between two threads (revoking a bias costs a process-wide barrier each time).
  explicit biased_lock(unbiased_t) noexcept : shared_(true) {}

  void lock() noexcept {
    if (bias_available()) [[likely]] {
      thread_rec* me = this_thread_rec();
      thread_rec* h = home_.load(std::memory_order_relaxed);
      if (h == nullptr && home_.compare_exchange_strong(h, me, std::memory_order_relaxed)) h = me;
      if (h == me) {
        if (me->in_op.load(std::memory_order_relaxed) == nullptr &&
            !shared_.load(std::memory_order_relaxed)) [[likely]] {
          me->in_op.store(this, std::memory_order_relaxed);
          std::atomic_signal_fence(std::memory_order_seq_cst);  // see revoke_bias
          if (!shared_.load(std::memory_order_relaxed)) [[likely]]
            return;
          me->in_op.store(nullptr, std::memory_order_relaxed);
        }
        // Revoked, or nested inside another biased section (rare; in_op is taken): the real
        // lock. Nobody else uses the bias, and other threads revoke under the real lock.
      } else if (!shared_.load(std::memory_order_acquire)) {
        // The revoker holds the real lock from before it marks the lock shared until its own
        // critical section ends: a third thread that sees shared_ set while the home thread is
        // still inside its biased section queues behind us instead of entering beside it.
        lock_real();
        if (!shared_.load(std::memory_order_relaxed)) revoke_bias(h, this, shared_);
        return;
      }
    }
    lock_real();
  }
  // release: our writes to the queue, the balance and the partner's slot are published (to the
  // next locker, or to a revoker waiting for our in_op to clear).
  void unlock() noexcept {
    if (bias_available()) [[likely]] {
      thread_rec* me = this_thread_rec();
      if (me->in_op.load(std::memory_order_relaxed) == this) [[likely]] {
        me->in_op.store(nullptr, std::memory_order_release);
        return;
      }
    }
    locked_.store(false, std::memory_order_release);
  }

  // shared(): another thread has used it (diagnostics, tests).
  bool shared() const noexcept { return shared_.load(std::memory_order_relaxed); }

  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

 private:
  void lock_real() noexcept {
    // acquire: the queue and slots written under the lock by the previous holder are visible.
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) pause();
    }
  }

  std::atomic<bool> locked_{false};
  std::atomic<bool> shared_{false};
  std::atomic<thread_rec*> home_{nullptr};
};

// wait_owner: the object a parked tasklet waits on.
struct wait_owner {
  // cancel_wait(t) unlinks t from the owner's wait queue and restores the owner's accounting
  // (a channel's balance), taking the owner's lock. Returns false when t is no longer queued:
  // a partner on another thread has already completed t's operation and handed t back to its
  // scheduler (it will become runnable there). Called on t's own thread.
  virtual bool cancel_wait(tasklet_impl* t) noexcept = 0;
  // add_ref()/release_ref(): unpark_remote() keeps the owner alive with one reference until t's
  // thread has taken t in: until then that thread may still call cancel_wait() on it (a kill), and
  // t is no longer in the queue whose waiters keep the owner alive.
  virtual void add_ref() noexcept = 0;
  virtual void release_ref() noexcept = 0;

 protected:
  ~wait_owner() = default;
};

// wait_queue: a FIFO of parked tasklets, threaded through the tasklets' own next/prev links
// (so tasklet::next() walks a channel's queue, as in Stackless). Not thread-safe.
struct wait_queue {
  // push_back/pop_front/erase maintain the tasklet's `queued` flag (read by cancel_wait).
  tasklet_impl* head = nullptr;
  tasklet_impl* tail = nullptr;
  bool empty() const noexcept { return head == nullptr; }
  void push_back(tasklet_impl* t) noexcept;
  tasklet_impl* pop_front() noexcept;
  void erase(tasklet_impl* t) noexcept;
};

// The current tasklet of this thread (creates the scheduler on first use). Never null.
tasklet_impl* current_impl();

// Per-tasklet fields the blocking layers read and write.
bool block_trap_of(const tasklet_impl* t) noexcept;
bool is_main_impl(const tasklet_impl* t) noexcept;
void* wait_slot(tasklet_impl* t) noexcept;  // opaque per-wait data of the owner
wait_owner* waiting_on(const tasklet_impl* t) noexcept;
bool is_queued(const tasklet_impl* t) noexcept;  // in a wait queue (read under the owner's lock)
// The exception a kill or throw left for t to raise when it runs (null if none), and whether t is
// being unwound by kill_all() or the end of its thread. Read on t's own thread (cancel_wait).
const std::exception_ptr& pending_exception_of(const tasklet_impl* t) noexcept;
bool doomed_of(const tasklet_impl* t) noexcept;

// check_point(): a check point for a budgeted run() and the switch trap bookkeeping. Called at
// the start of every channel operation and I/O call. May switch away (budget interrupt) and
// come back later; raises an exception left by deliver_later().
void check_point();

// deliver_later(e): a kill or throw the current tasklet received where it could not be raised
// (a destructor that waited for the kernel) is raised at its next check point or switch, as if
// it had been thrown with pending = true. The first one kept wins.
void deliver_later(std::exception_ptr e) noexcept;

// throw_if_switch_trapped(): throws switch_trap_error if the switch trap is raised.
void throw_if_switch_trapped();
// switch_trapped(): the switch trap is raised on this thread (a switch would throw).
bool switch_trapped() noexcept;

// park(owner, queue, slot, reason) takes the current tasklet out of the run queue, appends it to
// `queue` (the owner's) and runs the next runnable tasklet. It returns when another tasklet wakes
// it with unpark_*(). If the deadlock rules forbid blocking, it calls owner.cancel_wait(current)
// and throws deadlock_error. If the tasklet is killed or thrown into while parked, the runtime
// calls owner.cancel_wait() first and park() throws that exception. Main may park without run().
// `lock`, when given, is the owner's lock, held by the caller; park() releases it once the tasklet
// is in the queue (before switching away), so a partner on another thread can complete it.
void park(wait_owner& owner, wait_queue& queue, void* slot, block_reason reason,
          biased_lock* lock = nullptr);

// Waking a parked tasklet t (already unlinked from the owner's queue by the caller):
// unpark_append(t): t goes to the end of the run queue; the caller continues.
void unpark_append(tasklet_impl* t) noexcept;
// unpark_and_switch(t): t is placed right after the caller and runs now; the caller becomes the
// tail of the run queue (Stackless's preference rule). Returns when the caller runs again.
void unpark_and_switch(tasklet_impl* t);

// Stackless's "schedule_all": t to the end of the run queue, then the caller yields.
void unpark_append_and_schedule(tasklet_impl* t);

// same_thread(t): t belongs to the calling thread's scheduler.
bool same_thread(const tasklet_impl* t) noexcept;
// unpark_remote(t): t (unlinked from its queue under the owner's lock, which the caller still
// holds) belongs to another thread: it is made runnable there, and that thread is woken if it
// sleeps. The caller continues; preference does not apply across threads (as in Stackless).
// Holds a reference on t's owner (wait_owner::add_ref) until t's thread has taken t in.
void unpark_remote(tasklet_impl* t);

// For the I/O poller, which sleeps in the kernel instead of the scheduler's condition variable:
// set_idle_waker(f, ctx) makes remote work call f(ctx) (from any thread) to interrupt that sleep;
// remote_work_pending() tells whether such work is waiting to be taken in (by schedule()).
void set_idle_waker(void (*f)(void*), void* ctx);
// clear_idle_waker(ctx): removes the waker if it is still ctx's; never creates a scheduler.
// After it returns no thread calls the old waker any more.
void clear_idle_waker(void* ctx) noexcept;
bool remote_work_pending() noexcept;

}  // namespace stackless::detail
