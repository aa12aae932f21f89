// stackless::channel<T>: Stackless Python's synchronous (rendezvous) channel, typed for C++.
//
// A send blocks until a receiver takes the value and a receive blocks until a sender offers one;
// blocked tasklets wait in FIFO order. balance() is the number of waiting senders (> 0) or minus
// the number of waiting receivers (< 0). Who runs after a hand-off is decided by preference()
// and schedule_all() exactly as in Stackless (docs/semantics.md):
//   preference -1 (default): a receiver is preferred: a send to a waiting receiver runs it now;
//   preference  1          : a sender is preferred:  a receive from a waiting sender runs it now;
//   preference  0          : the caller continues; the partner goes to the end of the run queue;
//   schedule_all           : the partner goes to the end of the run queue and the caller yields.
// close() only refuses new blockers: it never wakes anyone, and waiting partners still complete.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless {

// channel_closed: "Send/receive operation on a closed channel" (Stackless's ValueError).
class channel_closed : public std::runtime_error {
 public:
  channel_closed();
};
// select_closed: a select had to wait and one of its cases is on a closing channel (a wait there
// would be refused). case_index() is that case's position among select's arguments.
// undelivered_error: a send to a receiver of another thread that died (killed, or its thread ended)
// after the value was handed to it and before its receive returned. The value was destroyed with
// the receiver. (Within one thread the hand-off is the delivery, as in Stackless.)
class undelivered_error : public error {
 public:
  using error::error;
};

class select_closed : public channel_closed {
 public:
  explicit select_closed(std::size_t i) noexcept : index_(i) {}
  std::size_t case_index() const noexcept { return index_; }

 private:
  std::size_t index_;
};

// prefer: the named form of set_preference()'s int (Stackless's -1, 0, 1):
// ch.set_preference(prefer::sender) is ch.set_preference(1).
enum class prefer : int { receiver = -1, neither = 0, sender = 1 };

class channel_base;
// set_channel_callback(cb): cb(channel, tasklet, sending, will_block) is called before every
// send and receive on this thread. A channel operation inside the callback throws error
// ("Recursive channel call due to callbacks!"). Returns the previous callback.
using channel_callback =
    std::function<void(const channel_base& ch, const tasklet& t, bool sending, bool will_block)>;
channel_callback set_channel_callback(channel_callback cb);
channel_callback get_channel_callback();

