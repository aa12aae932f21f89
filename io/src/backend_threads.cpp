// The thread-pool backend: blocking pread/pwrite/fsync on a few worker threads, with completions
// handed back to the poller's thread (the ThreadPool variant of stacklessfile, and what Go does
// for regular files). Used when io_uring cannot be set up, or with
// STACKLESS_IO_BACKEND=threadpool. For page-cache copies it is the faster backend on small VMs
// (docs/performance.md).
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
// running op gets its cancel flag set and its worker is sent SIGURG, whose handler is
// installed without SA_RESTART, so a blocking read of a pipe returns EINTR and the worker
// completes the op with -ECANCELED instead of retrying. A signal that lands just before the
// worker enters the system call is lost; the poller therefore re-sends it every 10 ms while the
// cancellation is outstanding. If the application has its own SIGURG handler we leave it alone
// and simply wait for the worker to finish. Either way the op's buffer stays valid until the
// worker has handed the op back.
#include <fcntl.h>
//
// Sockets (op kinds accept..sendmsg) never go to a worker: a blocked thread per connection does
// not scale. They are performed by the poller's own thread, non-blocking (sockets are
// O_NONBLOCK), in poll(): an op that would block waits in a per-descriptor FIFO (one for the
// reading kinds, one for the writing kinds) and the descriptor is registered with an epoll set;
// poll() then waits in epoll_wait (with an eventfd the workers and wake() write) instead of on
// the condition variable, and retries the heads of the queues the kernel says are ready. A
// cancel takes a waiting op out of its queue: it was not performed, so it completes with
// -ECANCELED; one already performed has completed. A descriptor with no op waiting is removed
// from the set, so the owner may close it as soon as its ops are done.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

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
    default:
      return -EINVAL;  // sockets never run blocking (start() keeps them on the poller)
  }
  return n >= 0 ? static_cast<long>(n) : -errno;
}

