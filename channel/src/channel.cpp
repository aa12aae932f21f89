// Stackless channel operations: the rendezvous, the preference rules and close
// (docs/semantics.md §1.6-1.7). The typed value transfer lives in channel.hpp; this file decides
// who waits, who is woken and who runs next.
//
// Invariants:
//   waiters_ holds blocked tasklets of one direction only.
//   balance_ > 0  <=> waiters_ holds exactly balance_ senders;
//   balance_ < 0  <=> waiters_ holds exactly -balance_ receivers.
//   A tasklet in waiters_ is not in the run ring; its wait slot (a send_slot or recv_slot on its
//   own stack) holds what it sends, or receives what it is given.
//   closing_ never wakes a waiter by itself (close only refuses new blockers).
#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>

#include "stackless/channel.hpp"
#include "stackless/runtime/detail/fast_path.hpp"

namespace stackless {

channel_closed::channel_closed()
    : std::runtime_error("Send/receive operation on a closed channel") {}

namespace {
thread_local channel_callback tls_channel_cb;
thread_local bool tls_in_channel_cb = false;
// tls_cb_armed: tls_channel_cb is set or a callback is running (one byte for begin() to test;
// tls_channel_cb itself has a dynamic initialiser, so every access checks a guard).
constinit thread_local bool tls_cb_armed = false;
// tls_fast_ops: operations fast_op() completed on this thread (fast_op_count(), for tests), counted
// where the library's internal checks are on (Debug, sanitizer and fuzz builds): the count costs
// ~3% of a round trip's instructions, which a Release build does not pay.
#ifdef STACKLESS_ENABLE_ASSERTS
constexpr bool kCountFastOps = true;
#else
constexpr bool kCountFastOps = false;
#endif
constinit thread_local std::uint64_t tls_fast_ops = 0;
inline void count_fast_op() noexcept {
  if constexpr (kCountFastOps) ++tls_fast_ops;
}

struct channel_ref : channel_base {
  explicit channel_ref(detail::channel_core* c) noexcept : channel_base(c) {}
};
}  // namespace

channel_callback set_channel_callback(channel_callback cb) {
  channel_callback old = std::exchange(tls_channel_cb, std::move(cb));
  tls_cb_armed = tls_in_channel_cb || static_cast<bool>(tls_channel_cb);
  return old;
}
channel_callback get_channel_callback() {
  return tls_channel_cb;
}

channel_base::channel_base() : core_(new detail::channel_core) {}  // NOLINT: refcounted below
channel_base::channel_base(detail::channel_core* c) noexcept : core_(c) {
  c->refs.fetch_add(1, std::memory_order_relaxed);
}

void channel_base::drop(detail::channel_core* c) noexcept {
  if (c) c->release_ref();
}

namespace detail {

// ---- select ----------------------------------------------------------------------------------
// A blocked select parks in its own one-tasklet queue (this wait_owner, on the select's stack)
// and leaves a select_node in every channel it waits on. The first partner to claim a node (CAS
// on `winner`, under that node's channel lock) completes that case; it then unlinks the other
// nodes and wakes the select. A node whose select is already decided is stale: whoever meets it
// drops it. Lock order: the select's own lock, then channel locks in address order; a claimer
// holds one channel lock at a time and takes the select's lock with no channel lock held.
// woken_remotely: a wait owner on the waiting tasklet's stack that a partner of another thread
// wakes through unpark_remote(), which keeps one reference until our thread has taken us in.
// quiesce(lock): no other thread touches the owner any more, so its frame may be left: the
// partner releases `lock` last, and the runtime drops its reference before we run.
struct woken_remotely : wait_owner {
  std::atomic<int> refs{0};
  void add_ref() noexcept override { refs.fetch_add(1, std::memory_order_relaxed); }
  void release_ref() noexcept override { refs.fetch_sub(1, std::memory_order_release); }
  void quiesce(biased_lock& lock) noexcept {
    lock.lock();
    lock.unlock();
    while (refs.load(std::memory_order_acquire) != 0) biased_lock::pause();
  }

