// Error types of the tasklet runtime. Messages are Stackless Python's, word for word, so that
// a ported program's expectations (and its tests) carry over unchanged.
#pragma once

#include <stdexcept>
#include <string>

namespace stackless {

// tasklet_exit is what kill() raises inside the target tasklet. It deliberately does NOT derive
// from std::exception: `catch (const std::exception&)` must never swallow a kill (the asio
// forced_unwind class of bugs). Catch it by name if a tasklet really wants to survive a kill.
struct tasklet_exit {};

// stop_iteration, sent through a channel with send_exception, ends a range-for over the channel
// the way Python's StopIteration ends a `for` loop.
struct stop_iteration {};

// error is the base of every Stackless RuntimeError this library throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// deadlock_error: "Deadlock: the last runnable tasklet cannot be blocked." and the main-tasklet
// variants ("the main tasklet is receiving without a sender available.").
class deadlock_error : public error {
 public:
  using error::error;
};

// tasklet_error: misuse of a tasklet (running a dead or blocked one, removing the current one,
// rebinding a running one, throwing to a dead one, ...).
class tasklet_error : public error {
 public:
  using error::error;
};

// wrong_thread_error: a tasklet was used from a thread other than the one that owns it.
class wrong_thread_error : public tasklet_error {
 public:
  using tasklet_error::tasklet_error;
};

// switch_trap_error: a switch was attempted while switch_trap() is raised.
class switch_trap_error : public error {
 public:
  using error::error;
};

// block_trap_error: "this tasklet does not like to be blocked."
class block_trap_error : public error {
 public:
  using error::error;
};

// stack_error: a tasklet stack could not be allocated (out of memory, map count exhausted).
class stack_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stackless
