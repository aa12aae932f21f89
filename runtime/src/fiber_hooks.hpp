// Internal: the fiber annotations for AddressSanitizer, ThreadSanitizer and valgrind, in one
// place (folly's fibers keep theirs in two functions). Each hook is an inline function that
// compiles to nothing in a build without that tool. The scheduler calls them where a tasklet gets
// a stack, switches, or ends; the stack pool where stacks are mapped and unmapped. No other
// runtime source names a sanitizer's fiber API.
#pragma once

#include <cstddef>

#include "stack_pool.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACKLESS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define STACKLESS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define STACKLESS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define STACKLESS_TSAN 1
#endif

#ifdef STACKLESS_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
}
#endif
#ifdef STACKLESS_TSAN
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define STACKLESS_HAVE_VALGRIND 1
#endif

namespace stackless::detail {

// fiber_annotations: what the tools keep per tasklet (an empty struct without them).
struct fiber_annotations {
#ifdef STACKLESS_ASAN
  void* asan_fake = nullptr;          // ASan's fake stack of this tasklet while it is away
  const void* asan_bottom = nullptr;  // main only: the thread stack, learnt on its first switch
  std::size_t asan_size = 0;
#endif
#ifdef STACKLESS_TSAN
  void* tsan_fiber = nullptr;
#endif
};

// hook_thread_fiber(a): a (main tasklet) is the thread's own context (TSan: its current fiber).
inline void hook_thread_fiber([[maybe_unused]] fiber_annotations& a) noexcept {
#ifdef STACKLESS_TSAN
  a.tsan_fiber = __tsan_get_current_fiber();
#endif
}
// hook_thread_fiber_end(a): the thread is done with it; the thread's own fiber is not ours to
// destroy.
inline void hook_thread_fiber_end([[maybe_unused]] fiber_annotations& a) noexcept {
#ifdef STACKLESS_TSAN
  a.tsan_fiber = nullptr;
#endif
}
// hook_fiber_made(a): a tasklet got its stack and initial context.
inline void hook_fiber_made([[maybe_unused]] fiber_annotations& a) noexcept {
#ifdef STACKLESS_TSAN
  if (!a.tsan_fiber) a.tsan_fiber = __tsan_create_fiber(0);
#endif
}
// hook_fiber_freed(a): the tasklet's control block is being freed.
inline void hook_fiber_freed([[maybe_unused]] fiber_annotations& a) noexcept {
#ifdef STACKLESS_TSAN
  if (a.tsan_fiber) __tsan_destroy_fiber(a.tsan_fiber);
#endif
}

// hook_before_switch(from, from_finished, to, to_stack): right before the stack switch; to_stack
// is null for main (its thread stack, whose bounds ASan told us on its first switch away).
inline void hook_before_switch([[maybe_unused]] fiber_annotations& from,
                               [[maybe_unused]] bool from_finished,
                               [[maybe_unused]] fiber_annotations& to,
                               [[maybe_unused]] const stack_block* to_stack) noexcept {
#ifdef STACKLESS_ASAN
  __sanitizer_start_switch_fiber(
      from_finished ? nullptr : &from.asan_fake,
      to_stack ? static_cast<const void*>(to_stack->limit()) : to.asan_bottom,
      to_stack ? to_stack->usable : to.asan_size);
#endif
#ifdef STACKLESS_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}
// hook_after_switch(self, from, from_is_main): first thing after landing on self's stack.
inline void hook_after_switch([[maybe_unused]] fiber_annotations& self,
                              [[maybe_unused]] fiber_annotations& from,
                              [[maybe_unused]] bool from_is_main) noexcept {
#ifdef STACKLESS_ASAN
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(self.asan_fake, &bottom, &size);
  if (from_is_main && !from.asan_bottom) {
    from.asan_bottom = bottom;
    from.asan_size = size;
  }
#endif
}
// hook_finished_stack(lowest, stack): a finished tasklet's stack goes back to the pool. The
// frames still on it (tasklet_entry, finish, the switch) were left by a context switch, never
// returned from, so their ASan redzones stay poisoned; the next tasklet to get this stack would
// trip over them. `lowest` is the lowest of them (the context it left).
inline void hook_finished_stack([[maybe_unused]] const void* lowest,
                                [[maybe_unused]] const stack_block& stack) noexcept {
#ifdef STACKLESS_ASAN
  __asan_unpoison_memory_region(
      lowest, static_cast<std::size_t>(stack.top() - static_cast<const char*>(lowest)));
#endif
}

// hook_stack_mapped(b) / hook_stack_unmapped(b): valgrind is told where a pooled stack lives, so
// that it does not take a switch for a huge stack-pointer move.
inline void hook_stack_mapped([[maybe_unused]] stack_block& b) noexcept {
#ifdef STACKLESS_HAVE_VALGRIND
  b.valgrind_id = VALGRIND_STACK_REGISTER(b.limit(), b.top());
#endif
}
inline void hook_stack_unmapped([[maybe_unused]] const stack_block& b) noexcept {
#ifdef STACKLESS_HAVE_VALGRIND
  VALGRIND_STACK_DEREGISTER(b.valgrind_id);
#endif
}

}  // namespace stackless::detail