 protected:
  ~woken_remotely() = default;
};

struct select_state final : woken_remotely {
  static constexpr int kCancelled = -2;
  biased_lock lock;  // guards q, and is held from before the first node is linked until parked
  wait_queue q;
  tasklet_impl* self = nullptr;
  std::atomic<int> winner{-1};  // -1 undecided, a case index, or kCancelled
  select_case* cases = nullptr;
  std::size_t n = 0;

  // Every node but `keep` leaves its channel (balance restored). No lock held by the caller.
  void unlink_others(const select_node* keep) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
      select_node* x = &cases[i].node;
      if (x == keep || !cases[i].enabled) continue;
      x->ch->lock_.lock();
      if (x->linked) x->ch->unlink_node(x);
      x->ch->lock_.unlock();
    }
  }

  // wake(won, all, partner_first): `won`'s case was completed by the calling tasklet (channel
  // lock released). Same thread: the preference rule of the channel says who runs.
  void wake(select_node* won, bool all, bool partner_first) {
    unlink_others(won);
    lock.lock();  // the select holds it until it is parked: then it is in q
    tasklet_impl* t = q.pop_front();
    if (!same_thread(t)) {
      unpark_remote(t);  // before the lock is released: see cancel_wait
      lock.unlock();
      return;
    }
    lock.unlock();
    if (all)
      unpark_append_and_schedule(t);
    else if (partner_first)
      unpark_and_switch(t);
    else
      unpark_append(t);
  }

  bool cancel_wait(tasklet_impl* t) noexcept override {
    for (;;) {
      lock.lock();
      if (!is_queued(t)) {  // a claimer on another thread already handed us back
        lock.unlock();
        return false;
      }
      int undecided = -1;
      if (winner.compare_exchange_strong(undecided, kCancelled, std::memory_order_acq_rel)) {
        q.erase(t);
        lock.unlock();
        unlink_others(nullptr);
        return true;
      }
      // Claimed by a partner on another thread that is still unlinking our other nodes; it
      // pops us under `lock` and hands us back through our remote queue. Wait for that.
      lock.unlock();
      biased_lock::pause();
    }
  }
  void quiesce() noexcept { woken_remotely::quiesce(lock); }
};

// ---- a send across threads waits for the receive to return ----------------------------------
// Within one thread the hand-off is the delivery (Stackless). Across threads the receiver only
// becomes runnable in its own thread, which may end (or kill it) before it runs: the value would
// be destroyed while the send had returned. So a sender that hands a value to a receiver of
// another thread parks on a send_ack (on its own stack) whose address it leaves in the
// receiver's recv_slot; the receiver, when its receive returns (or dies with the value), takes
// the address with an atomic exchange and wakes the sender with the outcome (ack_receive).
// The sender detaches itself when it is killed meanwhile (cancel_wait): it takes the address back
// with a compare-exchange; whoever wins the exchange owns the send_ack's fate. Lock order: the
// channel's lock, then send_ack::lock (the sender holds it until it is parked).
struct send_ack final : woken_remotely {
  biased_lock lock{biased_lock::unbiased};  // always taken by two threads
  wait_queue q;
  recv_slot* peer = nullptr;   // the receiver's slot: alive while we are queued here
  absorb_fn absorb = nullptr;  // the timed send's test for its timeout signal
  bool answered = false;       // under lock: the receiver answered (taken says how)
  bool taken = false;

  bool cancel_wait(tasklet_impl* t) noexcept override {
    // A timeout that expires now finds the value handed over: it must not detach us (the send
    // would return without knowing whether the value arrived). We stay until the answer and the
    // timeout is then absorbed. Not when the tasklet is being unwound: that ends it at once.
    if (absorb && pending_exception_of(t) && !doomed_of(t) && absorb(pending_exception_of(t)))
      return false;  // as if answered: the caller leaves us parked with the exception pending
    for (;;) {
      lock.lock();
      if (!is_queued(t)) {  // the receiver answered: we are on our way back
        lock.unlock();
        return false;
      }
      // Queued, so the receiver has not answered and its slot is alive. If it has not taken
      // our address yet, we take it back: it will never touch us.
      send_ack* self = this;
      if (std::atomic_ref<send_ack*>(peer->ack).compare_exchange_strong(
              self, nullptr, std::memory_order_acq_rel)) {
        q.erase(t);
        lock.unlock();
        return true;
      }
      lock.unlock();  // it is answering (waiting for this lock): let it
      biased_lock::pause();
    }
  }
  void quiesce() noexcept { woken_remotely::quiesce(lock); }
};

