// Backend selection: the automatic fallback to the thread pool when io_uring is refused
// (seccomp EPERM, as in containers), and one poller per thread.
#ifndef _WIN32  // io_uring and its fallback under seccomp: Linux only
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <cstddef>
#include <thread>

#include "io_helpers.hpp"

using namespace stackless;

#ifndef _WIN32
void iot::deny_io_uring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::perror("seccomp");
    std::_Exit(5);
  }
}

#endif

BOOST_FIXTURE_TEST_SUITE(Backend, iot::io_clean)

#ifndef _WIN32
namespace {
boost::test_tools::assertion_result under_seccomp(boost::unit_test::test_unit_id) {
  return std::getenv("STACKLESS_IO_TEST_SECCOMP") != nullptr;
}
}  // namespace

// Runs only inside the child of io_uring_refused_falls_back_to_threadpool (under the filter).
BOOST_AUTO_TEST_CASE(seccomp_child, *boost::unit_test::precondition(under_seccomp)) {
  BOOST_TEST(io::uring_probe() == std::make_error_code(std::errc::operation_not_permitted));
  BOOST_TEST(io::backend_name() == "threadpool");
  iot::put(iot::path("fallback.txt"), "works");
  io::file f = io::open(iot::path("fallback.txt"));
  BOOST_TEST(f.read() == "works");
}

// With STACKLESS_IO_BACKEND unset and io_uring_setup refused with EPERM, the process uses the
// thread pool and says so once on stderr.
BOOST_AUTO_TEST_CASE(io_uring_refused_falls_back_to_threadpool) {
  const auto log = iot::path("fallback.log");
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setenv("STACKLESS_IO_TEST_SECCOMP", "1", 1);
    ::unsetenv("STACKLESS_IO_BACKEND");
    if (!std::freopen(log.c_str(), "w", stderr)) ::_exit(6);
    std::freopen("/dev/null", "w", stdout);
    // argv[0], not /proc/self/exe: under valgrind the latter is the valgrind tool.
    const char* self = boost::unit_test::framework::master_test_suite().argv[0];
    ::execlp(self, self, "--run_test=Backend/seccomp_child", nullptr);
    ::_exit(7);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0, "child exit " << WEXITSTATUS(status));
  const std::string err = iot::get(log);
  BOOST_TEST(err.find("stackless: io_uring unavailable (Operation not permitted); using the "
                      "thread-pool I/O backend") != std::string::npos,
             "stderr: " << err);
}

#endif

// Every thread has its own poller (and backend); it goes away with the thread.
BOOST_AUTO_TEST_CASE(each_thread_has_its_own_poller) {
  iot::put(iot::path("threads.txt"), iot::numbers(3000));
  std::vector<std::string> got(3);
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&, i] {
      for (int k = 0; k < 4; ++k)
        tasklet([&got, i, k] {
          io::file f = io::open(iot::path("threads.txt"));
          std::string s = f.read();
          if (k == 0) got[static_cast<std::size_t>(i)] = s;
        })();
      run();
      sleep(std::chrono::milliseconds(1));
      if (io::pending_operations() != 0) got[static_cast<std::size_t>(i)] = "pending left";
    });
  for (auto& t : ts) t.join();
  for (auto& s : got) BOOST_TEST((s == iot::numbers(3000)), "got " << s.size() << " bytes");
}

BOOST_AUTO_TEST_SUITE_END()
