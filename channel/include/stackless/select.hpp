// stackless::select: wait on several channel operations at once (Go's select statement).
//
//   std::size_t i = stackless::select(
//       stackless::on_receive(numbers, [](int v) { use(v); }),
//       stackless::on_send(out, std::string("hi"), [] { sent(); }),
//       stackless::on_default([] { nothing_ready(); }));
//
// Exactly one case completes; select returns its position among the arguments (0-based), after
// running that case's handler (if it has one). The other cases do nothing: their channels are
// left exactly as before. If several cases can proceed at once, one is chosen uniformly at
// random, as in Go. With no case ready, on_default runs at once; without one, the tasklet blocks
// until a partner arrives on one of the channels (or until on_timeout's deadline: the timeout
// case lives in <stackless/sync.hpp>, with the other timed operations).
//
// Stackless's rules (docs/semantics.md, "select"): a blocked select counts in the balance() of
// every channel it waits on and waits there in arrival (FIFO) order with plain senders and
// receivers; a partner completing one case runs the usual preference rule of that channel; a
// value sent with send_exception() to a receive case is thrown by select (the case counts as
// taken; its handler does not run); a select that has to wait while one of its channels is
// closing throws select_closed (a channel_closed) and waits nowhere; a kill, throw or timeout
// while it waits leaves every channel exactly as before. Values are moved, so T must be
// nothrow-move-constructible; a channel may appear in several cases, but only in one direction.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

#include "stackless/channel.hpp"

namespace stackless {

namespace detail {
enum class select_kind { channel, fallback, timeout };

struct no_handler {};
}  // namespace detail

// receive_case: made by on_receive(ch, f). f takes the received value (or nothing); it is optional.
template <class T, class F>
class receive_case {
  static_assert(std::is_void_v<T> || std::is_nothrow_move_constructible_v<T>,
                "stackless::select needs a nothrow-move-constructible value type");

 public:
  static constexpr detail::select_kind kind = detail::select_kind::channel;
  receive_case(channel<T>& ch, F f) : ch_(&ch), f_(std::move(f)) {}
  // only_if(false): the case is left out (Go's nil channel), e.g. for a source that has finished.
  receive_case&& only_if(bool enabled) && noexcept {
    enabled_ = enabled;
    return std::move(*this);
  }
  receive_case& only_if(bool enabled) & noexcept {
    enabled_ = enabled;
    return *this;
  }

  void bind(detail::select_case& c, unsigned arg) noexcept {
    slot_ = detail::recv_slot{&out_, nullptr, false, 0};
    c.node.ch = detail::channel_access::core(*ch_);
    c.node.slot = &slot_;
    c.node.dir = -1;
    c.move = &detail::slot_move<T>;
    c.arg = arg;
    c.enabled = enabled_;
  }
  void complete() {
    if (slot_.error) std::rethrow_exception(slot_.error);
    if constexpr (std::is_same_v<F, detail::no_handler>) {
      return;
    } else if constexpr (std::is_void_v<T>) {
      std::invoke(f_);
    } else if constexpr (std::is_invocable_v<F&, T&&>) {
      std::invoke(f_, std::move(*out_));
    } else {
      static_assert(std::is_invocable_v<F&>, "on_receive: the handler takes the value or nothing");
      std::invoke(f_);
    }
  }

 private:
  struct empty {};
  channel<T>* ch_;
  F f_;
  std::conditional_t<std::is_void_v<T>, empty, std::optional<T>> out_;
  detail::recv_slot slot_;
  bool enabled_ = true;
};

// send_case: made by on_send(ch, v, f). v is sent (moved) only if this case is taken; f() then
// runs.
template <class T, class F>
class send_case {
  static_assert(std::is_void_v<T> || std::is_nothrow_move_constructible_v<T>,
                "stackless::select needs a nothrow-move-constructible value type");
  struct empty {};
  using value_t = std::conditional_t<std::is_void_v<T>, empty, T>;

 public:
  static constexpr detail::select_kind kind = detail::select_kind::channel;
  send_case(channel<T>& ch, value_t v, F f) : ch_(&ch), v_(std::move(v)), f_(std::move(f)) {}
  send_case&& only_if(bool enabled) && noexcept {
    enabled_ = enabled;
    return std::move(*this);
  }
  send_case& only_if(bool enabled) & noexcept {
    enabled_ = enabled;
    return *this;
  }

  void bind(detail::select_case& c, unsigned arg) noexcept {
    slot_ = detail::send_slot{&v_, nullptr, false, 0};
    c.node.ch = detail::channel_access::core(*ch_);
    c.node.slot = &slot_;
    c.node.dir = +1;
    c.move = &detail::slot_move<T>;
    c.arg = arg;
    c.enabled = enabled_;
  }
  void complete() {
    if constexpr (!std::is_same_v<F, detail::no_handler>) std::invoke(f_);
  }

 private:
  channel<T>* ch_;
  value_t v_;
  F f_;
  detail::send_slot slot_;
  bool enabled_ = true;
};

// default_case: made by on_default(f): taken, without blocking, when no other case is ready.
template <class F>
class default_case {
 public:
  static constexpr detail::select_kind kind = detail::select_kind::fallback;
  explicit default_case(F f) : f_(std::move(f)) {}
  void complete() {
    if constexpr (!std::is_same_v<F, detail::no_handler>) std::invoke(f_);
  }