namespace {
// wake_rule(all, pref, dir): how a same-thread partner is woken after a hand-off in direction dir
// (Stackless's rule): schedule_all puts both at the back; otherwise the preferred side runs now.
inline wake wake_rule(bool all, int pref, int dir) noexcept {
  return all ? wake::append_and_yield : (pref == -dir ? wake::run_now : wake::append);
}

// ack_receive(r, taken): the receive that owns slot r returned (taken) or dies with what it was
// handed (!taken): wakes a sender of another thread waiting on that (if any, and not detached).
void ack_receive(recv_slot* r, bool taken) noexcept {
  if (!std::atomic_ref<send_ack*>(r->ack).load(std::memory_order_acquire)) return;
  send_ack* a = std::atomic_ref<send_ack*>(r->ack).exchange(nullptr, std::memory_order_acq_rel);
  if (!a) return;  // the sender detached (killed while it waited)
  a->lock.lock();
  a->answered = true;
  a->taken = taken;
  unpark_remote(a->q.pop_front());  // before unlocking: see send_ack::cancel_wait
  a->lock.unlock();                 // the last touch: the sender's quiesce() waits for it
}

// await_receive(partner slot r, lock of the channel held): the send that filled r waits until the
// receiver (of another thread, about to be woken by the caller) answers. The caller wakes the
// partner and releases the channel's lock inside `wake`.
template <class Wake>
void await_receive(recv_slot* r, absorb_fn absorb, Wake&& wake) {
  send_ack a;
  a.peer = r;
  a.absorb = absorb;
  r->ack = &a;    // published to the receiver by the wake-up (its remote queue's lock)
  a.lock.lock();  // held until we are parked: the receiver's answer waits for that
  wake();
  try {
    park(a, a.q, nullptr, block_reason::channel_send, &a.lock);
  } catch (...) {
    a.quiesce();
    // Interrupted. Detached (a kill or throw, or the end of the thread): that exception ends the
    // send, the value's fate open. Answered (a timeout waits for the answer, see cancel_wait):
    // the answer decides.
    if (!a.answered || !absorb || !absorb(std::current_exception())) throw;
    if (a.answered && !a.taken) [[unlikely]]
      throw undelivered_error(
          "channel send: the receiving tasklet (on another thread) was killed before it took "
          "the value (its thread ended?); the value was destroyed");
    return;
  }
  a.quiesce();
  if (!a.taken) [[unlikely]]
    throw undelivered_error(
        "channel send: the receiving tasklet (on another thread) was killed before it took the "
        "value (its thread ended?); the value was destroyed");
}
}  // namespace

channel_core::~channel_core() {
  assert(waiters_.empty());
}

void channel_core::release_ref() noexcept {
  // acq_rel: the last owner sees every other handle's last use of the channel.
  if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) release_last_handle();
}

void channel_core::release_last_handle() noexcept {
  lock_.lock();
  const bool now = waiters_.empty();
  orphaned_ = !now;
  lock_.unlock();
  if (now) delete this;  // NOLINT: the last reference (refcounted, created in channel_base)
}

bool channel_core::cancel_wait(tasklet_impl* t) noexcept {
  lock_.lock();
  if (!is_queued(t)) {  // a partner on another thread completed it first
    lock_.unlock();
    return false;
  }
  waiters_.erase(t);
  const int b = balance_.load(std::memory_order_relaxed);
  balance_.store(b > 0 ? b - 1 : b + 1, std::memory_order_relaxed);
  // The last blocked tasklet of a channel nobody holds any more (killed, or thread exit).
  const bool last = orphaned_ && waiters_.empty();
  lock_.unlock();
  if (last) delete this;  // NOLINT: see release_last_handle
  return true;
}

