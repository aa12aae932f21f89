// net_bench: loopback echo, requests per second and p50/p99 latency at 1, 64 and 1000
// connections, 64-byte and 4 KiB messages, for the echo servers below, all measured in this run:
//   stackless      one tasklet per connection on one thread (net::socket recv/sendall), on the
//                  backend STACKLESS_IO_BACKEND selects (run the program once per backend)
//   threads        a blocking thread per connection (the baseline), every thread on one core
//   asio           Boost.Asio with C++20 coroutines (awaitable), one io_context on one thread
//   go             Go's net package, a goroutine per connection, GOMAXPROCS=1 (bench/go_echo, a
//                  child process; only when CMake found a Go toolchain)
// Every server runs on core 0 (one thread, except the thread-per-connection baseline, whose
// threads are all pinned to core 0); the load generator is one epoll thread on core 1: each
// connection sends a message, waits for all of it to come back, and sends again (closed loop).
// Ratios are against the thread-per-connection server.
//
// Each cell is run --reps times (default 3), the contenders' order rotated each time, and every
// figure shown is the median of its runs (the machine is shared: one run can be far off).
//
// Usage: net_bench [--seconds S] [--reps N] [--conns 1,64,1000] [--sizes 64,4096] [--no-asio]
//                  [--only stackless,threads,asio,go]
// --only runs the listed servers alone (to count one server's system calls with perf, say).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <utility>  // before Asio 1.74: awaitable.hpp uses std::exchange without it

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stackless/stackless.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace {

using stackless::net::address;

void pin(int cpu) {
  const unsigned n = std::thread::hardware_concurrency();
  if (n < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu) % n, &set);
  ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

struct load_result {
  double rps = 0, p50_us = 0, p99_us = 0;
  bool ok = true;
  double cpu_us = 0;  // the server's CPU time per request (all its threads)
};

double clock_s(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// child_cpu_s(pid): user + system time of process pid, all its threads (/proc; 10 ms ticks).
double child_cpu_s(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char buf[1024] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  if (!p) return 0;
  unsigned long utime = 0, stime = 0;
  // fields after the name: state(3) ... utime(14) stime(15)
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) !=
      2)
    return 0;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// drive(port, conns, size, seconds, server): the load generator (its own thread, core 1). The
// server's CPU time over the measured window: process `server`'s (a child), or this process's
// minus this thread's.
load_result drive(std::uint16_t port, int conns, std::size_t size, double seconds,
                  pid_t server = 0) {
  pin(1);
  load_result res;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct conn {
    int fd = -1;
    std::size_t got = 0;
    std::int64_t sent_at = 0;
  };
  std::vector<conn> cs(static_cast<std::size_t>(conns));
  const int ep = ::epoll_create1(0);
  const std::string msg(size, 'm');
  std::vector<char> buf(65536);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    cs[i].fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(cs[i].fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::perror("net_bench: connect");
      std::exit(1);
    }
    int one = 1;
    ::setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  std::vector<std::uint32_t> lat;
  lat.reserve(1 << 22);
  auto server_cpu = [&] {
    return server ? child_cpu_s(server)
                  : clock_s(CLOCK_PROCESS_CPUTIME_ID) - clock_s(CLOCK_THREAD_CPUTIME_ID);
  };
  const double cpu0 = server_cpu();
  const std::int64_t t0 = bench::now_ns();
  const std::int64_t stop = t0 + static_cast<std::int64_t>(seconds * 1e9);
  int outstanding = 0;
  auto send_msg = [&](conn& c) {
    c.got = 0;
    c.sent_at = bench::now_ns();
    std::size_t off = 0;
    while (off < size) {  // blocking socket: small messages go at once
      const ssize_t n = ::send(c.fd, msg.data() + off, size - off, MSG_NOSIGNAL);
      if (n <= 0) {
        res.ok = false;
        return;
      }
      off += static_cast<std::size_t>(n);
    }
    ++outstanding;
  };
  for (auto& c : cs) send_msg(c);
  std::uint64_t done = 0;
  std::vector<epoll_event> evs(1024);
  while (outstanding > 0 && res.ok) {
    const int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 5000);
    if (n <= 0) {
      res.ok = false;  // 5 s without an answer
      break;
    }
    const std::int64_t now = bench::now_ns();
    for (int i = 0; i < n; ++i) {
      conn& c = cs[evs[i].data.u64];
      const ssize_t k = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (k <= 0) {
        if (k < 0 && errno == EAGAIN) continue;
        res.ok = false;
        break;
      }
      c.got += static_cast<std::size_t>(k);
      if (c.got < size) continue;
      --outstanding;
      ++done;
      lat.push_back(
          static_cast<std::uint32_t>(std::min<std::int64_t>(now - c.sent_at, UINT32_MAX)));
      if (now < stop) send_msg(c);
    }
  }
  const double secs = static_cast<double>(bench::now_ns() - t0) / 1e9;
  const double cpu = server_cpu() - cpu0;
  if (done) res.cpu_us = cpu / static_cast<double>(done) * 1e6;
  for (auto& c : cs) ::close(c.fd);
  ::close(ep);
  res.rps = static_cast<double>(done) / secs;
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    res.p50_us = lat[lat.size() / 2] / 1e3;
    res.p99_us = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] / 1e3;
  }
  return res;
}

