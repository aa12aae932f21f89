// Windows: the calling thread's scheduler, owned through a pthread key (docs/windows.md). POSIX
// builds own it with a thread_local (scheduler.cpp).
#include "win32.hpp"

#include <cxxabi.h>

#include <cstdlib>

#include "scheduler_internal.hpp"

namespace stackless::detail {
namespace {

// MinGW: thread_local variables live in emutls blocks, which libgcc frees at thread exit from a
// pthread key destructor made on the process's first thread_local access; winpthreads runs key
// destructors in creation order. The scheduler is owned by a pthread key of its own, created
// during static initialisation, before emutls' key: its destructor runs first, with the thread's
// thread_locals intact, as on Linux (were emutls first, it would find tls_sched reset).
void destroy_thread_scheduler(void* p) {
  tls_sched = static_cast<scheduler*>(p);  // the same value unless emutls was torn down first
  delete tls_sched;                        // NOLINT: owned through the key
  tls_sched = nullptr;
}

// libstdc++ runs a thread's thread_local destructors from a pthread key too, made by the
// process's first __cxa_thread_atexit (the first thread_local with a destructor), so normally
// after emutls' key (that thread_local was reached through emutls first): the destructors ran
// after emutls had freed every thread_local, on freed memory. A thread_local tasklet handle read
// a stale pointer and freed its tasklet twice (heap corruption, then a crash or a hang under
// Wine: test_thread_exit_kills_all_kinds). Registering a no-op for the initialising thread right
// after our key makes libstdc++'s key next, before emutls': a thread's exit destroys its
// scheduler, then its thread_locals (storage intact), then emutls frees their storage. (This
// also registers libstdc++'s atexit handler that early: for the thread that calls exit(), its
// thread_local destructors run after the handler below and after the destructors of statics
// made later.)
void nothing(void*) noexcept {}

pthread_key_t scheduler_key() {
  static const pthread_key_t key = [] {
    pthread_key_t k{};
    if (::pthread_key_create(&k, destroy_thread_scheduler) != 0) std::abort();
    static char anchor;
    if (abi::__cxa_thread_atexit(nothing, &anchor, nullptr) != 0) std::abort();
    return k;
  }();
  return key;
}
[[maybe_unused]] const pthread_key_t g_scheduler_key_early = scheduler_key();

// Key destructors do not run for the thread that calls exit(); Linux runs its thread_local
// destructors, which kill its tasklets. An atexit handler (registered when the first scheduler
// is made, so it runs before the destructors of statics made earlier) does the same here.
void destroy_exiting_thread_scheduler() {
  if (void* p = ::pthread_getspecific(scheduler_key())) {
    ::pthread_setspecific(scheduler_key(), nullptr);
    destroy_thread_scheduler(p);
  }
}

}  // namespace

scheduler* new_thread_scheduler() {
  static const bool at_exit = std::atexit(destroy_exiting_thread_scheduler) == 0;
  (void)at_exit;
  auto* s = new scheduler;  // NOLINT: owned through scheduler_key()
  ::pthread_setspecific(scheduler_key(), s);
  return s;
}

}  // namespace stackless::detail
