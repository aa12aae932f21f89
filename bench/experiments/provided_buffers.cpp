// Experiment (no stackless code inside): do io_uring's provided buffers (a registered buffer
// ring, RECV with IOSQE_BUFFER_SELECT) pay against what net::socket::recv() does today (one RECV
// per blocked call, into the caller's own buffer)? Upper bound for what integrating them could
// gain or cost: the library adds a tasklet switch and a poller pass per call on top of either.
//
// A loopback echo server on one ring serves C connections; a client thread (epoll, the other
// core) keeps one message of S bytes in flight per connection (closed loop). Server modes:
//   own:      every connection has its own 4 KiB buffer with a RECV into it always armed (what
//             C tasklets blocked in recv_into(4 KiB) hold); SEND from it
//   provided: one buffer ring of 256 × 4 KiB shared by all connections; the kernel picks a
//             buffer when bytes arrive; the bytes are copied into a fresh exact-size allocation
//             (what recv(n) would return) and the buffer goes back to the ring at once; SEND
//             from the copy
// Rounds alternate the modes. The table gives requests per second (wall clock, noisy on a shared
// machine), the server thread's CPU time per request (CLOCK_THREAD_CPUTIME_ID: much less
// sensitive to load) and the receive-buffer memory the mode holds while every connection waits.
//
// Usage: provided_buffers [connections] [message bytes] [seconds per round] [rounds]
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

constexpr unsigned kBufSize = 4096;
constexpr unsigned kRingBufs = 256;
constexpr int kGroup = 7;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void pin(int cpu) {
  if (std::thread::hardware_concurrency() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

double thread_cpu() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// pairs(n): n connected loopback TCP pairs (client fd, server fd), made synchronously.
std::vector<std::pair<int, int>> pairs(int n) {
  const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 4096) != 0 ||
      ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    die("listener");
  std::vector<std::pair<int, int>> out;
  for (int i = 0; i < n; ++i) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
    const int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (s < 0) die("accept");
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    out.emplace_back(c, s);
  }
  ::close(l);
  return out;
}

// client(fds, size, stop, count): one message in flight per connection until stop.
void client(const std::vector<int>& fds, std::size_t size, const std::atomic<bool>& stop,
            std::atomic<long>& count) {
  pin(1);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<std::size_t> got(fds.size(), 0);
  std::vector<char> msg(size, 'm'), sink(1 << 16);
  for (std::size_t i = 0; i < fds.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    if (::send(fds[i], msg.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) die("send");
  }
  std::vector<epoll_event> evs(256);
  long done = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 10);
    for (int k = 0; k < n; ++k) {
      const std::size_t i = evs[static_cast<std::size_t>(k)].data.u64;
      const ssize_t r = ::recv(fds[i], sink.data(), sink.size(), MSG_DONTWAIT);
      if (r <= 0) continue;
      got[i] += static_cast<std::size_t>(r);
      while (got[i] >= size) {  // a whole echo back: the next request
        got[i] -= size;
        ++done;
        if (::send(fds[i], msg.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size))
          die("send");
      }
    }
  }
  count = done;
  ::close(ep);
}

enum class mode { own, provided };

struct conn {
  int fd = -1;
  char* data = nullptr;  // what the SEND in flight sends from
  unsigned len = 0, sent = 0;
  std::unique_ptr<char[]> own;   // mode own: the connection's buffer
  std::unique_ptr<char[]> copy;  // mode provided: recv(n)'s exact-size copy, until sent
};

// user_data: connection index << 1 | (1 for a SEND)
void arm_recv(io_uring& ring, std::vector<conn>& cs, unsigned i, mode m) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  if (m == mode::own) {
    io_uring_prep_recv(sqe, cs[i].fd, cs[i].own.get(), kBufSize, 0);
  } else {
    io_uring_prep_recv(sqe, cs[i].fd, nullptr, kBufSize, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kGroup;
  }
  io_uring_sqe_set_data64(sqe, std::uint64_t{i} << 1);
}

void arm_send(io_uring& ring, conn& c, unsigned i) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  io_uring_prep_send(sqe, c.fd, c.data + c.sent, c.len - c.sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, std::uint64_t{i} << 1 | 1);
}

struct result {
  double rps = 0, cpu_us = 0;
  std::size_t buffer_bytes = 0;
};

