// Stack-overflow reporting on POSIX: a SIGSEGV on a tasklet's guard page is reported with the
// tasklet's name and stack size, then the default action runs (core dump). The handler runs on an
// alternate signal stack: the faulting stack is exhausted by definition. (Windows:
// overflow_win.cpp.)
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

#include "scheduler_internal.hpp"

namespace stackless::detail {
namespace {

struct sigaction g_prev_segv {};
std::atomic<bool> g_handler_installed{false};
thread_local char* tls_altstack = nullptr;

void write_str(const char* s) {
  (void)!::write(2, s, std::strlen(s));
}
void write_num(std::uint64_t v) {
  char buf[24];
  int i = 23;
  buf[i] = 0;
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  write_str(buf + i);
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  scheduler* s = tls_sched;
  if (s && info && s->stacks.guard_owner(info->si_addr)) {
    const stack_block* b = s->stacks.guard_owner(info->si_addr);
    tasklet_impl* t = s->current;
    write_str("stackless: stack overflow in tasklet ");
    if (t) {
      write_num(t->id);
      if (!t->name.empty()) {
        write_str(" '");
        write_str(t->name.c_str());
        write_str("'");
      }
    }
    write_str(" (stack size ");
    write_num(b->usable);
    write_str(
        " bytes); give it a larger stack with tasklet::set_stack_size() or "
        "stackless::set_default_stack_size()\n");
    ::signal(SIGSEGV, SIG_DFL);
    return;  // re-faults with the default action
  }
  // Not ours: hand over to whoever was installed before us (ASan, a crash reporter, default).
  if (g_prev_segv.sa_flags & SA_SIGINFO) {
    if (g_prev_segv.sa_sigaction) {
      g_prev_segv.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (g_prev_segv.sa_handler != SIG_DFL && g_prev_segv.sa_handler != SIG_IGN &&
             g_prev_segv.sa_handler != nullptr) {
    g_prev_segv.sa_handler(sig);
    return;
  }
  ::signal(SIGSEGV, SIG_DFL);
}

}  // namespace

void install_overflow_handler() {
  // Each thread needs its own alternate stack; the handler itself is process-wide.
  if (!tls_altstack) {
    const std::size_t sz = 64 * 1024;
    // Keep an alternate stack someone else installed (ASan does, and unmaps whatever is installed
    // when the thread ends: replacing it with ours makes that munmap fail).
    stack_t old{};
    if (::sigaltstack(nullptr, &old) == 0 && !(old.ss_flags & SS_DISABLE) &&
        old.ss_size >= sz / 4) {
      tls_altstack = static_cast<char*>(old.ss_sp);
    }
  }
  if (!tls_altstack) {
    const std::size_t sz = 64 * 1024;
    static thread_local std::unique_ptr<char[]> mem(new char[sz]);
    tls_altstack = mem.get();
    stack_t ss{};
    ss.ss_sp = tls_altstack;
    ss.ss_size = sz;
    ss.ss_flags = 0;
    ::sigaltstack(&ss, nullptr);
  }
  bool expected = false;
  if (g_handler_installed.compare_exchange_strong(expected, true)) {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_prev_segv);
  }
}

}  // namespace stackless::detail
