// STACKLESS_ASSERT(cond, what): checks an internal invariant of the library (any layer may use
// it). A failure is a bug in stackless, never the user's error: it prints
// "stackless: internal error: <what> (<cond>) at <file>:<line>" and aborts; it is never an
// exception a caller could swallow. On when the library is built with STACKLESS_ENABLE_ASSERTS
// (CMake STACKLESS_ASSERTS: by default on in Debug, sanitizer and fuzz builds, off in Release);
// off, the condition is not evaluated.
//
// STACKLESS_CHECK_INVARIANTS (CMake option of the same name, on in fuzz builds) additionally
// walks whole structures (the run ring, the I/O poller's operation lists) after each change:
// O(n) per operation, so it stays off in the Debug and sanitizer lanes.
#pragma once

namespace stackless::detail {
[[noreturn]] void assert_failed(const char* cond, const char* what, const char* file,
                                int line) noexcept;
}  // namespace stackless::detail

#ifdef STACKLESS_ENABLE_ASSERTS
#define STACKLESS_ASSERT(cond, what) \
  (static_cast<bool>(cond) ? void(0) \
                           : ::stackless::detail::assert_failed(#cond, what, __FILE__, __LINE__))
#else
#define STACKLESS_ASSERT(cond, what) void(0)
#endif
