// The thread-pool backend: blocking pread/pwrite/fsync on a few worker threads, with completions
// handed back to the poller's thread (the ThreadPool variant of stacklessfile, and what Go does
// for regular files). Used when io_uring cannot be set up, or with
// STACKLESS_IO_BACKEND=threadpool. For page-cache copies it is the faster backend on small VMs
// (docs/peers.md §0.8).
//
// Handoffs (every cross-thread transfer goes through one of two mutexes):
//   poller -> worker: ops are appended to jobs_ under qm_; qcv_ wakes a worker. The worker reads
//     the op's fields after taking qm_, so it sees everything the poller wrote before unlocking.
//   worker -> poller: the worker writes op.result, then appends the op to done_ under dm_; the
//     poller reads result only after taking dm_ and finding the op there. After that append the
//     worker never touches the op again, so the poller may hand it back to its tasklet at once.
//   Wakeup: the worker decides whether to notify while still holding dm_ (poller_waiting_ is
//     written only under dm_), so a wakeup cannot be lost between the poller's check and its wait.
//
// Cancellation: an op not yet picked up by a worker is removed and completes with -ECANCELED. A
// running op gets its pool_cancel flag set and its worker is sent SIGURG, whose handler is
// installed without SA_RESTART, so a blocking read of a pipe returns EINTR and the worker
// completes the op with -ECANCELED instead of retrying. A signal that lands just before the
// worker enters the system call is lost; the poller therefore re-sends it every 10 ms while the
// cancellation is outstanding. If the application has its own SIGURG handler we leave it alone
// and simply wait for the worker to finish. Either way the op's buffer stays valid until the
// worker has handed the op back.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "backend.hpp"

namespace stackless::io::detail {
static_assert(kCancelled == -ECANCELED);
namespace {

constexpr int kWorkers = 4;
constexpr int kInterruptSignal = SIGURG;  // ignored by default, so a stray one harms nobody
constexpr auto kResignal = std::chrono::milliseconds(10);

std::atomic<bool> g_can_interrupt{false};

extern "C" void on_interrupt(int) {}

void install_interrupt_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old {};
    if (::sigaction(kInterruptSignal, nullptr, &old) != 0) return;
    const bool ours_to_take =
        !(old.sa_flags & SA_SIGINFO) && (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN);
    if (!ours_to_take) return;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sa.sa_flags = 0;  // no SA_RESTART: the blocking system call must return EINTR
    sigemptyset(&sa.sa_mask);
    if (::sigaction(kInterruptSignal, &sa, nullptr) == 0) {
      // release: pairs with the acquire in cancel(); the handler is in place before any kill.
      g_can_interrupt.store(true, std::memory_order_release);
    }
  });
}

}  // namespace

long run_blocking(op& o) noexcept {
  ssize_t n = 0;
  switch (o.kind) {
    case op_kind::read:
      n = o.offset < 0 ? ::read(o.fd, o.buf, o.len) : ::pread(o.fd, o.buf, o.len, o.offset);
      break;
    case op_kind::write:
      n = o.offset < 0 ? ::write(o.fd, o.buf, o.len) : ::pwrite(o.fd, o.buf, o.len, o.offset);
      break;
    case op_kind::fsync:
      n = ::fsync(o.fd);
      break;
    case op_kind::openat:
      n = ::open(static_cast<const char*>(o.buf), o.open_flags, o.open_mode);
      break;
    case op_kind::close:
      // Never retried: on Linux the descriptor is released even when close() says EINTR.
      return ::close(o.fd) == 0 ? 0 : (errno == EINTR ? 0 : -errno);
    case op_kind::ftruncate:
      n = ::ftruncate(o.fd, o.offset);
      break;
  }
  return n >= 0 ? static_cast<long>(n) : -errno;
}