[[gnu::cold, gnu::noinline]] static void run_callback(channel_core* c, int dir, bool will_block) {
  if (tls_in_channel_cb) throw error("Recursive channel call due to callbacks!");
  tls_in_channel_cb = true;
  tls_cb_armed = true;
  struct reset {
    ~reset() {
      tls_in_channel_cb = false;
      tls_cb_armed = static_cast<bool>(tls_channel_cb);
    }
  } r;
  tasklet cur = detail::tasklet_access::share(current_impl());
  // Call a copy: the callback may replace or remove itself (set_channel_callback inside the
  // call), which must not destroy the closure that is running (Stackless holds a reference
  // to the hook for the call).
  channel_callback cb = tls_channel_cb;
  cb(channel_ref(c), cur, dir > 0, will_block);
}

waiter channel_core::begin(int dir) {
  check_point_fast();
  if (tls_cb_armed) [[unlikely]] {
    if (tls_in_channel_cb) throw error("Recursive channel call due to callbacks!");
    if (tls_channel_cb) {
      lock_.lock();
      const bool will_block = !(balance_.load(std::memory_order_relaxed) * dir < 0);
      lock_.unlock();
      run_callback(this, dir, will_block);
    }
  }
  lock_.lock();
  // The fast paths: nobody of the other direction waits (the caller blocks), or a plain waiter
  // does and there is no switch trap: partner() then has nothing else to decide.
  const int b = balance_.load(std::memory_order_relaxed);
  if (b * dir >= 0) return {};
  if (!sel_head_ && !switch_trapped_fast()) [[likely]]
    return {waiters_.head, nullptr};
  try {
    return partner(dir);
  } catch (...) {
    lock_.unlock();
    throw;
  }
}

// A switch trap refuses only operations that would really switch (Stackless allows a send with
// preference 1 to a waiting receiver: the caller just continues). A blocking operation checks
// the trap in block(), after block_trap and closing, as slp_schedule_task comes last there.
// Checked before a select's case is claimed: a claim is never taken back.
waiter channel_core::partner(int dir) {
  for (;;) {
    // A partner waits when the balance has the opposite sign of our direction.
    if (balance_.load(std::memory_order_relaxed) * dir >= 0) return {};
    tasklet_impl* t = waiters_.head;
    select_node* n = sel_head_;
    if (t && n) {
      const std::uint64_t ts = dir > 0 ? static_cast<recv_slot*>(wait_slot(t))->seq
                                       : static_cast<send_slot*>(wait_slot(t))->seq;
      if (ts < n->seq()) n = nullptr;
    }
    tasklet_impl* who = n ? n->sel->self : t;
    if (switch_trapped_fast() &&
        (schedule_all_.load(std::memory_order_relaxed) ||
         preference_.load(std::memory_order_relaxed) == -dir) &&
        same_thread(who))
      throw_if_switch_trapped();
    if (!n) return {t, nullptr};
    int undecided = -1;
    // acq_rel: a claim is seen by the select's other channels and by its cancel_wait.
    if (n->sel->winner.compare_exchange_strong(undecided, static_cast<int>(n->index),
                                               std::memory_order_acq_rel))
      return {nullptr, n};
    unlink_node(n);  // its select was decided on another channel, or cancelled: not a partner
  }
}

void channel_core::link_node(select_node* n) noexcept {
  n->prev = sel_tail_;
  n->next = nullptr;
  if (sel_tail_)
    sel_tail_->next = n;
  else
    sel_head_ = n;
  sel_tail_ = n;
  n->linked = true;
  balance_.store(balance_.load(std::memory_order_relaxed) + n->dir, std::memory_order_relaxed);
}

void channel_core::unlink_node(select_node* n) noexcept {
  if (n->prev)
    n->prev->next = n->next;
  else
    sel_head_ = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    sel_tail_ = n->prev;
  n->prev = n->next = nullptr;
  n->linked = false;
  balance_.store(balance_.load(std::memory_order_relaxed) - n->dir, std::memory_order_relaxed);
}