namespace detail {

// What a blocked sender or receiver leaves on its own stack for the partner (the wait slot).
// A blocked sender: `value` points at the value it sends (or `error` is set for send_exception).
// A blocked receiver: the partner constructs the value into `value` storage, or sets `error`.
// `seq` is the channel's arrival number for the wait (set under its lock by block() or by a
// select enrolling): plain waiters and select cases share one FIFO order through it.
struct send_slot {
  void* value = nullptr;     // T* for channel<T>; unused for channel<void>
  std::exception_ptr error;  // set for send_exception / send_throw
  bool done = false;         // a receiver took it (set by hand_off)
  std::uint64_t seq = 0;
};
struct send_ack;
// absorb(e): asked when an exception e interrupts an operation that another thread's partner had
// already completed: true keeps the completed operation and drops e (the timeout signal of
// <stackless/sync.hpp>), false lets e propagate.
using absorb_fn = bool (*)(std::exception_ptr);
struct recv_slot {
  void* storage = nullptr;  // std::optional<T>* for channel<T>
  std::exception_ptr error;
  bool done = false;  // a sender handed something over
  std::uint64_t seq = 0;
  // A sender of another thread that waits until this receive returns (or dies): see send_ack in
  // channel.cpp. Set by that sender before it wakes us; exchanged atomically (std::atomic_ref).
  send_ack* ack = nullptr;
};

// slot_move<T>(from, to): a sender's value (or its send_exception) into a receiver's slot, for a
// nothrow-move-constructible T (or void). Used by select and by channel_core::fast_op.
template <class T>
void slot_move(send_slot* from, recv_slot* to) noexcept {
  if (from->error) {
    to->error = from->error;
    return;
  }
  if constexpr (!std::is_void_v<T>)
    static_cast<std::optional<T>*>(to->storage)->emplace(std::move(*static_cast<T*>(from->value)));
}
using slot_move_fn = void (*)(send_slot* from, recv_slot* to) noexcept;
// has_fast_op<T>: T's transfer cannot throw, so a whole operation can run in fast_op().
// fast_op_count(): the operations channel_core::fast_op() completed on this thread (tests use
// it to prove which path an operation took), when fast_op_counting(): in builds with the
// library's internal checks on (STACKLESS_ASSERTS); otherwise always 0.
std::uint64_t fast_op_count() noexcept;
bool fast_op_counting() noexcept;
template <class T>
inline constexpr bool has_fast_op = std::is_void_v<T> || std::is_nothrow_move_constructible_v<T>;

class channel_core;
struct select_state;
struct select_case;
// select_node: one case of a blocked select, linked into its channel's select list (a tasklet
// can wait in only one runtime wait queue, so a select waits in its own and leaves a node in
// each channel). It lives on the select's stack; `linked` is read and written under the
// channel's lock.
struct select_node {
  select_state* sel = nullptr;
  channel_core* ch = nullptr;
  void* slot = nullptr;  // send_slot* (dir +1) or recv_slot* (dir -1), owned by the case
  select_node* prev = nullptr;
  select_node* next = nullptr;
  int dir = 0;
  unsigned index = 0;  // the case's position among the select's channel cases
  bool linked = false;
  std::uint64_t seq() const noexcept {
    return dir > 0 ? static_cast<send_slot*>(slot)->seq : static_cast<recv_slot*>(slot)->seq;
  }
};

// waiter: the partner a channel operation found: a tasklet blocked in send/receive, or a case
// of a blocked select (already claimed for this operation). slot() is its send_slot/recv_slot.
struct waiter {
  tasklet_impl* t = nullptr;
  select_node* n = nullptr;
  explicit operator bool() const noexcept { return t || n; }
  void* slot() const noexcept { return n ? n->slot : wait_slot(t); }
};

// channel_core: the untyped channel. Its state is guarded by lock_, a spinlock, because a channel
// may be shared between threads; uncontended (one thread) that costs one atomic exchange per
// operation. An operation is: begin() (takes the lock, returns the waiting partner or null), the
// typed value transfer into or out of the partner's slot, then hand_off() or block(), which
// release the lock before anything switches. abort_op() releases it if the transfer throws.
class channel_core final : public wait_owner {
 public:
  channel_core() = default;
  channel_core(const channel_core&) = delete;
  channel_core& operator=(const channel_core&) = delete;
  ~channel_core();

  int balance() const noexcept { return balance_.load(std::memory_order_relaxed); }
  // preference_/schedule_all_ are atomic (relaxed) like balance_: the getters read them without
  // the lock, possibly while another thread sets them.
  int preference() const noexcept { return preference_.load(std::memory_order_relaxed); }
  void set_preference(int p) noexcept {
    lock_.lock();
    preference_.store(p > 0 ? 1 : (p < 0 ? -1 : 0), std::memory_order_relaxed);
    lock_.unlock();
  }
  bool schedule_all() const noexcept { return schedule_all_.load(std::memory_order_relaxed); }
  void set_schedule_all(bool f) noexcept {
    lock_.lock();
    schedule_all_.store(f, std::memory_order_relaxed);
    lock_.unlock();
  }
  bool closing() const noexcept { return closing_.load(std::memory_order_relaxed); }
  bool closed() const noexcept { return closing() && balance() == 0; }
  // close()/open() never wake anyone (Stackless): they only change what a new blocker sees.
  // Under the lock: an operation reads closing_ once or twice in one critical section (the
  // iterator's end test, then block()), and must see the same value both times.
  void close() noexcept { set_closing(true); }
  void open() noexcept { set_closing(false); }
  void set_closing(bool c) noexcept {
    lock_.lock();
    closing_.store(c, std::memory_order_relaxed);
    lock_.unlock();
  }
  // queue_head(): the first tasklet blocked in a plain send/receive (select cases are not in
  // the tasklet queue: they count in balance() only).
  tasklet_impl* queue_head() noexcept {
    lock_.lock();
    tasklet_impl* h = waiters_.head;
    lock_.unlock();
    return h;
  }