result round(mode m, int nconn, std::size_t size, double seconds) {
  auto ps = pairs(nconn);
  io_uring ring;
  if (io_uring_queue_init(4096, &ring, 0) != 0) die("io_uring_queue_init");
  // The buffer ring (mode provided): registered once, 256 × 4 KiB.
  io_uring_buf_ring* br = nullptr;
  std::unique_ptr<char[]> pool;
  const unsigned ring_bytes = kRingBufs * sizeof(io_uring_buf);
  if (m == mode::provided) {
    void* p =
        ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    br = static_cast<io_uring_buf_ring*>(p);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br);
    reg.ring_entries = kRingBufs;
    reg.bgid = kGroup;
    if (io_uring_register_buf_ring(&ring, &reg, 0) != 0) {
      std::fprintf(stderr, "provided buffers: io_uring_register_buf_ring refused\n");
      std::exit(1);
    }
    io_uring_buf_ring_init(br);
    pool = std::make_unique<char[]>(std::size_t{kRingBufs} * kBufSize);
    for (unsigned b = 0; b < kRingBufs; ++b)
      io_uring_buf_ring_add(br, pool.get() + std::size_t{b} * kBufSize, kBufSize,
                            static_cast<unsigned short>(b), io_uring_buf_ring_mask(kRingBufs),
                            static_cast<int>(b));
    io_uring_buf_ring_advance(br, kRingBufs);
  }
  std::vector<conn> cs(ps.size());
  std::vector<int> cfds;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    cs[i].fd = ps[i].second;
    if (m == mode::own) cs[i].own = std::make_unique<char[]>(kBufSize);
    cfds.push_back(ps[i].first);
    arm_recv(ring, cs, static_cast<unsigned>(i), m);
  }
  io_uring_submit(&ring);
  std::atomic<bool> stop{false};
  std::atomic<long> count{0};
  std::thread cl(client, std::cref(cfds), size, std::cref(stop), std::ref(count));
  pin(0);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = thread_cpu();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  unsigned short spare_recycled = 0;
  while (std::chrono::steady_clock::now() < end) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{0, 10'000'000};
    if (io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr) < 0 && !cqe) continue;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const auto ud = io_uring_cqe_get_data64(cqe);
      const unsigned i = static_cast<unsigned>(ud >> 1);
      conn& c = cs[i];
      const int res = cqe->res;
      if (ud & 1) {  // a SEND completed
        if (res < 0) die("send completion");
        c.sent += static_cast<unsigned>(res);
        if (c.sent < c.len) {
          arm_send(ring, c, i);
          continue;
        }
        c.copy.reset();
        c.data = nullptr;
        arm_recv(ring, cs, i, m);
        continue;
      }
      if (res == -ENOBUFS) {  // every provided buffer in use: re-arm (not expected: 256 > sends)
        arm_recv(ring, cs, i, m);
        continue;
      }
      if (res <= 0) die("recv completion");
      if (m == mode::own) {
        c.data = c.own.get();
      } else {
        const unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        c.copy = std::make_unique_for_overwrite<char[]>(static_cast<std::size_t>(res));
        c.data = c.copy.get();
        std::memcpy(c.data, pool.get() + std::size_t{bid} * kBufSize,
                    static_cast<std::size_t>(res));
        io_uring_buf_ring_add(br, pool.get() + std::size_t{bid} * kBufSize, kBufSize,
                              static_cast<unsigned short>(bid), io_uring_buf_ring_mask(kRingBufs),
                              spare_recycled++);
      }
      c.len = static_cast<unsigned>(res);
      c.sent = 0;
      arm_send(ring, c, i);
    }
    if (m == mode::provided && spare_recycled) {
      io_uring_buf_ring_advance(br, spare_recycled);
      spare_recycled = 0;
    }
    io_uring_cq_advance(&ring, seen);
  }
  const double cpu = thread_cpu() - c0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  cl.join();
  result r;
  r.rps = static_cast<double>(count.load()) / wall;
  r.cpu_us = count.load() ? cpu / static_cast<double>(count.load()) * 1e6 : 0;
  r.buffer_bytes = m == mode::own ? static_cast<std::size_t>(nconn) * kBufSize
                                  : std::size_t{kRingBufs} * kBufSize + ring_bytes;
  io_uring_queue_exit(&ring);  // closes the ring first: nothing in flight afterwards
  if (br) ::munmap(br, ring_bytes);
  for (auto& [c, s] : ps) {
    ::close(c);
    ::close(s);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int nconn = argc > 1 ? std::atoi(argv[1]) : 1000;
  const std::size_t size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  const double seconds = argc > 3 ? std::atof(argv[3]) : 2.0;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 4;
  if (nconn < 1 || size < 1 || size > kBufSize || seconds <= 0 || rounds < 1) {
    std::fprintf(stderr,
                 "usage: provided_buffers [connections >= 1] [bytes 1..%u] [seconds] "
                 "[rounds]\n",
                 kBufSize);
    return 2;
  }
  rlimit rl{};  // two descriptors per connection
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  std::printf("provided_buffers: %d connections, %zu-byte messages, %.1f s per round\n", nconn,
              size, seconds);
  std::printf("%-5s %-9s %12s %16s %22s\n", "round", "mode", "req/s", "server CPU us/req",
              "receive buffers (KiB)");
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      const mode m = (r + k) % 2 ? mode::provided : mode::own;  // alternate which goes first
      const result x = round(m, nconn, size, seconds);
      std::printf("%-5d %-9s %12.0f %16.2f %22zu\n", r, m == mode::own ? "own" : "provided", x.rps,
                  x.cpu_us, x.buffer_bytes / 1024);
    }
  }
}
