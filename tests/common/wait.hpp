// Waiting for a state instead of sleeping and assuming it was reached (issue 14, "Tests that
// cannot lie or flake"). A test that sleeps 20 ms and assumes the other side is in the kernel by
// then passes without testing anything when the machine is loaded; these helpers poll the state
// itself and report when it never comes.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#endif

#include <stackless/stackless.hpp>

namespace testwait {

// wait_until(pred, limit): yields (letting the poll tasklet, the backend and other threads work)
// until pred() holds; false when it still does not after `limit` (the caller fails the test).
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    stackless::schedule();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// spin_until(pred, limit): the same for a thread that runs no tasklets of its own (it only
// yields the CPU).
template <class Pred>
bool spin_until(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// wait_backend_passes(n): waits until the poll tasklet has made n more submit-and-reap passes than
// when this was called. One pass after an operation was started hands it to the kernel or a worker
// (backend.hpp, backend::poll), so an operation started before the call is then "in the kernel".
inline bool wait_backend_passes(std::uint64_t n) {
  const auto passes = stackless::io::get_poll_stats().backend_passes;
  return wait_until([&] { return stackless::io::get_poll_stats().backend_passes >= passes + n; });
}

// os_thread: an OS thread another thread can watch. asleep() is true while it waits in the
// kernel (state S or D in /proc): a thread blocked for good in its scheduler's wait is asleep,
// a thread still on its way there is not. Linux only; elsewhere asleep() cannot tell, and
// waits 50 ms and says yes (the callers document that the check is weaker there).
class os_thread {
 public:
  static os_thread self() {
#ifdef __linux__
    return os_thread(static_cast<long>(::syscall(SYS_gettid)));
#else
    return os_thread(0);
#endif
  }
  bool asleep() const {
#ifdef __linux__
    std::ifstream in("/proc/self/task/" + std::to_string(tid_) + "/stat");
    std::string line;
    std::getline(in, line);
    const auto close = line.rfind(')');  // the name in parentheses may hold anything
    if (close == std::string::npos || close + 2 >= line.size()) return false;
    const char state = line[close + 2];
    return state == 'S' || state == 'D';
#else
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return true;
#endif
  }
  // wait_asleep(): asleep() for five consecutive looks 1 ms apart (a thread passing through a
  // short futex wait on its way is not mistaken for one waiting for good).
  bool wait_asleep(std::chrono::milliseconds limit = std::chrono::seconds(10)) const {
    int in_a_row = 0;
    return spin_until(
        [&] {
          in_a_row = asleep() ? in_a_row + 1 : 0;
          return in_a_row >= 5;
        },
        limit);
  }

 private:
  explicit os_thread(long tid) : tid_(tid) {}
  long tid_;
};

}  // namespace testwait
