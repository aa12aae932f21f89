// switch_context(to, data): the stack switch the scheduler uses. Same contract and the same
// saved-context layout as Boost.Context's jump_fcontext (contexts made by make_fcontext or saved
// by either can be resumed by the other), but on x86-64 it ends with `ret` instead of
// `jmp *%r8`.
//
// Why: jump_fcontext is entered with `call` and leaves with an indirect `jmp`, so every switch
// leaves one unmatched entry on the CPU's return-address predictor; the next `ret` of the
// resumed tasklet (the scheduler function that switched) is then mispredicted. A scheduler pays
// that on every switch (measured: schedule() round trip 38 ns with jump_fcontext against 13 ns
// with this, where a bare jump_fcontext loop, which never returns, takes ~8-13 ns). Ending in
// `ret` keeps call/ret paired; as every switch goes through the same call site, the prediction
// is right.
//
// make_context(stack, entry) makes the initial context of a tasklet on a pooled stack;
// thread_context_init()/thread_context_fini() bracket a thread's scheduler.
//
// Windows (switch_context_win.cpp): the contexts are Win32 fibers, and fcontext_t holds a fiber
// address. Boost.Context's fcontext assembly for Windows terminates the process on any exception
// thrown on a fiber stack under Wine (Boost.Context issues #100 and #138); fibers keep the TEB's
// stack bounds right, so SEH unwinding (C++ exceptions, tasklet kills) works. See
// docs/windows.md.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include "stack_pool.hpp"

#if defined(__x86_64__) && defined(__ELF__) && !defined(STACKLESS_BOOST_SWITCH)
#define STACKLESS_OWN_SWITCH 1
extern "C" boost::context::detail::transfer_t stackless_switch_fcontext(
    boost::context::detail::fcontext_t to, void* data) noexcept;
#endif

namespace stackless::detail {

using context_entry = void (*)(boost::context::detail::transfer_t) noexcept;

#ifdef _WIN32

// The calling thread becomes a fiber (unless it already is one) for its scheduler's lifetime.
void thread_context_init();
void thread_context_fini() noexcept;
// The stack's fiber, to start in entry(transfer_t{creator's context, data of the first switch}).
boost::context::detail::fcontext_t make_context(stack_block& stack, context_entry entry) noexcept;
boost::context::detail::transfer_t switch_context(boost::context::detail::fcontext_t to,
                                                  void* data) noexcept;
// new_fiber(stack, reserve): a fiber with `reserve` bytes of stack that runs stack.entry (for
// stack_pool_win.cpp). Null with GetLastError() set when Windows refuses.
void* new_fiber(stack_block& stack, std::size_t reserve) noexcept;

#else

inline void thread_context_init() noexcept {}
inline void thread_context_fini() noexcept {}

inline boost::context::detail::fcontext_t make_context(stack_block& stack,
                                                       context_entry entry) noexcept {
  return boost::context::detail::make_fcontext(stack.top(), stack.usable, entry);
}

inline boost::context::detail::transfer_t switch_context(boost::context::detail::fcontext_t to,
                                                         void* data) noexcept {
#ifdef STACKLESS_OWN_SWITCH
  return stackless_switch_fcontext(to, data);
#else
  return boost::context::detail::jump_fcontext(to, data);
#endif
}

#endif

}  // namespace stackless::detail