namespace {

// pool_state: this backend's part of an op (op::backend_area, backend.hpp), created by start().
struct pool_state {
  pthread_t worker{};  // the worker running it (phase 1)
  // Phase 0 queued, 1 running on `worker`, 2 finished. Written by a worker under the pool's queue
  // lock, read by the poller under the same lock. A socket connect (the poller's own thread
  // only): 1 once the connect was started.
  int phase = 0;
  // cancel flag read by the worker between retries; release/acquire pairs it with the signal.
  std::atomic<bool> cancel{false};
};
pool_state& pool_of(op& o) noexcept {
  return op_state<pool_state>(o);
}

// reads_socket(k): the socket kinds that wait for input (the others wait to write).
bool reads_socket(op_kind k) noexcept {
  return k == op_kind::accept || k == op_kind::recv || k == op_kind::recvmsg;
}

// perform_socket(o): one non-blocking attempt at a socket op: bytes, a descriptor, 0 for a
// connect that is complete, -EAGAIN when it would block, or -errno. A connect is started once
// (phase 1 afterwards); later attempts ask the socket for its outcome (SO_ERROR).
long perform_socket(op& o) noexcept {
  for (;;) {
    ssize_t n = 0;
    switch (o.kind) {
      case op_kind::accept: {
        static_assert(sizeof(socklen_t) == sizeof o.addrlen);
        auto* len = reinterpret_cast<socklen_t*>(&o.addrlen);
        n = ::accept4(o.fd, static_cast<sockaddr*>(o.buf), len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        break;
      }
      case op_kind::connect:
        if (pool_of(o).phase == 0) {
          pool_of(o).phase = 1;
          n = ::connect(o.fd, static_cast<const sockaddr*>(o.buf), o.len);
          if (n < 0 && errno == EINPROGRESS) return -EAGAIN;
        } else {
          pollfd p{o.fd, POLLOUT, 0};
          if (::poll(&p, 1, 0) == 0) return -EAGAIN;
          int err = 0;
          socklen_t len = sizeof err;
          if (::getsockopt(o.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
          return -err;
        }
        break;
      case op_kind::recv:
        n = ::recv(o.fd, o.buf, o.len, o.msg_flags | MSG_DONTWAIT);
        break;
      case op_kind::send:
        n = ::send(o.fd, o.buf, o.len, o.msg_flags | MSG_DONTWAIT);
        break;
      case op_kind::recvmsg:
        n = ::recvmsg(o.fd, static_cast<msghdr*>(o.buf), o.msg_flags | MSG_DONTWAIT);
        break;
      case op_kind::sendmsg:
        n = ::sendmsg(o.fd, static_cast<const msghdr*>(o.buf), o.msg_flags | MSG_DONTWAIT);
        break;
      default:
        return -EINVAL;
    }
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return -EAGAIN;
    return -errno;
  }
}

long execute(op& o) {
  for (;;) {
    const long n = run_blocking(o);
    if (n >= 0 || o.kind == op_kind::close) return n;
    const int err = static_cast<int>(-n);
    // acquire: pairs with the poller's release store before it signals us.
    if (pool_of(o).cancel.load(std::memory_order_acquire)) {
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
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || efd_ < 0) {
      const int err = errno;
      if (ep_ >= 0) ::close(ep_);
      if (efd_ >= 0) ::close(efd_);
      throw std::system_error(err, std::generic_category(), "stackless: epoll/eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = efd_;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, efd_, &ev);
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
    ::close(ep_);
    ::close(efd_);
  }
  thread_backend(const thread_backend&) = delete;
  thread_backend& operator=(const thread_backend&) = delete;

  const char* name() const noexcept override { return "threadpool"; }

  void start(op& o) override {
    make_op_state<pool_state>(o);  // phase 0, not cancelled; not yet visible to any worker
    staged_.push_back(&o);
    if (is_socket_op(o.kind)) has_socket_ops_ = true;
  }

  void cancel(op& o) override {
    // Not yet handed to the workers: it never will be.
    if (auto it = std::find(staged_.begin(), staged_.end(), &o); it != staged_.end()) {
      staged_.erase(it);
      o.result = -ECANCELED;
      local_done_.push_back(&o);
      return;
    }
    if (is_socket_op(o.kind)) {
      // Waiting for readiness: not performed (only this thread performs socket ops).
      auto w = watches_.find(o.fd);
      if (w == watches_.end()) return;  // completed: already on local_done_
      auto& q = reads_socket(o.kind) ? w->second.rd : w->second.wr;
      if (auto it = std::find(q.begin(), q.end(), &o); it != q.end()) {
        q.erase(it);
        o.result = -ECANCELED;
        local_done_.push_back(&o);
        rearm(w);
      }
      return;
    }
    std::lock_guard lk(qm_);
    pool_state& ps = pool_of(o);
    if (ps.phase == 0) {
      jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &o));
      o.result = -ECANCELED;
      local_done_.push_back(&o);
    } else if (ps.phase == 1) {
      ps.cancel.store(true, std::memory_order_release);  // read by the worker after EINTR
      install_interrupt_handler();
      cancelling_.push_back(&o);
      interrupt(o);
    }
    // phase 2: finished; the completion is already on its way through done_.
  }

  void poll(std::vector<op*>& done, std::optional<std::chrono::nanoseconds> timeout) override {
    if (has_socket_ops_) stage_sockets();
    if (!staged_.empty() || !cancelling_.empty()) {
      std::size_t n = staged_.size();
      {
        std::lock_guard lk(qm_);
        jobs_.insert(jobs_.end(), staged_.begin(), staged_.end());
        for (op* o : cancelling_)
          if (pool_of(*o).phase == 1) interrupt(*o);  // the last signal may have come too early
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
    if (!watches_.empty()) {
      wait_ready(done, have_local ? std::optional(std::chrono::nanoseconds(0)) : timeout);
    } else {
      std::unique_lock lk(dm_);
      // value_or: no branch on the optional's payload (valgrind saw GCC test it before the flag).
      const bool may_wait = timeout.value_or(std::chrono::nanoseconds::max()).count() > 0;
      if (done_.empty() && !have_local && !woken_ && may_wait) {
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
    notify_poller();
  }

 private:
  // interrupt(o): o is running (qm_ held, so its worker is still on it or about to finish).
  static void interrupt(op& o) {
    // acquire: pairs with install_interrupt_handler()'s release.
    if (g_can_interrupt.load(std::memory_order_acquire))
      ::pthread_kill(pool_of(o).worker, kInterruptSignal);
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
        pool_of(*o).phase = 1;
        pool_of(*o).worker = ::pthread_self();
      }
      const long r = execute(*o);
      {
        std::lock_guard lk(qm_);
        pool_of(*o).phase = 2;  // from now on cancel() leaves it alone
      }
      o->result = r;
      std::lock_guard lk(dm_);
      done_.push_back(o);  // last touch of o
      notify_poller();
    }
  }

  // notify_poller(): dm_ held. Wakes the poller from whichever wait it is in.
  void notify_poller() noexcept {
    if (poller_waiting_) dcv_.notify_one();
    if (poller_in_epoll_) {
      const std::uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(efd_, &one, sizeof one);
    }
  }

  // ---- sockets: readiness ---------------------------------------------------------------
  struct watch {
    std::deque<op*> rd, wr;   // waiting ops, FIFO per direction
    std::uint32_t armed = 0;  // the events registered with ep_ (0: not registered)
  };
  using watch_it = std::unordered_map<int, watch>::iterator;

  // stage_sockets(): moves the staged socket ops to their descriptor's queue and tries each
  // new op at once when it is first in its queue (most are ready: no epoll round trip).
  void stage_sockets() {
    has_socket_ops_ = false;
    std::size_t keep = 0;
    for (op* o : staged_) {
      if (!is_socket_op(o->kind)) {
        staged_[keep++] = o;
        continue;
      }
      auto w = watches_.try_emplace(o->fd).first;
      auto& q = reads_socket(o->kind) ? w->second.rd : w->second.wr;
      q.push_back(o);
      if (q.size() == 1) advance(q);
      rearm(w);
    }
    staged_.resize(keep);
  }

  // advance(q): performs the ops at the head of q until one would block.
  void advance(std::deque<op*>& q) {
    while (!q.empty()) {
      op* o = q.front();
      const long r = perform_socket(*o);
      if (r == -EAGAIN) return;
      o->result = r;
      q.pop_front();
      local_done_.push_back(o);
    }
  }

  // rearm(w): registers w's descriptor for what its queues wait for; forgets it when nothing.
  void rearm(watch_it w) {
    const std::uint32_t want = (w->second.rd.empty() ? 0u : std::uint32_t{EPOLLIN}) |
                               (w->second.wr.empty() ? 0u : std::uint32_t{EPOLLOUT});
    const int fd = w->first;
    if (want == w->second.armed) {
      if (!want) watches_.erase(w);
      return;
    }
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = fd;
    if (!want) {
      ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, &ev);
      watches_.erase(w);
      return;
    }
    const int how = w->second.armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (::epoll_ctl(ep_, how, fd, &ev) != 0) {
      // Not pollable (a closed or wrong descriptor): every op waiting on it fails with the error.
      const long err = -errno;
      for (auto* q : {&w->second.rd, &w->second.wr}) {
        for (op* o : *q) {
          o->result = err;
          local_done_.push_back(o);
        }
        q->clear();
      }
      if (w->second.armed) ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, &ev);
      watches_.erase(w);
      return;
    }
    w->second.armed = want;
  }

  // wait_ready(done, timeout): the wait of poll() while sockets wait: epoll_wait on the sockets
  // and the eventfd (worker completions and wake()), then performs the ready ops.
  void wait_ready(std::vector<op*>& done, std::optional<std::chrono::nanoseconds> timeout) {
    int ms = -1;
    {
      std::lock_guard lk(dm_);
      if (!done_.empty() || woken_ || !local_done_.empty()) timeout = std::chrono::nanoseconds(0);
      if (!cancelling_.empty() && (!timeout || *timeout > kResignal)) timeout = kResignal;
      if (timeout) {
        // Round up: a deadline must not pass before we wake (epoll counts milliseconds).
        const auto m = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
        ms = static_cast<int>(std::min<long long>(m, 24LL * 3600 * 1000));
      }
      poller_in_epoll_ = ms != 0;
    }
    epoll_event evs[256];
    const int n = ::epoll_wait(ep_, evs, 256, ms);
    {
      std::lock_guard lk(dm_);
      poller_in_epoll_ = false;
      woken_ = false;
      done.insert(done.end(), done_.begin(), done_.end());
      done_.clear();
    }
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (fd == efd_) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(efd_, &v, sizeof v);
        continue;
      }
      auto w = watches_.find(fd);
      if (w == watches_.end()) continue;
      const std::uint32_t e = evs[i].events;
      if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) advance(w->second.rd);
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) advance(w->second.wr);
      rearm(w);
    }
    done.insert(done.end(), local_done_.begin(), local_done_.end());
    local_done_.clear();
  }