  // begin(dir) runs the check point and the channel callback, then takes the lock. Returns the
  // waiting partner of the opposite direction (still linked; a select's case is claimed for this
  // operation), or an empty waiter when the caller must block.
  waiter begin(int dir);
  // hand_off(partner, dir, absorb): unlinks the partner, whose slot the caller has already filled
  // (or emptied), releases the lock and applies the preference rule. A receiving partner of
  // another thread is made runnable there and the sender waits until that receive has returned
  // (undelivered_error if the receiver dies first; absorb as for block()). May switch away.
  void hand_off(waiter partner, int dir, absorb_fn absorb = nullptr);
  // block(dir, slot, absorb): blocks the caller (refusing with block_trap_error, channel_closed
  // or deadlock_error as Stackless does) until a partner completes the operation. Releases the
  // lock. An exception that interrupts the wait propagates, unless a partner of another thread
  // completed the operation just before and absorb(e) says that the completed operation wins.
  void block(int dir, void* slot, absorb_fn absorb = nullptr);
  void abort_op() noexcept { lock_.unlock(); }
  // fast_op(dir, slot, move): a whole send (dir +1, slot: the caller's send_slot) or receive
  // (dir -1, slot: its recv_slot, whose error the caller raises) in one call, for the common
  // case: no check point or switch trap pending (detail::tls_slow), no channel callback, and
  // either a plain waiting partner (no select case first in line) or nobody to meet on an open
  // channel and a caller without block_trap. Locks once, then hands off (moving the value with
  // `move`) or blocks exactly as begin() + hand_off() or block() would. Returns false, having
  // done nothing, in every other case: the caller then runs the ordinary path.
  bool fast_op(int dir, void* slot, slot_move_fn move);

  std::atomic<std::size_t> refs{1};  // handles, and hand-offs to other threads in flight
  // release_last_handle(): refs reached 0. Deletes the channel, or, while tasklets are still
  // blocked on it, leaves that to the last of them to leave (cancel_wait): a blocked tasklet keeps
  // its channel alive (Stackless), without paying a reference count per blocking operation.
  void release_last_handle() noexcept;

  bool cancel_wait(tasklet_impl* t) noexcept override;
  void add_ref() noexcept override { refs.fetch_add(1, std::memory_order_relaxed); }
  void release_ref() noexcept override;

 private:
  friend struct select_state;
  friend std::ptrdiff_t select_run(select_case*, std::size_t, unsigned*, bool,
                                   bool (*)(std::exception_ptr));
  // partner(dir): under lock_, the longest-waiting partner of the opposite direction (plain
  // waiter or select case, by seq). A select case is claimed for the caller first; a case whose
  // select has already been decided elsewhere (or cancelled) is dropped on the way.
  waiter partner(int dir);
  // hand_off_remote(partner, dir, absorb): the end of hand_off() for a plain partner of another
  // thread, already unlinked (lock held; released here).
  void hand_off_remote(tasklet_impl* partner, int dir, absorb_fn absorb);
  void link_node(select_node* n) noexcept;    // under lock_: n waits here (balance counts it)
  void unlink_node(select_node* n) noexcept;  // under lock_: n leaves (balance restored)

  select_node* sel_head_ = nullptr;  // select cases waiting here, in arrival (seq) order
  select_node* sel_tail_ = nullptr;
  std::uint64_t next_seq_ = 0;  // under lock_
  biased_lock lock_;
  wait_queue waiters_;
  std::atomic<int> balance_{0};            // written under lock_; read without it by balance()
  std::atomic<int> preference_{-1};        // written under lock_
  std::atomic<bool> schedule_all_{false};  // written under lock_
  std::atomic<bool> closing_{false};
  bool orphaned_ = false;  // no handle left; deleted when waiters_ empties (under lock_)
};

// ---- select (the typed front end is <stackless/select.hpp>) ----
// select_case: one channel case as the untyped select sees it. The node's ch, slot and dir are
// set by the typed case; move() transfers a sender's value (or its send_exception) into a
// receiver's slot, for the case's T.
struct select_case {
  select_node node;
  void (*move)(send_slot* from, recv_slot* to) noexcept = nullptr;
  unsigned arg = 0;  // the case's position in the select's argument list
  bool enabled = true;
};
// select_run(cases, n, order, block, absorb): completes exactly one enabled case and returns its
// index in `cases`, or returns -1 (nothing ready and !block). `order` is scratch space for 2n
// indices. With block, waits (an empty case list then waits until interrupted: a timeout). An
// exception that interrupts the wait after a case has completed propagates unless absorb(e)
// says that the completed case wins (the timeout signal).
std::ptrdiff_t select_run(select_case* cases, std::size_t n, unsigned* order, bool block,
                          bool (*absorb)(std::exception_ptr));
// set_select_random(f): this thread's selects draw their random poll order from f instead of
// the built-in generator (null: back to it). Returns the previous one. A test seam: the channel
// fuzzer's model replays the same draws. Each select draws once per enabled case, in order.
using select_random_fn = std::uint32_t (*)() noexcept;
select_random_fn set_select_random(select_random_fn f) noexcept;

// channel_access: a channel handle's core, for select (the layers only, not user code).
struct channel_access;

}  // namespace detail

