// The biased lock's support (park.hpp): per-thread records, recycled between threads, and the
// revocation of a lock's bias through an asymmetric fence (membarrier on Linux; elsewhere, and
// under TSan, every biased_lock is a plain spinlock).
#ifdef __linux__
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <cstdlib>
#include <mutex>
#include <vector>

#include "scheduler_internal.hpp"

namespace stackless::detail {

constinit thread_local thread_rec* tls_rec = nullptr;

namespace {
// Records of ended threads, for reuse. Immortal (never destroyed): channels in static storage
// are still locked during exit, after static destructors may have run.
std::mutex& rec_mu() {
  static auto* m = new std::mutex;  // NOLINT: immortal
  return *m;
}
std::vector<thread_rec*>& free_recs() {
  static auto* v = new std::vector<thread_rec*>;  // NOLINT: immortal
  return *v;
}

bool init_bias() noexcept {
#if defined(STACKLESS_TSAN) || defined(_WIN32) || !defined(__linux__)
  return false;  // TSan can't see the asymmetric fence; Windows: not implemented
#else
  // Registration makes MEMBARRIER_CMD_PRIVATE_EXPEDITED (an IPI to the process's running
  // threads, no RCU grace period) available. Refused (old kernel, seccomp): no bias.
  return std::getenv("STACKLESS_NO_BIASED_LOCKS") == nullptr &&
         ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}
}  // namespace

bool g_bias_ok = init_bias();

// Hands the thread's record back at thread exit, also on a thread that takes channel locks
// without ever having a scheduler (one that only drops a channel's last handle, say).
struct rec_release {
  bool armed = false;
  ~rec_release() { release_thread_rec(); }
};
thread_local rec_release tls_rec_release;

thread_rec* make_thread_rec() noexcept {
  tls_rec_release.armed = true;  // first use registers the thread-exit release
  std::lock_guard lk(rec_mu());
  thread_rec* r;
  if (free_recs().empty()) {
    r = new thread_rec;  // NOLINT: never freed; a channel may point at it after the thread ends
  } else {
    r = free_recs().back();
    free_recs().pop_back();
  }
  tls_rec = r;
  return r;
}

void release_thread_rec() noexcept {
  thread_rec* r = tls_rec;
  if (!r || r->in_op.load(std::memory_order_relaxed) != nullptr) return;
  tls_rec = nullptr;
  std::lock_guard lk(rec_mu());
  try {
    free_recs().push_back(r);
  } catch (...) {  // out of memory: the record is leaked, which is harmless
  }
}

void revoke_bias(thread_rec* home, const void* lock, std::atomic<bool>& shared) noexcept {
  shared.store(true, std::memory_order_seq_cst);
#if defined(__linux__) && !defined(STACKLESS_TSAN)
  // Every running thread of the process executes a full barrier before this returns: the home
  // thread's store of in_op and our store of shared_ can no longer both miss each other.
  ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
#endif
  // acquire: what the home thread wrote inside its last biased section is visible to us.
  while (home->in_op.load(std::memory_order_acquire) == lock) biased_lock::pause();
}

}  // namespace stackless::detail