// ---- the servers: each accepts `conns` connections, echoes until EOF, returns ----------------

load_result run_stackless(int conns, std::size_t size, double seconds) {
  pin(0);
  namespace net = stackless::net;
  net::socket srv = net::create_server(address("127.0.0.1", 0), 4096);
  const std::uint16_t port = srv.getsockname().port();
  load_result res;
  std::thread driver([&] { res = drive(port, conns, size, seconds); });
  stackless::tasklet acceptor([&] {
    for (int i = 0; i < conns; ++i) {
      auto [c, peer] = srv.accept();
      c.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
      stackless::tasklet([c = std::move(c)]() mutable {
        std::vector<char> buf(65536);
        try {
          for (;;) {
            const std::size_t n = c.recv_into(std::span<char>(buf));
            if (n == 0) break;
            c.sendall(std::string_view(buf.data(), n));
          }
        } catch (const std::system_error&) {
        }
      }).setup();
    }
  });
  acceptor();
  stackless::run();
  driver.join();
  return res;
}

load_result run_threads(int conns, std::size_t size, double seconds) {
  const int srv = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(srv, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(srv, 4096);
  socklen_t len = sizeof a;
  ::getsockname(srv, reinterpret_cast<sockaddr*>(&a), &len);
  load_result res;
  std::thread driver([&] { res = drive(ntohs(a.sin_port), conns, size, seconds); });
  std::vector<std::thread> workers;
  pin(0);
  for (int i = 0; i < conns; ++i) {
    const int c = ::accept(srv, nullptr, nullptr);
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    workers.emplace_back([c] {
      pin(0);
      std::vector<char> buf(65536);
      for (;;) {
        const ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
          const ssize_t k =
              ::send(c, buf.data() + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
          if (k <= 0) break;
          off += k;
        }
      }
      ::close(c);
    });
  }
  for (auto& w : workers) w.join();
  driver.join();
  ::close(srv);
  return res;
}

namespace asio = boost::asio;

asio::awaitable<void> asio_echo(asio::ip::tcp::socket s) {
  std::vector<char> buf(65536);
  try {
    for (;;) {
      const std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(buf.data(), n), asio::use_awaitable);
    }
  } catch (const std::exception&) {
  }
}

asio::awaitable<void> asio_accept(asio::ip::tcp::acceptor& acc, int conns) {
  for (int i = 0; i < conns; ++i) {
    asio::ip::tcp::socket s = co_await acc.async_accept(asio::use_awaitable);
    s.set_option(asio::ip::tcp::no_delay(true));
    asio::co_spawn(acc.get_executor(), asio_echo(std::move(s)), asio::detached);
  }
}

load_result run_asio(int conns, std::size_t size, double seconds) {
  pin(0);
  asio::io_context io(1);
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  acc.listen(4096);
  const std::uint16_t port = acc.local_endpoint().port();
  load_result res;
  std::thread driver([&] { res = drive(port, conns, size, seconds); });
  asio::co_spawn(io, asio_accept(acc, conns), asio::detached);
  io.run();
  driver.join();
  return res;
}

