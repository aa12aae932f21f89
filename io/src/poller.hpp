// The per-thread poller's interface to io::file and sleep (internal).
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>

#include "backend.hpp"
#include "stackless/channel.hpp"

namespace stackless::io::detail {

// signal_channel: how the poll tasklet (or a file releasing its lock) wakes one waiting tasklet.
// Every record a tasklet waits on carries a channel of its own. Delivery is lossless: the poll
// tasklet sends the result when the tasklet is blocked on the channel (balance < 0) and otherwise
// closes the channel, after marking the record done either way. The waiter tests "done" and then
// calls receive_unless_closing(), which tests "closing" again under the channel's lock: a check
// point (a budget interrupt, a callback) that switches the waiter away between its test and its
// block cannot make it miss the delivery and park forever.
struct signal_channel {
  channel<long> ch;
  signal_channel() { ch.set_preference(1); }  // a send never switches away from the poll tasklet
  // deliver(v): the poll tasklet's last touch of the record.
  void deliver(long v) {
    if (ch.balance() < 0)
      ch.send(v);
    else
      ch.close();
  }
  // wait_step(): blocks until a delivery (or returns at once if one happened); throws what a
  // kill or throw delivers meanwhile.
  void wait_step() {
    std::optional<long> got;
    ch.receive_unless_closing(got);
  }
};

// group_waiter: a tasklet in wait_group_empty().
struct group_waiter {
  bool done = false;
  signal_channel sig;
};

// op_group: the operations one owner (an io::file) has in flight, so that close() can cancel
// them all and wait until the backend is done with every one (their descriptor and buffers).
// Owned by the owner; must outlive its operations (io::file keeps its impl alive while they run).
struct op_group {
  boost::intrusive::list<op, boost::intrusive::member_hook<op, op_hook, &op::group_hook>,
                         boost::intrusive::constant_time_size<false>>
      ops;                         // newest first
  std::size_t count = 0;           // operations linked
  group_waiter* waiter = nullptr;  // the tasklet in wait_group_empty(), if any
};

// submit_flags: how an operation reacts to a kill or throw while it waits.
enum class submit_flags : std::uint8_t {
  cancellable,  // ask the backend to cancel it; its real result is still reported (outcome)
  // the write of a buffered file's last data by ~file, or at the end of a thread: a kill
  // does not cancel it; the tasklet waits until it is done and then takes the exception.
  uncancellable,
};

// outcome: what became of one operation. result: the byte count or -errno (-ECANCELED when it
// was cancelled before it did anything). interrupted: the kill or exception that arrived while
// the tasklet waited (null if none); the caller keeps `result` (bytes read stay with the file,
// a write moves the position) and then rethrows it.
struct outcome {
  long result = 0;
  std::exception_ptr interrupted;
  // timed_out: the deadline given to submit() passed and cancelled the operation before it did
  // anything (result is then -ECANCELED). An operation the deadline was too late to stop keeps
  // its real result and timed_out false.
  bool timed_out = false;
  std::uint32_t addrlen = 0;  // accept: the length of the peer's address
  void rethrow_if_interrupted() const {
    if (interrupted) std::rethrow_exception(interrupted);
  }
};

// submit(kind, fd, buf, len, offset, group, flags) issues one operation and blocks the calling
// tasklet until it completes. It never returns while the kernel or a worker can still touch
// `buf` (a second kill during the wait for a cancelled operation blocks the thread instead).
// An operation killed before it was handed to the kernel is never performed. A group that is
// cancelling refuses new operations with -ECANCELED (nothing is started). offset -1: streams.
outcome submit(op_kind kind, int fd, void* buf, std::uint32_t len, std::int64_t offset,
               op_group* group = nullptr, submit_flags flags = submit_flags::cancellable);

// submit_open(path, flags, mode): an openat through the poller (the result is a descriptor or
// a negative error, backend.hpp). If a kill or throw arrives after the file was opened, the
// descriptor is closed here (nothing leaks) and the outcome says interrupted. A tasklet that may
// not block (a block or switch trap) opens with the thread blocked instead. The path is the
// native one (UTF-16 on Windows); flags are O_* (on Windows, parse_mode()'s).
outcome submit_open(const std::filesystem::path::value_type* path, int flags, unsigned mode);
// op_args: one operation's fields (backend.hpp's op), for the socket kinds.
struct op_args {
  op_kind kind = op_kind::read;
  int fd = -1;
  void* buf = nullptr;
  std::uint32_t len = 0;
  std::int64_t offset = -1;
  std::uint32_t addrlen = 0;
  int msg_flags = 0;
  // A socket recv/send/recvmsg/sendmsg the caller expects to complete now: tried once without
  // blocking on the calling tasklet before anything is started (try_at_once(), backend.hpp).
  bool at_once = false;
};
using deadline_clock = std::chrono::steady_clock;
constexpr deadline_clock::time_point no_deadline = deadline_clock::time_point::max();

// submit(args, group, deadline): as above; when `deadline` passes first the poller cancels the
// operation exactly as a kill would (it is either not performed, or performed and its result
// reported) and outcome::timed_out says so. No deadline: no timer at all.
outcome submit(const op_args& args, op_group* group, deadline_clock::time_point deadline);

// cancel_group(g): asks the backend to cancel every operation of g still in flight (their
// tasklets get -ECANCELED or the real result). Does not wait. Refusing new operations is the
// owner's business (io::file tests its `closing` flag before each one).
void cancel_group(op_group& g) noexcept;

// wait_group_empty(g): blocks the calling tasklet until g has no operation in flight. If the
// tasklet may not block (a trap, or the end of its thread) it waits with the thread blocked, as
// it does after a second kill. Returns the first kill or exception that arrived meanwhile (the
// caller finishes its work, then rethrows it); never throws.
std::exception_ptr wait_group_empty(op_group& g) noexcept;

// Test seam (fault injection, fuzzing): fault_hook, when set, is called on the calling thread for
// every operation before it is handed to the backend. It may shorten o.len (a short transfer:
// the backend then does less) or return a result: the operation is then not performed at all and
// completes with that result (-EINTR, -EAGAIN, -ENOSPC, -EIO, -EFBIG, ...), exactly as if the
// backend had reported it. Per thread; set_fault_hook({}) removes it.
using fault_hook = std::function<std::optional<long>(op& o)>;
void set_fault_hook(fault_hook hook);

}  // namespace stackless::io::detail
