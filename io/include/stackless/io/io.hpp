// stackless::io: which asynchronous I/O backend this process uses, and what is in flight.
//
// Every thread that does I/O gets a poller (created on first use): a poll tasklet that exists only
// while operations or timers are pending, drains the backend's completions and wakes the waiting
// tasklets through their channels. The backend is chosen once per process:
//   STACKLESS_IO_BACKEND=uring       io_uring (falls back to the thread pool, with a line on
//                                    stderr, when io_uring cannot be set up)
//   STACKLESS_IO_BACKEND=threadpool  blocking pread/pwrite on a few worker threads
//   unset (or auto)                  io_uring when it can be set up, otherwise the thread pool
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace stackless::io {

// backend_name() is "io_uring" or "threadpool": the backend this process uses. Decides it on the
// first call (probing io_uring once). Never blocks the tasklet; may be called from any thread.
std::string_view backend_name();

// uring_probe() is the result of probing io_uring once per process: an empty error_code when a
// ring could be set up, else why not (ENOSYS, EPERM under seccomp, ENOMEM for memlock limits,
// EINVAL for kernels without the needed opcodes, or ENOTSUP when built without liburing).
std::error_code uring_probe();

// pending_operations() is the number of reads, writes, fsyncs and sleeps of the calling thread
// that have been issued and whose tasklet has not yet been handed the result.
std::size_t pending_operations() noexcept;

// poll_stats: counters of the calling thread's poller since it was created (for tests and
// benchmarks). Submissions are batched, so backend_passes grows far slower than operations when
// many tasklets do I/O at once: each pass is at most one kernel entry (io_uring_enter) or one
// hand-over to the thread pool.
struct poll_stats {
  std::uint64_t operations = 0;      // operations issued to the backend
  std::uint64_t backend_passes = 0;  // submit-and-reap passes of the poll tasklet
  // Socket calls that completed at once, on the caller's tasklet, without the poll tasklet
  // (not counted in `operations`).
  std::uint64_t at_once = 0;
};
poll_stats get_poll_stats() noexcept;

}  // namespace stackless::io
