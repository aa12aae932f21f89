// Helpers shared by the channel tests: Stackless's exact messages, an event log, RAII guards for
// block_trap / switch_trap, a few exception types standing in for Python's, and an object
// counter for lifetime checks.
#pragma once

#include <boost/test/unit_test.hpp>

#include <stackless/stackless.hpp>

#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "trace_log.hpp"

// Tasklets compared in BOOST_TEST print through the library's operator<< (tasklet.hpp).

namespace chtest {

inline const std::string kDeadlock = "Deadlock: the last runnable tasklet cannot be blocked.";
inline const std::string kClosed = "Send/receive operation on a closed channel";
inline const std::string kBlockTrap = "this tasklet does not like to be blocked.";
inline const std::string kMainReceiving =
    "the main tasklet is receiving without a sender available.";
inline const std::string kMainSending = "the main tasklet is sending without a receiver available.";
inline const std::string kRecursive = "Recursive channel call due to callbacks!";
inline const std::string kSwitchTrap = "switch_trap";

// what_is(m): a BOOST_CHECK_EXCEPTION predicate matching the exception's message exactly.
inline auto what_is(std::string m) {
  return [m = std::move(m)](const std::exception& e) { return m == e.what(); };
}

using event_log = trace_log;

// block_trap_guard: Stackless's `with block_trap():` context manager (test_channel.py).
class block_trap_guard {
 public:
  explicit block_trap_guard(bool trap = true) : t_(stackless::getcurrent()), old_(t_.block_trap()) {
    t_.set_block_trap(trap);
  }
  ~block_trap_guard() { t_.set_block_trap(old_); }
  block_trap_guard(const block_trap_guard&) = delete;
  block_trap_guard& operator=(const block_trap_guard&) = delete;

 private:
  stackless::tasklet t_;
  bool old_;
};

// switch_trap_guard: TestSwitchTrap.SwitchTrap (test_miscell.py).
struct switch_trap_guard {
  switch_trap_guard() { stackless::switch_trap(1); }
  ~switch_trap_guard() { stackless::switch_trap(-1); }
  switch_trap_guard(const switch_trap_guard&) = delete;
  switch_trap_guard& operator=(const switch_trap_guard&) = delete;
};

// Python exception types used by the ported tests.
struct value_error : std::runtime_error {
  std::vector<int> args;
  template <class... A>
  explicit value_error(A... a) : std::runtime_error("ValueError"), args{a...} {}
};
struct index_error : std::runtime_error {
  index_error() : std::runtime_error("IndexError") {}
};
struct not_implemented_error : std::runtime_error {
  not_implemented_error() : std::runtime_error("NotImplementedError") {}
};
struct zero_division_error : std::runtime_error {
  explicit zero_division_error(const std::string& m) : std::runtime_error(m) {}
};

// counted: counts live objects and copies, to prove values are moved and never leaked.
struct counted {
  static inline int live = 0;
  static inline int copies = 0;
  int v;
  explicit counted(int x) : v(x) { ++live; }
  counted(const counted& o) : v(o.v) {
    ++live;
    ++copies;
  }
  counted(counted&& o) noexcept : v(o.v) { ++live; }
  counted& operator=(const counted& o) {
    v = o.v;
    ++copies;
    return *this;
  }
  counted& operator=(counted&& o) noexcept {
    v = o.v;
    return *this;
  }
  ~counted() { --live; }
  static void reset() {
    live = 0;
    copies = 0;
  }
};

}  // namespace chtest
