// Helpers shared by the runtime tests (ports of Stackless's scheduling/tasklet unittests).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "trace_log.hpp"

namespace rt {

// msg_is("..."): a BOOST_CHECK_EXCEPTION predicate comparing what() word for word (Stackless's
// messages are part of the contract, docs/semantics.md).
inline auto msg_is(std::string expected) {
  return [expected](const std::exception& e) {
    BOOST_CHECK_EQUAL(std::string(e.what()), expected);
    return std::string(e.what()) == expected;
  };
}

// test_error: the C++ stand-in for the Python tests' TestError / KeyError / ZeroDivisionError.
struct test_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// sentinel: sets *flag when destroyed, to prove a tasklet's stack was unwound.
struct sentinel {
  bool* flag;
  explicit sentinel(bool* f) : flag(f) {}
  sentinel(const sentinel&) = delete;
  sentinel& operator=(const sentinel&) = delete;
  ~sentinel() { *flag = true; }
};

using log = trace_log;

}  // namespace rt