namespace {

long execute(op& o) {
  for (;;) {
    const long n = run_blocking(o);
    if (n >= 0 || o.kind == op_kind::close) return n;
    const int err = static_cast<int>(-n);
    // acquire: pairs with the poller's release store before it signals us.
    if (o.pool_cancel.load(std::memory_order_acquire)) {
      return -ECANCELED;  // (a call that succeeded returned above, cancelled or not)
    }
    if (err == EINTR) continue;  // a signal meant for another job, or for the process
    if (err == EAGAIN && (o.kind == op_kind::read || o.kind == op_kind::write)) {
      // A non-blocking descriptor: wait until it is ready.
      pollfd p{o.fd, static_cast<short>(o.kind == op_kind::read ? POLLIN : POLLOUT), 0};
      ::poll(&p, 1, -1);
      continue;
    }
    return -err;
  }
}

class thread_backend final : public backend {
 public:
  thread_backend() {
    workers_.reserve(kWorkers);
    for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { work(); });
  }
  ~thread_backend() override {
    {
      std::lock_guard lk(qm_);
      stop_ = true;
    }
    qcv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  thread_backend(const thread_backend&) = delete;
  thread_backend& operator=(const thread_backend&) = delete;

  const char* name() const noexcept override { return "threadpool"; }

  void start(op& o) override {
    o.pool_phase = 0;
    o.pool_cancel.store(false, std::memory_order_relaxed);  // not yet visible to any worker
    staged_.push_back(&o);
  }

  void cancel(op& o) override {
    // Not yet handed to the workers: it never will be.
    if (auto it = std::find(staged_.begin(), staged_.end(), &o); it != staged_.end()) {
      staged_.erase(it);
      o.result = -ECANCELED;
      local_done_.push_back(&o);
      return;
    }
    std::lock_guard lk(qm_);
    if (o.pool_phase == 0) {
      jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &o));
      o.result = -ECANCELED;
      local_done_.push_back(&o);
    } else if (o.pool_phase == 1) {
      o.pool_cancel.store(true, std::memory_order_release);  // read by the worker after EINTR
      install_interrupt_handler();
      cancelling_.push_back(&o);
      interrupt(o);
    }
    // pool_phase 2: finished; the completion is already on its way through done_.
  }

  void poll(std::vector<op*>& done, std::optional<std::chrono::nanoseconds> timeout) override {
    if (!staged_.empty() || !cancelling_.empty()) {
      std::size_t n = staged_.size();
      {
        std::lock_guard lk(qm_);
        jobs_.insert(jobs_.end(), staged_.begin(), staged_.end());
        for (op* o : cancelling_)
          if (o->pool_phase == 1) interrupt(*o);  // the last signal may have come too early
      }
      staged_.clear();
      if (n == 1)
        qcv_.notify_one();
      else if (n > 1)
        qcv_.notify_all();
    }
    done.insert(done.end(), local_done_.begin(), local_done_.end());
    const bool have_local = !local_done_.empty();
    local_done_.clear();
    {
      std::unique_lock lk(dm_);
      if (done_.empty() && !have_local && !woken_ && (!timeout || timeout->count() > 0)) {
        auto limit = timeout;
        if (!cancelling_.empty() && (!limit || *limit > kResignal)) limit = kResignal;
        poller_waiting_ = true;
        auto ready = [this] { return !done_.empty() || woken_; };
        if (limit)
          dcv_.wait_for(lk, *limit, ready);
        else
          dcv_.wait(lk, ready);
        poller_waiting_ = false;
      }
      woken_ = false;
      done.insert(done.end(), done_.begin(), done_.end());
      done_.clear();
    }
    if (!cancelling_.empty()) {
      std::erase_if(cancelling_,
                    [&](op* o) { return std::find(done.begin(), done.end(), o) != done.end(); });
    }
  }

  void wake() noexcept override {
    std::lock_guard lk(dm_);
    woken_ = true;
    if (poller_waiting_) dcv_.notify_one();
  }

 private:
  // interrupt(o): o is running (qm_ held, so its worker is still on it or about to finish).
  static void interrupt(op& o) {
    // acquire: pairs with install_interrupt_handler()'s release.
    if (g_can_interrupt.load(std::memory_order_acquire))
      ::pthread_kill(static_cast<pthread_t>(o.pool_worker), kInterruptSignal);
  }

  void work() {
    // Workers take no process signals (they belong to the application's threads); only the
    // interrupt that cancels a blocking system call gets through.
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, kInterruptSignal);
    ::pthread_sigmask(SIG_SETMASK, &all, nullptr);
    for (;;) {
      op* o;
      {
        std::unique_lock lk(qm_);
        qcv_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stop_
        o = jobs_.front();
        jobs_.pop_front();
        o->pool_phase = 1;
        o->pool_worker = static_cast<unsigned long>(::pthread_self());
      }
      const long r = execute(*o);
      {
        std::lock_guard lk(qm_);
        o->pool_phase = 2;  // from now on cancel() leaves it alone
      }
      o->result = r;
      std::lock_guard lk(dm_);
      done_.push_back(o);  // last touch of o
      if (poller_waiting_) dcv_.notify_one();
    }
  }

  // Poller-thread only.
  std::vector<op*> staged_;      // started since the last poll(): handed over in one batch
  std::vector<op*> local_done_;  // cancelled before a worker saw them
  std::vector<op*> cancelling_;  // running ops with a cancellation outstanding

  std::mutex qm_;  // guards jobs_, stop_, and every op's pool_phase / pool_worker
  std::condition_variable qcv_;
  std::deque<op*> jobs_;
  bool stop_ = false;

  std::mutex dm_;  // guards done_, poller_waiting_, woken_
  std::condition_variable dcv_;
  std::vector<op*> done_;
  bool poller_waiting_ = false;
  bool woken_ = false;

  std::vector<std::thread> workers_;  // last: started after every member above exists
};

}  // namespace

std::unique_ptr<backend> make_thread_backend() {
  return std::make_unique<thread_backend>();
}

}  // namespace stackless::io::detail
