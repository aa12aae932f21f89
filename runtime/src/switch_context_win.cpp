// Windows: tasklet contexts are Win32 fibers (see switch_context.hpp and docs/windows.md).
//
// switch_context(to, data) keeps jump_fcontext's contract: the resumed side receives
// transfer_t{the context just left, data}. The pair travels in a thread-local slot written just
// before SwitchToFiber and read by whoever runs next on this thread (a returning
// switch_context, or fiber_start for a fiber's first run).
#ifdef _WIN32

#include "win32.hpp"

#include <cstdlib>

#include "switch_context.hpp"

namespace stackless::detail {

namespace ctx = boost::context::detail;

namespace {

thread_local ctx::transfer_t t_transfer{};
thread_local bool t_converted = false;  // thread_context_init() made this thread a fiber

// GetCurrentFiber() without its __readgsqword, which GCC 12 flags with -Warray-bounds: the TEB's
// NT_TIB.FiberData, at gs:0x20 on x64.
void* current_fiber() noexcept {
  void* f;
  asm volatile("movq %%gs:0x20, %0" : "=r"(f));
  return f;
}

void WINAPI fiber_start(void* param) {
  auto* b = static_cast<stack_block*>(param);
  b->entry(t_transfer);
  std::abort();  // a tasklet's entry never returns: it switches away for good when it ends
}

}  // namespace

void thread_context_init() {
  if (::IsThreadAFiber()) return;
  if (!::ConvertThreadToFiberEx(nullptr, FIBER_FLAG_FLOAT_SWITCH)) std::abort();
  t_converted = true;
}

void thread_context_fini() noexcept {
  if (t_converted) {
    ::ConvertFiberToThread();
    t_converted = false;
  }
}

ctx::fcontext_t make_context(stack_block& stack, context_entry entry) noexcept {
  stack.entry = entry;
  return stack.fiber;
}

void* new_fiber(stack_block& stack, std::size_t reserve) noexcept {
  return ::CreateFiberEx(0, reserve, FIBER_FLAG_FLOAT_SWITCH, fiber_start, &stack);
}

ctx::transfer_t switch_context(ctx::fcontext_t to, void* data) noexcept {
  t_transfer = ctx::transfer_t{current_fiber(), data};
  ::SwitchToFiber(to);
  return t_transfer;
}

}  // namespace stackless::detail

#endif  // _WIN32