void channel_core::hand_off(waiter p, int dir, absorb_fn absorb) {
  const bool all = schedule_all_.load(std::memory_order_relaxed);
  const int pref = preference_.load(std::memory_order_relaxed);
  if (p.n) {
    // A select's case (claimed in partner()): it leaves this channel, then its select is woken.
    if (dir < 0) static_cast<send_slot*>(p.n->slot)->done = true;
    unlink_node(p.n);
    if (dir > 0 && !same_thread(p.n->sel->self)) [[unlikely]] {
      await_receive(static_cast<recv_slot*>(p.n->slot), absorb, [&] {
        lock_.unlock();
        p.n->sel->wake(p.n, all, pref == -dir);
      });
      return;
    }
    lock_.unlock();
    p.n->sel->wake(p.n, all, pref == -dir);
    return;
  }
  tasklet_impl* partner = p.t;
  assert(partner == waiters_.head);
  // A sender's operation is complete once a receiver took its value (read by send_into).
  if (dir < 0) static_cast<send_slot*>(wait_slot(partner))->done = true;
  waiters_.pop_front();
  balance_.store(balance_.load(std::memory_order_relaxed) + dir, std::memory_order_relaxed);
  // Same thread: the preference rule says who runs (wake_here releases the lock first).
  if (wake_here(partner, wake_rule(all, pref, dir), lock_)) [[likely]]
    return;
  hand_off_remote(partner, dir, absorb);
}

void channel_core::hand_off_remote(tasklet_impl* partner, int dir, absorb_fn absorb) {
  // Across threads the partner is made runnable in its own thread. It is handed over before
  // the lock is released, so its own thread's cancel_wait() either finds it queued or finds
  // its wake-up already in the remote queue. A sender then waits for the receive to return.
  if (dir > 0) {
    await_receive(static_cast<recv_slot*>(wait_slot(partner)), absorb, [&] {
      unpark_remote(partner);
      lock_.unlock();
    });
    return;
  }
  unpark_remote(partner);
  lock_.unlock();
}

std::uint64_t fast_op_count() noexcept {
  return tls_fast_ops;
}
bool fast_op_counting() noexcept {
  return kCountFastOps;
}

// The common case in one call (channel.hpp). Each step is the one begin() + the typed transfer +
// hand_off(), or begin() + block(), would take in this case, in the same order; every test that
// sends elsewhere is made before anything has changed.
bool channel_core::fast_op(int dir, void* slot, slot_move_fn move) {
  // tls_slow: check_point() has work, or the switch trap is raised. tls_cb_armed: a callback.
  if ((tls_slow | static_cast<std::uint8_t>(tls_cb_armed)) != 0) [[unlikely]]
    return false;
  lock_.lock();
  const int b = balance_.load(std::memory_order_relaxed);
  if (b * dir < 0) {               // a partner waits
    if (sel_head_) [[unlikely]] {  // maybe a select case first in line: partner() decides
      lock_.unlock();
      return false;
    }
    tasklet_impl* partner = waiters_.head;
    void* theirs = wait_slot(partner);
    if (dir > 0) {
      auto* to = static_cast<recv_slot*>(theirs);
      move(static_cast<send_slot*>(slot), to);
      to->done = true;
    } else {
      auto* from = static_cast<send_slot*>(theirs);
      move(from, static_cast<recv_slot*>(slot));
      from->done = true;
    }
    balance_.store(b + dir, std::memory_order_relaxed);
    const bool all = schedule_all_.load(std::memory_order_relaxed);
    const int pref = preference_.load(std::memory_order_relaxed);
    if (pop_and_wake_here(waiters_, wake_rule(all, pref, dir), lock_)) [[unlikely]]
      hand_off_remote(partner, dir, nullptr);
    count_fast_op();
    return true;
  }
  // Nobody to meet: block, unless block() would refuse (closing here, block_trap in the runtime).
  if (closing_.load(std::memory_order_relaxed)) [[unlikely]] {
    lock_.unlock();
    return false;
  }
  const std::uint64_t seq = next_seq_++;
  if (dir > 0)
    static_cast<send_slot*>(slot)->seq = seq;
  else
    static_cast<recv_slot*>(slot)->seq = seq;
  // The balance moves before the runtime's block_trap test, which then backs it out under the
  // lock: only an unlocked balance() read (a snapshot, on another thread) can see the refused
  // waiter for that instant. Testing block_trap here first would cost ~4% of a round trip.
  balance_.store(b + dir, std::memory_order_relaxed);
  try {
    if (!park_unless_block_trapped(
            *this, waiters_, slot,
            dir > 0 ? block_reason::channel_send : block_reason::channel_receive, lock_))
        [[unlikely]] {
      balance_.store(b, std::memory_order_relaxed);
      --next_seq_;
      lock_.unlock();
      return false;
    }
  } catch (...) {
    // As block() with no absorb: a kill or throw while waiting ends the operation.
    if (dir < 0) ack_receive(static_cast<recv_slot*>(slot), false);
    throw;
  }
  if (dir < 0) ack_receive(static_cast<recv_slot*>(slot), true);
  count_fast_op();
  return true;
}

