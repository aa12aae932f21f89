// Stack-overflow reporting on Windows (docs/windows.md). A fiber that runs into the guard page
// below its stack raises EXCEPTION_STACK_OVERFLOW; a vectored handler reports it with the
// tasklet's name, then ends the process with that status (left to the default handling, Wine
// would start its debugger). Under Wine the handler never runs: Wine cannot deliver the exception
// on an exhausted fiber stack and ends the process. (POSIX: overflow_posix.cpp.)
#include "win32.hpp"

#include <cstdio>
#include <cstring>

#include "scheduler_internal.hpp"

namespace stackless::detail {
namespace {

void write_err(const char* s) noexcept {
  DWORD n = 0;
  ::WriteFile(::GetStdHandle(STD_ERROR_HANDLE), s, static_cast<DWORD>(std::strlen(s)), &n, nullptr);
}

LONG CALLBACK on_stack_overflow(EXCEPTION_POINTERS* ep) {
  if (ep->ExceptionRecord->ExceptionCode != EXCEPTION_STACK_OVERFLOW)
    return EXCEPTION_CONTINUE_SEARCH;
  scheduler* s = tls_sched;
  tasklet_impl* t = s ? s->current : nullptr;
  if (!t || !t->stack) return EXCEPTION_CONTINUE_SEARCH;  // the thread's own stack: not ours
  char num[48];
  write_err("stackless: stack overflow in tasklet ");
  std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(t->id));
  write_err(num);
  if (!t->name.empty()) {
    write_err(" '");
    write_err(t->name.c_str());
    write_err("'");
  }
  std::snprintf(num, sizeof num, " (stack size %llu",
                static_cast<unsigned long long>(t->stack->usable));
  write_err(num);
  write_err(
      " bytes); give it a larger stack with tasklet::set_stack_size() or "
      "stackless::set_default_stack_size()\n");
  ::TerminateProcess(::GetCurrentProcess(), static_cast<UINT>(EXCEPTION_STACK_OVERFLOW));
  return EXCEPTION_CONTINUE_SEARCH;
}

}  // namespace

void install_overflow_handler() {
  // Room for the handler below the guard page, on every fiber of this thread (the guarantee is
  // the thread's).
  ULONG guarantee = 32 * 1024;
  ::SetThreadStackGuarantee(&guarantee);
  static const PVOID handler = ::AddVectoredExceptionHandler(1, on_stack_overflow);
  (void)handler;
}

}  // namespace stackless::detail
