// Helpers shared by the io tests: the clean fixture (no tasklet, stack or io op left behind),
// scratch files, and small file utilities that do not go through stackless::io.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "fixture.hpp"
#include "wait.hpp"

namespace iot {

extern std::filesystem::path g_dir;

// io_clean: clean_scheduler plus "no io op or timer in flight" on entry and exit.
struct io_clean : clean_scheduler {
  io_clean() { BOOST_CHECK_EQUAL(stackless::io::pending_operations(), 0u); }
  ~io_clean() { BOOST_CHECK_EQUAL(stackless::io::pending_operations(), 0u); }
};

// deny_io_uring(): installs a seccomp filter making io_uring_setup fail with EPERM.
void deny_io_uring();

inline std::filesystem::path path(const std::string& name) {
  return g_dir / name;
}

inline void put(const std::filesystem::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

inline std::string get(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// numbers(n): "0123...": Python's ''.join(str(x) for x in range(n)), the seed demo's content.
inline std::string numbers(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::to_string(i);
  return s;
}

// errc_is(code): a BOOST_CHECK_EXCEPTION predicate for filesystem_error with that errno (or,
// on Windows, a Win32 error of the system category equivalent to it).
inline auto errc_is(int code) {
  return [code](const std::filesystem::filesystem_error& e) {
    BOOST_TEST_MESSAGE("got: " << e.what());
    return e.code() == std::error_condition(code, std::generic_category());
  };
}

// find_poll_tasklet(): this thread's I/O poll tasklet, when it is in the run queue.
inline stackless::tasklet find_poll_tasklet() {
  using stackless::tasklet;
  for (tasklet t = stackless::getcurrent().next(); t && !t.is_current(); t = t.next())
    if (t.name() == "stackless.io.poll") return t;
  return {};
}

// check_killing_poll_tasklet_drains(f, cancelled, write_more): one tasklet sleeps and one reads
// f (a FIFO, a named pipe: nobody writes); then the poll tasklet is killed. The read fails with
// an error code that cancelled(code) accepts, the sleeper wakes with ECANCELED, nothing stays
// pending, and the next operation (write_more(), then f.readline()) starts a new poll tasklet.
// The sleeper sleeps 60 s and the kill must end everything within 30 s: generous for a loaded
// machine, and still fails when the kill waits for the sleeper instead of waking it.
template <class Cancelled, class WriteMore>
void check_killing_poll_tasklet_drains(stackless::io::file& f, Cancelled cancelled,
                                       WriteMore write_more) {
  using namespace std::chrono_literals;
  int sleeper_code = 0;
  bool reader_failed = false;
  stackless::tasklet([&] {
    try {
      stackless::sleep(60s);
    } catch (const std::system_error& e) {
      sleeper_code = e.code().value();
    }
  })();
  stackless::tasklet([&] {
    try {
      f.read(10);
    } catch (const std::filesystem::filesystem_error& e) {
      BOOST_TEST_MESSAGE(e.what());
      reader_failed = cancelled(e.code().value());
    }
  })();
  stackless::schedule();  // both block; their operations are staged
  // One backend pass hands the staged read to the kernel (or a worker): polled, not assumed.
  BOOST_REQUIRE(testwait::wait_backend_passes(1));
  stackless::tasklet poll = find_poll_tasklet();
  BOOST_REQUIRE(poll);
  const auto t0 = std::chrono::steady_clock::now();
  poll.kill();
  stackless::run();
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 30s));
  BOOST_TEST(sleeper_code == ECANCELED);
  BOOST_TEST(reader_failed);
  BOOST_TEST(stackless::io::pending_operations() == 0u);
  write_more();
  BOOST_TEST(f.readline() == "x\n");  // through a fresh poll tasklet
}

// check_thread_exit_unwinds(open_blocking): a thread ends with one tasklet blocked reading a
// file that open_blocking() returns (a FIFO, a named pipe: nobody writes) and one in sleep. Its
// scheduler's teardown kills both, cancelling the read, and nothing hangs or touches freed memory.
template <class Open>
void check_thread_exit_unwinds(Open open_blocking) {
  using namespace std::chrono_literals;
  struct guard {
    bool* f;
    ~guard() { *f = true; }
  };
  bool unwound_reader = false, unwound_sleeper = false, handed_over = false;
  std::thread th([&] {
    auto f = std::make_shared<stackless::io::file>(open_blocking());
    stackless::tasklet([&, f] {
      guard g{&unwound_reader};
      try {
        f->read(10);
      } catch (const std::filesystem::filesystem_error&) {
        // cancelled when the teardown kills the poll tasklet before this one
      }
    })();
    stackless::tasklet([&] {
      guard g{&unwound_sleeper};
      stackless::sleep(10s);
    })();
    stackless::schedule();
    // The read is handed to the kernel (or a worker) before the thread ends. Boost.Test is not
    // thread-safe: the result is checked on the main thread.
    handed_over = testwait::wait_backend_passes(1);
  });
  th.join();
  BOOST_TEST(handed_over);
  BOOST_TEST(unwound_reader);
  BOOST_TEST(unwound_sleeper);
}

}  // namespace iot