void channel_core::block(int dir, void* slot, absorb_fn absorb) {
  tasklet_impl* self = current_impl();
  try {
    if (block_trap_of(self)) [[unlikely]]
      throw block_trap_error("this tasklet does not like to be blocked.");
    if (closing_.load(std::memory_order_relaxed)) [[unlikely]]
      throw channel_closed();
    throw_if_switch_trapped_fast();
  } catch (...) {
    lock_.unlock();
    throw;
  }
  const std::uint64_t seq = next_seq_++;
  if (dir > 0)
    static_cast<send_slot*>(slot)->seq = seq;
  else
    static_cast<recv_slot*>(slot)->seq = seq;
  balance_.store(balance_.load(std::memory_order_relaxed) + dir, std::memory_order_relaxed);
  try {
    park(*this, waiters_, slot,
         dir > 0 ? block_reason::channel_send : block_reason::channel_receive, &lock_);
  } catch (...) {
    // A partner of another thread may have completed the operation just before the exception.
    const bool done =
        dir > 0 ? static_cast<send_slot*>(slot)->done : static_cast<recv_slot*>(slot)->done;
    const bool keep = done && absorb && absorb(std::current_exception());
    if (dir < 0) ack_receive(static_cast<recv_slot*>(slot), keep);
    if (!keep) throw;
    return;
  }
  if (dir < 0) ack_receive(static_cast<recv_slot*>(slot), true);
}

namespace {
thread_local select_random_fn tls_select_random = nullptr;

// A per-thread xorshift generator for the uniform choice among ready cases (Go's pollorder).
std::uint32_t select_random() noexcept {
  if (tls_select_random) [[unlikely]]
    return tls_select_random();
  static thread_local std::uint64_t x =
      0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&x);
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return static_cast<std::uint32_t>(x >> 32);
}

// Completes case c with partner p (c's channel locked; released by hand_off).
void select_complete(select_case& c, waiter p, absorb_fn absorb) {
  channel_core* ch = c.node.ch;
  send_slot* from;
  recv_slot* to;
  if (c.node.dir < 0) {
    from = static_cast<send_slot*>(p.slot());
    to = static_cast<recv_slot*>(c.node.slot);
  } else {
    from = static_cast<send_slot*>(c.node.slot);
    to = static_cast<recv_slot*>(p.slot());
  }
  c.move(from, to);
  to->done = true;
  if (c.node.dir > 0) from->done = true;
  ch->hand_off(p, c.node.dir, absorb);
}
}  // namespace

select_random_fn set_select_random(select_random_fn f) noexcept {
  return std::exchange(tls_select_random, f);
}