// channel_base: the untyped handle (what callbacks see); channel<T> adds the typed operations.
class channel_base {
 public:
  int balance() const noexcept { return core_->balance(); }
  int preference() const noexcept { return core_->preference(); }
  // set_preference stores the sign of p (2 -> 1, -7 -> -1).
  void set_preference(int p) noexcept { core_->set_preference(p); }
  void set_preference(prefer p) noexcept { core_->set_preference(static_cast<int>(p)); }
  bool schedule_all() const noexcept { return core_->schedule_all(); }
  void set_schedule_all(bool f) noexcept { core_->set_schedule_all(f); }
  bool closing() const noexcept { return core_->closing(); }
  bool closed() const noexcept { return core_->closed(); }
  void close() noexcept { core_->close(); }
  void open() noexcept { core_->open(); }
  // queue(): the first blocked tasklet (walk on with tasklet::next()), or a null tasklet.
  tasklet queue() const { return detail::tasklet_access::share(core_->queue_head()); }

  friend bool operator==(const channel_base& a, const channel_base& b) noexcept {
    return a.core_ == b.core_;
  }

  channel_base(const channel_base& o) noexcept : core_(o.core_) {
    core_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  channel_base& operator=(const channel_base& o) noexcept {
    channel_base tmp(o);
    std::swap(core_, tmp.core_);
    return *this;
  }
  ~channel_base() { drop(core_); }

 protected:
  friend struct detail::channel_access;
  channel_base();
  explicit channel_base(detail::channel_core* c) noexcept;  // shares c (one more handle)
  static void drop(detail::channel_core* c) noexcept;
  // send_exception/send_throw with a null exception_ptr: refused before anything happens (the
  // receiver would have nothing to raise), as tasklet::throw_exception refuses it.
  static void check_error(const std::exception_ptr& e) {
    if (!e)
      throw std::invalid_argument(
          "channel::send_exception/send_throw: null exception_ptr (nothing to raise)");
  }
  detail::channel_core* core_;
};

namespace detail {
struct channel_access {
  static channel_core* core(const channel_base& c) noexcept { return c.core_; }
};
}  // namespace detail

template <class T>
class channel : public channel_base {
  static_assert(std::is_move_constructible_v<T>, "channel<T> needs a move-constructible T");

 public:
  using value_type = T;
  channel() = default;

  // send(v) blocks the calling tasklet until a receiver takes v (or hands off at once when one
  // is waiting; a receiver of another thread must have returned from its receive). Throws
  // channel_closed, block_trap_error, deadlock_error, undelivered_error (a receiver of another
  // thread died with v), or the exception a kill/throw delivers while it waits.
  void send(T v) {
    detail::send_slot s{&v, nullptr, false};
    if constexpr (detail::has_fast_op<T>)
      if (core_->fast_op(+1, &s, &detail::slot_move<T>)) return;
    if (offer(v)) return;
    core_->block(+1, &s);
  }

  // receive() blocks the calling tasklet until a sender offers a value, and returns it. A value
  // sent with send_exception()/send_throw() is thrown here instead.
  T receive() {
    if constexpr (detail::has_fast_op<T>) {
      std::optional<T> out;
      detail::recv_slot r{&out, nullptr, false};
      if (core_->fast_op(-1, &r, &detail::slot_move<T>)) {
        if (r.error) std::rethrow_exception(r.error);
        return std::move(*out);
      }
    }
    detail::waiter s = core_->begin(-1);
    if (s) {
      if constexpr (std::is_nothrow_move_constructible_v<T>) {
        // take_from() without the optional: the common case, straight into the return value.
        auto* slot = static_cast<detail::send_slot*>(s.slot());
        if (slot->error) {
          std::exception_ptr e = slot->error;
          core_->hand_off(s, -1);
          std::rethrow_exception(e);
        }
        T v(std::move(*static_cast<T*>(slot->value)));
        core_->hand_off(s, -1);
        return v;
      } else {
        std::optional<T> v;
        take_from(s, v);
        return std::move(*v);
      }
    }
    std::optional<T> out;
    detail::recv_slot r{&out, nullptr, false};
    { core_->block(-1, &r); }
    if (r.error) std::rethrow_exception(r.error);
    return std::move(*out);
  }

