// Windows: every tasklet stack is a Win32 fiber's (stack_pool.hpp, switch_context_win.cpp).
// Windows reserves the stack, commits it as it grows and keeps a guard page below it; a fiber
// that has run cannot be restarted, so release() deletes it and nothing is pooled (pooled() is
// always 0, mapped() == in_use()).
#ifdef _WIN32

#include "win32.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "stack_pool.hpp"
#include "stackless/runtime/errors.hpp"
#include "switch_context.hpp"

namespace stackless::detail {

namespace {
// Added to the reserve: the guard page and the stack guarantee Windows keeps for exception
// dispatch come out of the reserve, and the tasklet must still get what it asked for.
constexpr std::size_t kReserveSlack = 64 * 1024;
// Larger requests are refused up front (stack_error): reserving tens of TiB of address space
// succeeds on 64-bit Windows and under Wine, but takes Wine tens of seconds, and no tasklet
// needs it.
constexpr std::size_t kMaxStack = std::size_t{1} << 40;
}  // namespace

std::size_t stack_pool::page_size() noexcept {
  static const std::size_t ps = [] {
    SYSTEM_INFO si;
    ::GetSystemInfo(&si);
    return static_cast<std::size_t>(si.dwPageSize);
  }();
  return ps;
}

stack_pool::~stack_pool() = default;  // every fiber is deleted by release()

stack_block* stack_pool::acquire(std::size_t usable_bytes) {
  const std::size_t ps = page_size();
  if (usable_bytes > kMaxStack) {
    throw stack_error("stackless: tasklet stack size of " + std::to_string(usable_bytes) +
                      " bytes is too large");
  }
  auto b = std::make_unique<stack_block>();
  b->usable = b->size = (usable_bytes + ps - 1) / ps * ps;
  b->guarded = true;
  b->fiber = new_fiber(*b, b->usable + kReserveSlack);
  if (!b->fiber) {
    const auto err = static_cast<int>(::GetLastError());
    throw stack_error("stackless: cannot create a fiber with a stack of " +
                      std::to_string(b->usable) + " bytes: " + std::system_category().message(err));
  }
  guard_install_ok_ = 1;
  ++in_use_;
  ++mapped_;
  ++guarded_;
  return b.release();
}

void stack_pool::release(stack_block* b) noexcept {
  ::DeleteFiber(b->fiber);
  delete b;  // NOLINT: made by acquire()
  --in_use_;
  --mapped_;
  --guarded_;
}

const stack_block* stack_pool::guard_owner(const void*) const noexcept {
  return nullptr;
}

}  // namespace stackless::detail

#endif  // _WIN32