std::ptrdiff_t select_run(select_case* cs, std::size_t n, unsigned* order, bool block,
                          bool (*absorb)(std::exception_ptr)) {
  check_point();
  if (tls_in_channel_cb) [[unlikely]]
    throw error("Recursive channel call due to callbacks!");
  // order[0..m): the enabled cases, shuffled (the poll order); lock[0..m): the same cases
  // sorted by channel address (the lock order; a channel named twice is locked once).
  unsigned* lock = order + n;
  std::size_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!cs[i].enabled) continue;
    for (std::size_t j = 0; j < i; ++j)
      if (cs[j].enabled && cs[j].node.ch == cs[i].node.ch && cs[j].node.dir != cs[i].node.dir)
        throw std::invalid_argument(
            "stackless::select: the same channel is both sent to and received from");
    const std::size_t k = select_random() % (m + 1);  // inside-out Fisher-Yates
    order[m] = order[k];
    order[k] = static_cast<unsigned>(i);
    std::size_t p = m;
    while (p > 0 && std::less<>()(cs[i].node.ch, cs[lock[p - 1]].node.ch)) {
      lock[p] = lock[p - 1];
      --p;
    }
    lock[p] = static_cast<unsigned>(i);
    ++m;
  }
  if (m == 0 && !block) return -1;

  select_state st;
  st.self = current_impl();
  st.cases = cs;
  st.n = n;
  auto lock_all = [&] {
    for (std::size_t i = 0; i < m; ++i)
      if (i == 0 || cs[lock[i]].node.ch != cs[lock[i - 1]].node.ch)
        cs[lock[i]].node.ch->lock_.lock();
  };
  // unlock_all(except): every channel lock but except's.
  auto unlock_all = [&](const channel_core* except) {
    for (std::size_t i = 0; i < m; ++i) {
      channel_core* ch = cs[lock[i]].node.ch;
      if ((i == 0 || ch != cs[lock[i - 1]].node.ch) && ch != except) ch->lock_.unlock();
    }
  };
  if (block) st.lock.lock();
  lock_all();
  try {
    for (std::size_t i = 0; i < m; ++i) {
      select_case& c = cs[order[i]];
      c.node.index = order[i];
      c.node.sel = &st;
      if (waiter p = c.node.ch->partner(c.node.dir)) {
        unlock_all(c.node.ch);
        if (block) st.lock.unlock();
        select_complete(c, p, absorb);
        return order[i];
      }
    }
  } catch (...) {  // the switch trap (before anything was claimed)
    unlock_all(nullptr);
    if (block) st.lock.unlock();
    throw;
  }
  if (!block) {
    unlock_all(nullptr);
    return -1;
  }
  // Nothing is ready: wait on every case, unless a wait is refused (as for a plain operation).
  try {
    if (block_trap_of(st.self)) [[unlikely]]
      throw block_trap_error("this tasklet does not like to be blocked.");
    for (std::size_t i = 0; i < m; ++i)
      if (cs[order[i]].node.ch->closing_.load(std::memory_order_relaxed)) [[unlikely]]
        throw select_closed(cs[order[i]].arg);
    throw_if_switch_trapped();
  } catch (...) {
    unlock_all(nullptr);
    st.lock.unlock();
    throw;
  }
  // A blocked select keeps its channels alive, as a blocked plain operation does (its nodes
  // must be unlinked from them, whoever drops the last handle meanwhile).
  struct channel_refs {
    select_case* cs;
    unsigned* lock;
    std::size_t m;
    ~channel_refs() {
      for (std::size_t i = 0; i < m; ++i) cs[lock[i]].node.ch->release_ref();
    }
  } refs{cs, lock, m};
  for (std::size_t i = 0; i < m; ++i) {
    select_case& c = cs[lock[i]];
    c.node.ch->add_ref();
    const std::uint64_t seq = c.node.ch->next_seq_++;
    if (c.node.dir > 0)
      static_cast<send_slot*>(c.node.slot)->seq = seq;
    else
      static_cast<recv_slot*>(c.node.slot)->seq = seq;
    c.node.ch->link_node(&c.node);
  }
  unlock_all(nullptr);
  try {
    park(st, st.q, nullptr, block_reason::channel_receive, &st.lock);
  } catch (...) {
    // Cancelled (kill, throw, timeout, deadlock): cancel_wait unlinked every node. Or a partner
    // on another thread completed a case just before: absorb() decides which one wins.
    st.quiesce();
    const int w = st.winner.load(std::memory_order_acquire);
    const bool keep = w >= 0 && absorb && absorb(std::current_exception());
    if (w >= 0 && cs[w].node.dir < 0) ack_receive(static_cast<recv_slot*>(cs[w].node.slot), keep);
    if (!keep) throw;
    return w;
  }
  st.quiesce();
  const int w = st.winner.load(std::memory_order_acquire);
  if (cs[w].node.dir < 0) ack_receive(static_cast<recv_slot*>(cs[w].node.slot), true);
  return w;
}

}  // namespace detail
}  // namespace stackless