  // receive_unless_closing(out): receive() into out, or false, without blocking, when the channel
  // is closing and no sender waits. The iterator's end test: made again under the channel's lock,
  // so a close() from another thread between the iterator's first test and the receive ends the
  // loop instead of raising channel_closed (in Stackless the GIL makes the two one step).
  bool receive_unless_closing(std::optional<T>& out) {
    detail::waiter s = core_->begin(-1);
    if (s) {
      take_from(s, out);
      return true;
    }
    if (core_->closing()) {
      core_->abort_op();
      return false;
    }
    detail::recv_slot r{&out, nullptr, false};
    core_->block(-1, &r);
    if (r.error) std::rethrow_exception(r.error);
    return true;
  }

  // send_exception(e): like send, but the receiver throws e. send_exception<E>(args...) builds E.
  void send_exception(std::exception_ptr e) { send_error(std::move(e)); }
  template <class E, class... A>
  void send_exception(A&&... a) {
    send_error(std::make_exception_ptr(E(std::forward<A>(a)...)));
  }
  // send_throw(e): forwards an existing exception (as caught with std::current_exception()).
  void send_throw(std::exception_ptr e) { send_error(std::move(e)); }

  // For the timed operations of <stackless/sync.hpp>, which interrupt a blocked operation by
  // throwing into it. A partner on another thread may complete the operation just before the
  // interruption reaches the tasklet; absorb(e) is then asked whether the completed operation
  // wins (true: the interruption e is dropped) or e propagates (a kill: as for receive()).
  // receive_into(out, absorb): receive() into out (a value sent with send_exception is thrown).
  void receive_into(std::optional<T>& out, detail::absorb_fn absorb) {
    detail::waiter s = core_->begin(-1);
    if (s) {
      take_from(s, out);
      return;
    }
    detail::recv_slot r{&out, nullptr, false};
    core_->block(-1, &r, absorb);
    if (r.error) std::rethrow_exception(r.error);
  }
  // send_into(v, absorb): send(v), same rule.
  void send_into(T& v, detail::absorb_fn absorb) {
    if (offer(v, absorb)) return;
    detail::send_slot s{&v, nullptr, false};
    core_->block(+1, &s, absorb);
  }

  // send_sequence(range): sends every element in order; returns how many were sent. An owning
  // container passed as an rvalue gives up its elements (moved, so move-only T works); an lvalue
  // range or a view is only read (elements copied, or moved when the view yields prvalues).
  template <class R>
  std::size_t send_sequence(R&& range) {
    // Forwarding the element alone is not enough: iterating an rvalue vector still yields
    // lvalue references, which would copy (and not compile for std::unique_ptr).
    constexpr bool steal = !std::is_lvalue_reference_v<R> &&
                           !std::ranges::view<std::remove_cvref_t<R>> &&
                           !std::ranges::borrowed_range<R>;
    std::size_t n = 0;
    for (auto&& v : range) {
      if constexpr (steal) {
        send(T(std::move(v)));
      } else {
        send(T(std::forward<decltype(v)>(v)));
      }
      ++n;
    }
    return n;
  }

  // Iteration: `for (auto v : ch)` receives until the channel is closing with no sender waiting,
  // or until a stop_iteration is sent through it.
  // It is a C++20 input iterator (std::ranges algorithms accept a channel) whose end is
  // std::default_sentinel: an iterator must be copyable to be its own sentinel, and a
  // channel<std::unique_ptr<X>>'s iterator, which holds the current value, is move-only.
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(channel* c) : c_(c) { advance(); }
    // const: std::indirectly_readable needs *it on a const iterator; the value is the
    // iterator's own (received) copy, so handing it out for modification/moving is fine.
    T& operator*() const { return *cur_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.c_ == b.c_; }
    friend bool operator==(const iterator& a, std::default_sentinel_t) noexcept {
      return a.c_ == nullptr;
    }

