// Baselines measured in the same binary as stackless: the bare Boost.Context switch and
// Boost.Fiber's yield and channel ping-pong. Each function returns nanoseconds per round trip.
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>
#include <boost/fiber/all.hpp>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "bench_util.hpp"

namespace bench {

// Bare jump_fcontext: main -> ctx -> main is one round trip (two one-way switches).
inline double fcontext_round_trip(std::int64_t n) {
  namespace ctx = boost::context::detail;
  constexpr std::size_t kStack = 64 * 1024;
  std::unique_ptr<char[]> stack(new char[kStack]);
  ctx::fcontext_t f = ctx::make_fcontext(stack.get() + kStack, kStack, [](ctx::transfer_t t) {
    for (;;) t = ctx::jump_fcontext(t.fctx, t.data);
  });
  ctx::transfer_t t = ctx::jump_fcontext(f, nullptr);  // enter once
  const std::int64_t t0 = now_ns();
  for (std::int64_t i = 0; i < n; ++i) t = ctx::jump_fcontext(t.fctx, nullptr);
  const std::int64_t t1 = now_ns();
  do_not_optimize(t);
  // The context is left suspended; its stack is freed (nothing on it needs unwinding).
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

// boost::context::fiber resume back and forth (the public API over the same fcontext).
inline double context_fiber_round_trip(std::int64_t n) {
  namespace bc = boost::context;
  bool stop = false;
  bc::fiber f{[&stop](bc::fiber&& m) {
    while (!stop) m = std::move(m).resume();
    return std::move(m);
  }};
  f = std::move(f).resume();  // enter once
  const std::int64_t t0 = now_ns();
  for (std::int64_t i = 0; i < n; ++i) f = std::move(f).resume();
  const std::int64_t t1 = now_ns();
  stop = true;
  f = std::move(f).resume();  // lets it return
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

// Boost.Fiber: two fibers yield to each other (round_robin); a round trip is two yields.
inline double fiber_yield_round_trip(std::int64_t n) {
  std::int64_t t0 = 0, t1 = 0;
  boost::fibers::fiber a([&] {
    t0 = now_ns();
    for (std::int64_t i = 0; i < n; ++i) boost::this_fiber::yield();
  });
  boost::fibers::fiber b([&] {
    for (std::int64_t i = 0; i < n; ++i) boost::this_fiber::yield();
    t1 = now_ns();
  });
  a.join();
  b.join();
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

// Boost.Fiber channel ping-pong between two fibers; Ch is unbuffered_channel<int> or
// buffered_channel<int> (capacity 2, holds 1).
template <class Ch, class... A>
double fiber_channel_round_trip(std::int64_t n, A... cap) {
  Ch ping(cap...), pong(cap...);
  std::int64_t t0 = 0, t1 = 0;
  boost::fibers::fiber a([&] {
    t0 = now_ns();
    for (std::int64_t i = 0; i < n; ++i) {
      ping.push(static_cast<int>(i));
      int v = 0;
      pong.pop(v);
      do_not_optimize(v);
    }
    t1 = now_ns();
  });
  boost::fibers::fiber b([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      int v = 0;
      ping.pop(v);
      pong.push(v);
    }
  });
  a.join();
  b.join();
  return static_cast<double>(t1 - t0) / static_cast<double>(n);
}

}  // namespace bench
