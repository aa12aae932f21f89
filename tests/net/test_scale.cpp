// 10,000 concurrent connections on one thread: one tasklet per connection, all blocked in
// recv() at once. The clients run in a forked child (plain blocking sockets, no stackless), so
// each process needs 10,000 descriptors: RLIMIT_NOFILE is raised to its hard limit here, and
// the test is skipped (with a message) when the hard limit is below 10,100.
//
// Prints (not asserted: speed is measured in bench/) the time to accept all the connections
// and the growth of the resident set per connection while every connection tasklet waits.
// POSIX only: fork() and RLIMIT_NOFILE (Windows has neither; 10,000 connections are not tested
// there, docs/net.md).
#ifndef _WIN32
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "net_helpers.hpp"

using namespace stackless;

namespace {

// TSan gives every fiber (tasklet) one of its 8,128 thread slots: under TSan the test runs
// 4,000 connections (the other lanes run 10,000).
#if defined(__SANITIZE_THREAD__)
constexpr int kConnections = 4'000;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kConnections = 4'000;
#else
constexpr int kConnections = 10'000;
#endif
#else
constexpr int kConnections = 10'000;
#endif

long rss_kib() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// The child: connect every client (blocking), send one byte on each once all are connected,
// read each echo, close. Uses only system calls and memory allocated before fork().
[[noreturn]] void run_clients(const sockaddr* addr, socklen_t len, std::vector<int>& fds) {
  for (int& fd : fds) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, addr, len) != 0) ::_exit(10);
  }
  for (int fd : fds)
    if (::send(fd, "p", 1, MSG_NOSIGNAL) != 1) ::_exit(11);
  for (int fd : fds) {
    char c = 0;
    if (::recv(fd, &c, 1, 0) != 1 || c != 'p') ::_exit(12);
  }
  for (int fd : fds) ::close(fd);
  ::_exit(0);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Scale, nett::net_clean)

BOOST_AUTO_TEST_CASE(ten_thousand_connections_on_one_thread) {
  BOOST_TEST_MESSAGE(kConnections << " connections");
  rlimit rl{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  const rlimit old = rl;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < kConnections + 100) {
    BOOST_TEST_MESSAGE("SKIP: RLIMIT_NOFILE hard limit " << rl.rlim_max << " < "
                                                         << kConnections + 100);
    return;
  }
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? kConnections + 1000 : rl.rlim_max;
  BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);

  net::socket srv = net::create_server(net::address("127.0.0.1", 0), 4096);
  const net::address addr = srv.getsockname();
  std::vector<int> child_fds(kConnections, -1);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) run_clients(addr.native(), addr.native_size(), child_fds);

  int accepted = 0, waiting = 0, echoed = 0, eofs = 0;
  long rss_all = 0;
  const long rss0 = rss_kib();
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::duration<double> accept_time{};
  tasklet acceptor([&] {
    for (int i = 0; i < kConnections; ++i) {
      auto [conn, peer] = srv.accept();
      ++accepted;
      tasklet([&, c = std::move(conn)]() mutable {
        ++waiting;
        std::string d = c.recv(16);  // every connection waits here at once
        --waiting;
        c.sendall(d);
        ++echoed;
        if (c.recv(16).empty()) ++eofs;
      }).setup();
    }
    accept_time = std::chrono::steady_clock::now() - t0;
  });
  acceptor();
  // Measure while every connection tasklet is blocked in recv (the child sends only once all
  // its connects are done, and a connect is done when the kernel queued it, before accept()).
  tasklet meter([&] {
    while (!(accepted == kConnections && waiting + echoed == kConnections && waiting > 0 &&
             echoed == 0)) {
      if (echoed > 0) break;
      stackless::sleep(std::chrono::milliseconds(1));
    }
    rss_all = rss_kib();
  });
  meter();
  run();
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  ::setrlimit(RLIMIT_NOFILE, &old);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  BOOST_TEST(accepted == kConnections);
  BOOST_TEST(echoed == kConnections);
  BOOST_TEST(eofs == kConnections);
  const double per_conn = rss_all > rss0 ? double(rss_all - rss0) * 1024 / kConnections : 0.0;
  std::printf(
      "net scale (%s): %d connections accepted in %.3f s; resident set +%ld KiB "
      "(%.0f bytes per connection, tasklet stack included) with all %d tasklets "
      "blocked in recv\n",
      std::string(io::backend_name()).c_str(), kConnections, accept_time.count(), rss_all - rss0,
      per_conn, kConnections);
  std::fflush(stdout);
}

BOOST_AUTO_TEST_SUITE_END()

#endif  // !_WIN32