#ifdef NET_BENCH_GO
// run_go: bench/go_echo in a child process on core 0 (GOMAXPROCS=1), which prints its port.
load_result run_go(int conns, std::size_t size, double seconds) {
  int out[2];
  if (::pipe(out) != 0) return {0, 0, 0, false};
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    pin(0);
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    ::setenv("GOMAXPROCS", "1", 1);
    ::execl(NET_BENCH_GO, NET_BENCH_GO, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  char line[32] = {};
  std::size_t got = 0;
  while (got < sizeof line - 1) {
    const ssize_t n = ::read(out[0], line + got, 1);
    if (n <= 0 || line[got] == '\n') break;
    ++got;
  }
  ::close(out[0]);
  load_result res{0, 0, 0, false};
  const long port = std::atol(line);
  if (port > 0) {
    std::thread driver(
        [&] { res = drive(static_cast<std::uint16_t>(port), conns, size, seconds, pid); });
    driver.join();
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  return res;
}
#endif

// median_of(runs): each figure's median over the runs (each taken on its own); not ok if any
// run lost a connection or an answer. No runs: all zero.
load_result median_of(const std::vector<load_result>& runs) {
  load_result m;
  if (runs.empty()) return m;
  auto med = [&](double load_result::*f) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.*f);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  m.rps = med(&load_result::rps);
  m.p50_us = med(&load_result::p50_us);
  m.p99_us = med(&load_result::p99_us);
  m.cpu_us = med(&load_result::cpu_us);
  for (const auto& r : runs) m.ok = m.ok && r.ok;
  return m;
}

std::vector<long> parse_list(const char* s) {
  std::vector<long> v;
  for (const char* p = s; *p;) {
    v.push_back(std::strtol(p, const_cast<char**>(&p), 10));
    if (*p == ',') ++p;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  int reps = 3;
  std::vector<long> conns = {1, 64, 1000}, sizes = {64, 4096};
  bool with_asio = true;
  std::string only;  // empty: every server
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--conns") && i + 1 < argc) {
      conns = parse_list(argv[++i]);
    } else if (!std::strcmp(argv[i], "--sizes") && i + 1 < argc) {
      sizes = parse_list(argv[++i]);
    } else if (!std::strcmp(argv[i], "--no-asio")) {
      with_asio = false;
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      only = std::string(",") + argv[++i] + ",";
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seconds S] [--reps N] [--conns 1,64,1000] [--sizes 64,4096] "
                   "[--no-asio] [--only stackless,threads,asio,go]\n",
                   argv[0]);
      return 2;
    }
  }
  std::printf(
      "net_bench: loopback echo, %.1f s per run, median of %d runs per cell (order rotated), "
      "stackless on %s, %u cores\n",
      seconds, reps, std::string(stackless::io::backend_name()).c_str(),
      std::thread::hardware_concurrency());
  std::printf(
      "cells: requests/s, p50 and p99 latency (us), the server's CPU time per request (us);"
      " ratios: requests/s, then CPU per request (lower is better for stackless)\n");
  std::printf("%-5s %-5s | %-31s | %-31s | %-31s | %-31s | %-6s %-6s %-6s | %-7s %-7s\n", "conns",
              "bytes", "stackless req/s p50 p99 cpu", "threads req/s p50 p99 cpu",
              "asio req/s p50 p99 cpu", "go req/s p50 p99 cpu", "sl/thr", "sl/asio", "sl/go",
              "cpu/asio", "cpu/go");
  auto wanted = [&](const char* name) {
    return only.empty() || only.find(std::string(",") + name + ",") != std::string::npos;
  };
  with_asio = with_asio && wanted("asio");
  bool ok = true;
  for (long c : conns) {
    for (long s : sizes) {
      const int n = static_cast<int>(c);
      const auto sz = static_cast<std::size_t>(s);
#ifdef NET_BENCH_GO
      const bool with_go = wanted("go");
#else
      const bool with_go = false;
#endif
      // runs[k]: contender k's runs (0 stackless, 1 threads, 2 asio, 3 go).
      std::vector<load_result> runs[4];
      const bool on[4] = {wanted("stackless"), wanted("threads"), with_asio, with_go};
      for (int r = 0; r < reps; ++r) {
        for (int j = 0; j < 4; ++j) {
          const int k = (j + r) % 4;  // rotate who goes first: no contender always follows another
          if (!on[k]) continue;
          switch (k) {
            case 0:
              runs[k].push_back(run_stackless(n, sz, seconds));
              break;
            case 1:
              runs[k].push_back(run_threads(n, sz, seconds));
              break;
            case 2:
              runs[k].push_back(run_asio(n, sz, seconds));
              break;
#ifdef NET_BENCH_GO
            case 3:
              runs[k].push_back(run_go(n, sz, seconds));
              break;
#endif
            default:
              break;
          }
        }
      }
      const load_result st = median_of(runs[0]), th = median_of(runs[1]), as = median_of(runs[2]),
                        go = median_of(runs[3]);
      ok = ok && st.ok && th.ok && as.ok && go.ok;
      auto cell = [](const load_result& r) {
        char b[64];
        std::snprintf(b, sizeof b, "%8.0f %7.1f %8.1f %5.1f", r.rps, r.p50_us, r.p99_us, r.cpu_us);
        return std::string(b);
      };
      std::printf(
          "%-5ld %-5ld | %-31s | %-31s | %-31s | %-31s | %-6.2f %-6.2f %-6.2f | %-7.2f %-7.2f\n", c,
          s, cell(st).c_str(), cell(th).c_str(), with_asio ? cell(as).c_str() : "-",
          with_go ? cell(go).c_str() : "-", th.rps > 0 ? st.rps / th.rps : 0.0,
          as.rps > 0 ? st.rps / as.rps : 0.0, go.rps > 0 ? st.rps / go.rps : 0.0,
          with_asio && as.cpu_us > 0 ? st.cpu_us / as.cpu_us : 0.0,
          with_go && go.cpu_us > 0 ? st.cpu_us / go.cpu_us : 0.0);
      std::fflush(stdout);
    }
  }
  if (!ok) std::printf("net_bench: a run lost a connection or an answer (see above)\n");
  return ok ? 0 : 1;
}
