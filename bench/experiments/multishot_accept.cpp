// Experiment (no stackless code inside): does io_uring's multishot accept pay against the
// single-shot accept net::socket::accept() issues today (one ACCEPT SQE in flight per listening
// socket, re-armed after each completion)? Upper bound for what integrating it could gain: the
// library adds a tasklet switch and a poller pass per accept on top of either.
//
// A client thread connects N times over loopback as fast as it can (each connection closed at
// once; the server still accepts it from the backlog); the server accepts them all through one
// ring, closing each descriptor, in one of two modes:
//   single:    one IORING_OP_ACCEPT in flight; each CQE re-arms it (submit_and_wait per accept)
//   multishot: one multishot ACCEPT; CQEs reaped in batches, re-armed only without CQE_F_MORE
// Rounds alternate the modes. The table gives accepts per second (wall clock: bounded by the
// client's connects, and noisy on a shared machine) and the server thread's CPU time per accept
// (CLOCK_THREAD_CPUTIME_ID: what the ring costs the server, much less sensitive to load).
//
// Usage: multishot_accept [connections per round] [rounds]
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

int listener(sockaddr_in& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("listener");
    std::exit(1);
  }
  return fd;
}

void client(sockaddr_in addr, int n, std::atomic<bool>& failed) {
  for (int i = 0; i < n; ++i) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("connect");
      failed = true;
      if (c >= 0) ::close(c);
      return;
    }
    ::close(c);
  }
}

double thread_cpu() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct result {
  double wall = -1;  // seconds
  double cpu = 0;    // the server thread's CPU seconds
};

// accept_all(ring, lfd, n, multishot): the time to accept n connections.
result accept_all(io_uring& ring, int lfd, sockaddr_in addr, int n, bool multishot) {
  std::atomic<bool> failed{false};
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = thread_cpu();
  std::thread cl(client, addr, n, std::ref(failed));
  int got = 0;
  bool armed = false;
  while (got < n && !failed) {
    if (!armed) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      if (multishot)
        io_uring_prep_multishot_accept(sqe, lfd, nullptr, nullptr, SOCK_CLOEXEC);
      else
        io_uring_prep_accept(sqe, lfd, nullptr, nullptr, SOCK_CLOEXEC);
      armed = true;
    }
    io_uring_submit_and_wait(&ring, 1);
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      if (cqe->res < 0) {
        std::fprintf(stderr, "accept: %s\n", std::strerror(-cqe->res));
        std::exit(1);
      }
      ::close(cqe->res);
      ++got;
      if (!multishot || !(cqe->flags & IORING_CQE_F_MORE)) armed = false;
    }
    io_uring_cq_advance(&ring, seen);
  }
  const double cpu = thread_cpu() - c0;
  cl.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (multishot && armed) {  // end the multishot accept before the next round
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_cancel_fd(sqe, lfd, 0);
    io_uring_submit_and_wait(&ring, 2);
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      if (cqe->res >= 0 && cqe->user_data == 0 && cqe->flags & IORING_CQE_F_MORE) ::close(cqe->res);
    }
    io_uring_cq_advance(&ring, seen);
  }
  if (failed) return {};
  return {s, cpu};
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  io_uring ring;
  if (int rc = io_uring_queue_init(256, &ring, 0); rc < 0) {
    std::printf("SKIP: io_uring unavailable (%s)\n", std::strerror(-rc));
    return 0;
  }
  std::printf("%d connections per round, %d rounds (accepts per second)\n", n, rounds);
  std::printf(
      "| round | single-shot /s | multishot /s | ratio | single-shot CPU us/accept | multishot CPU "
      "us/accept | ratio |\n|---|---|---|---|---|---|---|\n");
  double sum_ratio = 0, sum_cpu_ratio = 0;
  for (int r = 0; r < rounds; ++r) {
    sockaddr_in addr;
    const int lfd = listener(addr);
    // Alternate which mode goes first, so that a drift in the machine's load favours neither.
    result single, multi;
    if (r % 2 == 0) {
      single = accept_all(ring, lfd, addr, n, false);
      multi = accept_all(ring, lfd, addr, n, true);
    } else {
      multi = accept_all(ring, lfd, addr, n, true);
      single = accept_all(ring, lfd, addr, n, false);
    }
    ::close(lfd);
    if (single.wall <= 0 || multi.wall <= 0) return 1;
    sum_ratio += single.wall / multi.wall;
    sum_cpu_ratio += multi.cpu / single.cpu;
    std::printf("| %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f |\n", r + 1, n / single.wall,
                n / multi.wall, single.wall / multi.wall, single.cpu * 1e6 / n, multi.cpu * 1e6 / n,
                multi.cpu / single.cpu);
  }
  std::printf(
      "mean: accepts/s multishot / single-shot %.2f; CPU per accept multishot / single-shot %.2f\n",
      sum_ratio / rounds, sum_cpu_ratio / rounds);
  io_uring_queue_exit(&ring);
}
