// The io_uring backend: one ring per poller thread, one io_uring_enter per poll().
//
// Rings are created with SINGLE_ISSUER | DEFER_TASKRUN when the kernel accepts them (kernel 6.1+):
// only the poller's thread touches the ring, and completion work runs when the poller asks for
// events, never as an interrupt of whatever tasklet is running. Older kernels get COOP_TASKRUN,
// then no flags. Buffered reads that hit the page cache complete inline during submission;
// buffered writes may be punted to io-wq workers.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "backend.hpp"

#ifdef STACKLESS_HAVE_LIBURING
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace stackless::io::detail {

#ifdef STACKLESS_HAVE_LIBURING
namespace {

constexpr unsigned kEntries = 256;
// user_data of cancel SQEs: never a valid op* (ops are aligned), so poll() can skip their CQEs.
constexpr std::uint64_t kCancelTag = 1;
// user_data of the wake-up poll on the eventfd (see wake()).
constexpr std::uint64_t kWakeTag = 2;
// IORING_OP_FTRUNCATE (Linux 6.9), missing from liburing 2.3's headers.
constexpr int kOpFtruncate = 55;

// Rings are set up and torn down under one mutex. liburing maps and unmaps ring memory with raw
// system calls, which TSan does not see: a new thread's ring mapped where an ended thread's was
// would look like a race on the SQEs. The mutex orders the two (and costs nothing: rings are
// made once per thread).
std::mutex& ring_mu() {
  static std::mutex m;
  return m;
}

void exit_ring(io_uring& ring) {
  std::lock_guard lk(ring_mu());
  io_uring_queue_exit(&ring);
}

int setup_ring(io_uring& ring, unsigned entries) {
  std::lock_guard lk(ring_mu());
  const unsigned flag_sets[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                IORING_SETUP_COOP_TASKRUN, 0};
  int rc = -EINVAL;
  for (unsigned flags : flag_sets) {
    io_uring_params p{};
    p.flags = flags;
    rc = io_uring_queue_init_params(entries, &ring, &p);
    if (rc != -EINVAL) return rc;  // success, or a refusal no other flag set changes
  }
  return rc;
}

class uring_backend final : public backend {
 public:
  uring_backend(const io_uring& r, int efd) : ring_(r), efd_(efd) {}
  ~uring_backend() override {
    exit_ring(ring_);
    ::close(efd_);
  }
  uring_backend(const uring_backend&) = delete;
  uring_backend& operator=(const uring_backend&) = delete;

  const char* name() const noexcept override { return "io_uring"; }

  // start(o) only stages o: its SQE is written in poll(), right before the submission, so that a
  // cancel() before then takes it back and the kernel never sees it (a killed write must not
  // reach the file).
  void start(op& o) override { staged_.push_back(&o); }

  void cancel(op& o) override {
    if (auto it = std::find(staged_.begin(), staged_.end(), &o); it != staged_.end()) {
      staged_.erase(it);
      o.result = kCancelled;
      local_done_.push_back(&o);
      return;
    }
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel(sqe, &o, 0);
    io_uring_sqe_set_data64(sqe, kCancelTag);
    ++inflight_;  // the cancel's own CQE
  }

  void poll(std::vector<op*>& done, std::optional<std::chrono::nanoseconds> timeout) override {
    if (!probed_) probe_opcodes();
    for (op* o : staged_) prepare(*o);
    staged_.clear();
    if (!local_done_.empty()) {
      done.insert(done.end(), local_done_.begin(), local_done_.end());
      local_done_.clear();
      timeout = std::chrono::nanoseconds(0);  // something completed already: do not wait
    }
    int rc = 0;
    if ((!timeout || timeout->count() > 0) && !wake_armed_) {
      // About to wait: a poll on the eventfd lets wake() end the wait from another thread. A
      // wake() that came before this pass leaves the eventfd readable, so it is not lost.
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_poll_add(sqe, efd_, POLLIN);
      io_uring_sqe_set_data64(sqe, kWakeTag);
      wake_armed_ = true;
      ++inflight_;
    }
    if ((timeout && timeout->count() <= 0) || io_uring_cq_ready(&ring_) > 0) {
      // Submit and run deferred completion work without waiting: one io_uring_enter.
      if (io_uring_sq_ready(&ring_) || inflight_) rc = io_uring_submit_and_get_events(&ring_);
    } else if (timeout) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{};
      ts.tv_sec = timeout->count() / 1'000'000'000;
      ts.tv_nsec = timeout->count() % 1'000'000'000;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    } else {
      rc = io_uring_submit_and_wait(&ring_, 1);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      std::fprintf(stderr, "stackless: io_uring_enter failed: %s\n", std::strerror(-rc));
      std::abort();  // the ring is unusable; ops in flight could never complete
    }
    reap(done);
  }

  void wake() noexcept override {
    // Only the poller's own thread submits to the ring; another thread wakes it through the
    // eventfd its wait also polls (armed in poll()).
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(efd_, &one, sizeof one);
  }

 private:
  void prepare(op& o) {
    if (o.kind == op_kind::ftruncate && !has_ftruncate_) {
      // An older kernel: the call on this thread (short on a local file system).
      o.result = run_blocking(o);
      local_done_.push_back(&o);
      return;
    }
    if (o.kind == op_kind::external) {  // Windows only (backend.hpp): not an io_uring op
      o.result = -EINVAL;
      local_done_.push_back(&o);
      return;
    }
    io_uring_sqe* sqe = get_sqe();
    const auto off = static_cast<__u64>(o.offset);  // -1 = current position (streams)
    switch (o.kind) {
      case op_kind::read:
        io_uring_prep_read(sqe, o.fd, o.buf, o.len, off);
        break;
      case op_kind::write:
        io_uring_prep_write(sqe, o.fd, o.buf, o.len, off);
        break;
      case op_kind::fsync:
        io_uring_prep_fsync(sqe, o.fd, 0);
        break;
      case op_kind::openat:
        io_uring_prep_openat(sqe, AT_FDCWD, static_cast<const char*>(o.buf), o.open_flags,
                             o.open_mode);
        // Straight to an io-wq worker: tried inline first, the kernel opens with O_NONBLOCK,
        // and a FIFO's read end then opens at once (and reads EOF) instead of waiting for a
        // writer as open(2) does.
        io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
        break;
      case op_kind::close:
        io_uring_prep_close(sqe, o.fd);
        break;
      case op_kind::ftruncate:
        // liburing 2.3 has no io_uring_prep_ftruncate (kernel 6.9+); the SQE is the same.
        io_uring_prep_rw(kOpFtruncate, sqe, o.fd, nullptr, 0, static_cast<__u64>(o.offset));
        break;
      case op_kind::accept:
        static_assert(sizeof(socklen_t) == sizeof o.addrlen);
        io_uring_prep_accept(sqe, o.fd, static_cast<sockaddr*>(o.buf),
                             reinterpret_cast<socklen_t*>(&o.addrlen),
                             SOCK_CLOEXEC | SOCK_NONBLOCK);
        break;
      case op_kind::connect:
        io_uring_prep_connect(sqe, o.fd, static_cast<const sockaddr*>(o.buf), o.len);
        break;
      case op_kind::recv:
        io_uring_prep_recv(sqe, o.fd, o.buf, o.len, o.msg_flags);
        break;
      case op_kind::send:
        io_uring_prep_send(sqe, o.fd, o.buf, o.len, o.msg_flags);
        break;
      case op_kind::recvmsg:
        io_uring_prep_recvmsg(sqe, o.fd, static_cast<msghdr*>(o.buf),
                              static_cast<unsigned>(o.msg_flags));
        break;
      case op_kind::sendmsg:
        io_uring_prep_sendmsg(sqe, o.fd, static_cast<const msghdr*>(o.buf),
                              static_cast<unsigned>(o.msg_flags));
        break;
      case op_kind::external:  // returned above
        break;
    }
    io_uring_sqe_set_data(sqe, &o);
    ++inflight_;
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {  // SQ full: flush it early (rare: more than kEntries ops in one pass)
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void reap(std::vector<op*>& done) {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      --inflight_;
      if (cqe->user_data == kCancelTag) continue;
      if (cqe->user_data == kWakeTag) {
        wake_armed_ = false;
        std::uint64_t n;
        [[maybe_unused]] ssize_t r = ::read(efd_, &n, sizeof n);  // non-blocking: drain
        continue;
      }
      op* o = static_cast<op*>(io_uring_cqe_get_data(cqe));
      o->result = cqe->res;
      done.push_back(o);
    }
    io_uring_cq_advance(&ring_, seen);
  }

  void probe_opcodes() {
    probed_ = true;
    if (io_uring_probe* p = io_uring_get_probe_ring(&ring_)) {
      has_ftruncate_ = io_uring_opcode_supported(p, kOpFtruncate);
      io_uring_free_probe(p);
    }
  }

  bool probed_ = false;
  bool has_ftruncate_ = false;
  std::vector<op*> staged_;      // started, SQE not written yet (see start())
  std::vector<op*> local_done_;  // cancelled while staged: reported by the next poll()
  io_uring ring_;
  int efd_;                   // wake-up eventfd (non-blocking)
  bool wake_armed_ = false;   // a poll on efd_ is in the ring
  std::size_t inflight_ = 0;  // SQEs started whose CQE has not been reaped (cancels included)
};

}  // namespace

std::unique_ptr<backend> make_uring_backend(std::error_code& ec) {
  io_uring ring;
  const int rc = setup_ring(ring, kEntries);
  if (rc < 0) {
    ec = std::error_code(-rc, std::generic_category());
    return nullptr;
  }
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) {
    ec = std::error_code(errno, std::generic_category());
    exit_ring(ring);
    return nullptr;
  }
  return std::make_unique<uring_backend>(ring, efd);
}

std::error_code probe_uring() {
  io_uring ring;
  const int rc = setup_ring(ring, 4);
  if (rc < 0) return std::error_code(-rc, std::generic_category());
  std::error_code ec;
  io_uring_probe* p = io_uring_get_probe_ring(&ring);
  if (!p) {
    ec = std::make_error_code(std::errc::function_not_supported);
  } else {
    for (int opcode : {IORING_OP_READ, IORING_OP_WRITE, IORING_OP_FSYNC, IORING_OP_ASYNC_CANCEL,
                       IORING_OP_POLL_ADD, IORING_OP_OPENAT, IORING_OP_CLOSE}) {
      if (!io_uring_opcode_supported(p, opcode))
        ec = std::make_error_code(std::errc::invalid_argument);
    }
    io_uring_free_probe(p);
  }
  exit_ring(ring);
  return ec;
}

#else  // built without liburing

std::unique_ptr<backend> make_uring_backend(std::error_code& ec) {
  ec = std::make_error_code(std::errc::not_supported);
  return nullptr;
}
std::error_code probe_uring() {
  return std::make_error_code(std::errc::not_supported);
}

#endif

}  // namespace stackless::io::detail
