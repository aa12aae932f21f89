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
#include <memory>

#include "stackless/channel.hpp"

namespace stackless {

channel_closed::channel_closed()
    : std::runtime_error("Send/receive operation on a closed channel") {}

namespace {
thread_local channel_callback tls_channel_cb;
thread_local bool tls_in_channel_cb = false;

struct channel_ref : channel_base {
  explicit channel_ref(detail::channel_core* c) noexcept : channel_base(c) {}
};
}  // namespace

channel_callback set_channel_callback(channel_callback cb) {
  return std::exchange(tls_channel_cb, std::move(cb));
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
  struct reset {
    ~reset() { tls_in_channel_cb = false; }
  } r;
  tasklet cur = tasklet::from_impl(current_impl());
  // Call a copy: the callback may replace or remove itself (set_channel_callback inside the
  // call), which must not destroy the closure that is running (Stackless holds a reference
  // to the hook for the call).
  channel_callback cb = tls_channel_cb;
  cb(channel_ref(c), cur, dir > 0, will_block);
}

tasklet_impl* channel_core::begin(int dir) {
  check_point();
  if (tls_in_channel_cb) [[unlikely]]
    throw error("Recursive channel call due to callbacks!");
  if (tls_channel_cb) [[unlikely]] {
    lock_.lock();
    const bool will_block = !(balance_.load(std::memory_order_relaxed) * dir < 0);
    lock_.unlock();
    run_callback(this, dir, will_block);
  }
  lock_.lock();
  // A partner waits when the balance has the opposite sign of our direction.
  tasklet_impl* partner =
      (balance_.load(std::memory_order_relaxed) * dir < 0) ? waiters_.head : nullptr;
  // A switch trap refuses only operations that would really switch (Stackless allows a send with
  // preference 1 to a waiting receiver: the caller just continues). A blocking operation checks
  // the trap in block(), after block_trap and closing, as slp_schedule_task comes last there.
  if (partner &&
      (schedule_all_.load(std::memory_order_relaxed) ||
       preference_.load(std::memory_order_relaxed) == -dir) &&
      same_thread(partner)) {
    try {
      throw_if_switch_trapped();
    } catch (...) {
      lock_.unlock();
      throw;
    }
  }
  return partner;
}

void channel_core::hand_off(tasklet_impl* partner, int dir) {
  assert(partner == waiters_.head);
  // A sender's operation is complete once a receiver took its value (read by send_into).
  if (dir < 0) static_cast<send_slot*>(wait_slot(partner))->done = true;
  waiters_.pop_front();
  balance_.store(balance_.load(std::memory_order_relaxed) + dir, std::memory_order_relaxed);
  if (!same_thread(partner)) [[unlikely]] {
    // Across threads the partner is made runnable in its own thread and we continue. It is
    // handed over before the lock is released, so its own thread's cancel_wait() either finds
    // it queued or finds its wake-up already in the remote queue.
    unpark_remote(partner);
    lock_.unlock();
    return;
  }
  const bool all = schedule_all_.load(std::memory_order_relaxed);
  const int pref = preference_.load(std::memory_order_relaxed);
  lock_.unlock();
  if (all) [[unlikely]] {
    unpark_append_and_schedule(partner);
  } else if (pref == -dir) {
    unpark_and_switch(partner);  // the partner's side is preferred: it runs now
  } else {
    unpark_append(partner);  // the caller continues
  }
}

void channel_core::block(int dir, void* slot) {
  tasklet_impl* self = current_impl();
  try {
    if (block_trap_of(self)) [[unlikely]]
      throw block_trap_error("this tasklet does not like to be blocked.");
    if (closing_.load(std::memory_order_relaxed)) [[unlikely]]
      throw channel_closed();
    throw_if_switch_trapped();
  } catch (...) {
    lock_.unlock();
    throw;
  }
  balance_.store(balance_.load(std::memory_order_relaxed) + dir, std::memory_order_relaxed);
  park(*this, waiters_, slot, dir > 0 ? block_reason::channel_send : block_reason::channel_receive,
       &lock_);
}

}  // namespace detail
}  // namespace stackless