   private:
    // Out of line: inlined into std::ranges algorithms, GCC 12 reports cur_ as maybe-uninitialized.
    [[gnu::noinline]] void advance() {
      cur_.reset();
      if (c_->closing() && c_->balance() <= 0) {
        c_ = nullptr;
        return;
      }
      try {
        if (!c_->receive_unless_closing(cur_)) c_ = nullptr;
      } catch (const stop_iteration&) {
        c_ = nullptr;
      }
    }
    channel* c_ = nullptr;
    mutable std::optional<T> cur_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return std::default_sentinel; }

 private:
  // offer(v): the start of a send. A receiver waiting: v moves into its slot and the hand-off is
  // done (true). None: false, with the channel's lock still held for block().
  bool offer(T& v, detail::absorb_fn absorb = nullptr) {
    detail::waiter r = core_->begin(+1);
    if (!r) return false;
    auto* slot = static_cast<detail::recv_slot*>(r.slot());
    try {
      static_cast<std::optional<T>*>(slot->storage)->emplace(std::move(v));
    } catch (...) {
      core_->abort_op();
      throw;
    }
    slot->done = true;
    core_->hand_off(r, +1, absorb);
    return true;
  }

  void send_error(std::exception_ptr e) {
    check_error(e);
    detail::waiter r = core_->begin(+1);
    if (r) {
      auto* slot = static_cast<detail::recv_slot*>(r.slot());
      slot->error = std::move(e);
      slot->done = true;
      core_->hand_off(r, +1);
      return;
    }
    detail::send_slot s{nullptr, std::move(e), false};
    core_->block(+1, &s);
  }

  // The rest of a receive that found sender s waiting (the lock held since begin): moves its
  // value into out, or raises what it sent with send_exception. Releases the lock.
  void take_from(detail::waiter s, std::optional<T>& out) {
    auto* slot = static_cast<detail::send_slot*>(s.slot());
    if (slot->error) {
      std::exception_ptr e = slot->error;
      core_->hand_off(s, -1);
      std::rethrow_exception(e);
    }
    try {
      out.emplace(std::move(*static_cast<T*>(slot->value)));
    } catch (...) {
      core_->abort_op();  // the lock is held until hand_off
      throw;
    }
    core_->hand_off(s, -1);
  }
};

// channel<void>: a channel of pure signals. send() and receive() carry no value.
template <>
class channel<void> : public channel_base {
 public:
  using value_type = void;
  channel() = default;
  void send() {
    detail::send_slot s{nullptr, nullptr, false};
    if (core_->fast_op(+1, &s, &detail::slot_move<void>)) return;
    detail::waiter r = core_->begin(+1);
    if (r) {
      auto* slot = static_cast<detail::recv_slot*>(r.slot());
      slot->done = true;
      core_->hand_off(r, +1);
      return;
    }
    core_->block(+1, &s);
  }
  void receive() {
    {
      detail::recv_slot r{nullptr, nullptr, false};
      if (core_->fast_op(-1, &r, &detail::slot_move<void>)) {
        if (r.error) std::rethrow_exception(r.error);
        return;
      }
    }
    detail::waiter s = core_->begin(-1);
    if (s) {
      auto* slot = static_cast<detail::send_slot*>(s.slot());
      std::exception_ptr e = slot->error;
      core_->hand_off(s, -1);
      if (e) std::rethrow_exception(e);
      return;
    }
    detail::recv_slot r{nullptr, nullptr, false};
    { core_->block(-1, &r); }
    if (r.error) std::rethrow_exception(r.error);
  }
  void send_exception(std::exception_ptr e) { send_error(std::move(e)); }
  template <class E, class... A>
  void send_exception(A&&... a) {
    send_error(std::make_exception_ptr(E(std::forward<A>(a)...)));
  }
  void send_throw(std::exception_ptr e) { send_error(std::move(e)); }

 private:
  void send_error(std::exception_ptr e) {
    check_error(e);
    detail::waiter r = core_->begin(+1);
    if (r) {
      auto* slot = static_cast<detail::recv_slot*>(r.slot());
      slot->error = std::move(e);
      slot->done = true;
      core_->hand_off(r, +1);
      return;
    }
    detail::send_slot s{nullptr, std::move(e), false};
    core_->block(+1, &s);
  }
};

}  // namespace stackless