  // Poller-thread only.
  std::vector<op*> staged_;      // started since the last poll(): handed over in one batch
  std::vector<op*> local_done_;  // cancelled before a worker saw them
  std::vector<op*> cancelling_;  // running ops with a cancellation outstanding
  std::unordered_map<int, watch> watches_;  // sockets with ops waiting for readiness
  bool has_socket_ops_ = false;             // staged_ holds a socket op
  int ep_ = -1;                             // the epoll set of watches_ (and efd_)
  int efd_ = -1;                            // written by notify_poller() during wait_ready()

  std::mutex qm_;  // guards jobs_, stop_, and every op's pool_state phase / worker
  std::condition_variable qcv_;
  std::deque<op*> jobs_;
  bool stop_ = false;

  std::mutex dm_;  // guards done_, poller_waiting_, woken_
  std::condition_variable dcv_;
  std::vector<op*> done_;
  bool poller_waiting_ = false;
  bool poller_in_epoll_ = false;
  bool woken_ = false;

  std::vector<std::thread> workers_;  // last: started after every member above exists
};

}  // namespace

std::unique_ptr<backend> make_thread_backend() {
  return std::make_unique<thread_backend>();
}

bool try_at_once(op& o) noexcept {
  switch (o.kind) {
    case op_kind::recv:
    case op_kind::send:
    case op_kind::recvmsg:
    case op_kind::sendmsg:
      break;
    default:
      return false;
  }
  const long r = perform_socket(o);
  if (r == -EAGAIN) return false;
  o.result = r;
  return true;
}

}  // namespace stackless::io::detail