 private:
  F f_;
};

template <class T, class F>
receive_case<T, std::decay_t<F>> on_receive(channel<T>& ch, F&& f) {
  return {ch, std::forward<F>(f)};
}
template <class T>
receive_case<T, detail::no_handler> on_receive(channel<T>& ch) {
  return {ch, {}};
}
template <class T, class V, class F>
requires std::constructible_from<T, V&&> send_case<T, std::decay_t<F>> on_send(channel<T>& ch,
                                                                               V&& v, F&& f) {
  return {ch, T(std::forward<V>(v)), std::forward<F>(f)};
}
template <class T, class V>
requires std::constructible_from<T, V&&> send_case<T, detail::no_handler> on_send(channel<T>& ch,
                                                                                  V&& v) {
  return {ch, T(std::forward<V>(v)), {}};
}
// channel<void>: on_send(ch) / on_send(ch, f).
inline send_case<void, detail::no_handler> on_send(channel<void>& ch) {
  return {ch, {}, {}};
}
template <class F>
requires std::invocable<F&> send_case<void, std::decay_t<F>> on_send(channel<void>& ch, F&& f) {
  return {ch, {}, std::forward<F>(f)};
}
template <class F>
default_case<std::decay_t<F>> on_default(F&& f) {
  return default_case<std::decay_t<F>>(std::forward<F>(f));
}
inline default_case<detail::no_handler> on_default() {
  return default_case<detail::no_handler>({});
}

namespace detail {
template <class C>
inline constexpr bool is_kind(select_kind k) {
  return std::remove_cvref_t<C>::kind == k;
}
}  // namespace detail

// select(cases...): see the top of this file. Returns the position of the case taken.
// Throws std::invalid_argument for a select that could never complete (no enabled channel case,
// no on_default, no on_timeout) or that uses a channel in both directions; select_closed;
// block_trap_error, deadlock_error and the exception of a kill or throw, as a plain receive does.
template <class... C>
std::size_t select(C&&... cases) {
  using detail::select_kind;
  constexpr std::size_t n_default = (0 + ... + detail::is_kind<C>(select_kind::fallback));
  constexpr std::size_t n_timeout = (0 + ... + detail::is_kind<C>(select_kind::timeout));
  constexpr std::size_t n = (0 + ... + detail::is_kind<C>(select_kind::channel));
  static_assert(n_default <= 1, "stackless::select: at most one on_default case");
  static_assert(n_timeout <= 1, "stackless::select: at most one on_timeout case");
  static_assert(n_default + n_timeout <= 1,
                "stackless::select: with on_default it never waits, so on_timeout never fires");

  std::array<detail::select_case, n> rt{};
  std::array<unsigned, 2 * n> scratch{};
  {
    unsigned arg = 0;
    std::size_t i = 0;
    (
        [&](auto& c) {
          if constexpr (detail::is_kind<decltype(c)>(select_kind::channel)) c.bind(rt[i++], arg);
          ++arg;
        }(cases),
        ...);
  }
  // The position of the default or timeout case, and a call to complete the case at `arg`.
  constexpr std::size_t special = [] {
    std::size_t p = 0, at = 0;
    ((detail::is_kind<C>(select_kind::channel) ? void() : void(at = p), ++p), ...);
    return at;
  }();
  auto finish = [&](std::size_t arg) {
    std::size_t i = 0;
    (void)((i++ == arg ? (cases.complete(), true) : false) || ...);
    return arg;
  };

  if constexpr (n_default == 1) {
    const std::ptrdiff_t r = detail::select_run(rt.data(), n, scratch.data(), false, nullptr);
    if (r < 0) return finish(special);
    return finish(rt[static_cast<std::size_t>(r)].arg);
  } else if constexpr (n_timeout == 1) {
    auto& tc = std::get<special>(std::forward_as_tuple(cases...));
    // Try once first: a case that is ready needs no timer.
    std::ptrdiff_t r = detail::select_run(rt.data(), n, scratch.data(), false, nullptr);
    if (r < 0) {
      if (tc.expired()) return finish(special);
      struct ctx_t {
        detail::select_case* rt;
        unsigned* scratch;
        std::ptrdiff_t r;
        bool (*absorb)(std::exception_ptr);
      } ctx{rt.data(), scratch.data(), -1, tc.absorb};
      const bool done = tc.wait(
          [](void* p) {
            auto* c = static_cast<ctx_t*>(p);
            c->r = detail::select_run(c->rt, n, c->scratch, true, c->absorb);
          },
          &ctx);
      if (!done) return finish(special);
      r = ctx.r;
    }
    return finish(rt[static_cast<std::size_t>(r)].arg);
  } else {
    static_assert(n > 0, "stackless::select: no case: it would never complete");
    bool any = false;
    for (const auto& c : rt) any = any || c.enabled;
    if (!any)
      throw std::invalid_argument(
          "stackless::select: every case is disabled and there is no on_default or on_timeout: "
          "it would never complete");
    const std::ptrdiff_t r = detail::select_run(rt.data(), n, scratch.data(), true, nullptr);
    return finish(rt[static_cast<std::size_t>(r)].arg);
  }
}

}  // namespace stackless
