// The internal backend interface of the poller, and the completion record of one operation.
//
// A backend moves op records from "started" to "completed". It never touches channels or
// tasklets: the poller (poller.cpp) owns those. Results are a byte count or a negative errno, as
// in liburing; the conversion to exceptions happens once, in io::file.
//
// On Windows (backend_iocp.cpp) results are a byte count or a negative Win32 error code
// (GetLastError()), reported with std::system_category.
//
// Threading: every member is called on the poller's own thread. A backend may use threads of its
// own (the thread pool) but hands completions back only through poll().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace stackless::io::detail {

// kCancelled: the result of an op cancelled before it did anything (-ECANCELED; on Windows
// -ERROR_OPERATION_ABORTED, 995, as CancelIoEx reports it).
#ifdef _WIN32
constexpr long kCancelled = -995;
#else
constexpr long kCancelled = -125;  // -ECANCELED on Linux
#endif

// The path-based and descriptor-lifetime operations (openat, close, ftruncate) go through the
// poller too, so a slow file system (NFS, FUSE, a cold dentry cache) blocks only the tasklet.
// The socket kinds (net.cpp, POSIX only): accept (buf: sockaddr storage, addrlen: its size in,
// the peer's out; result: the new descriptor), connect (buf: sockaddr, len: its size), recv/send
// (buf, len, msg_flags), recvmsg/sendmsg (buf: a msghdr, msg_flags). Sockets are always streams:
// offset is unused.
enum class op_kind : std::uint8_t {
  read,
  write,
  fsync,
  openat,
  close,
  ftruncate,
  accept,
  connect,
  recv,
  send,
  recvmsg,
  sendmsg
};

// A POSIX system call doing op o on the calling thread, -errno on failure (the thread-pool
// workers, and the io_uring backend for an opcode the kernel lacks). Not on Windows; not for
// the socket kinds (-EINVAL).
long run_blocking(struct op& o) noexcept;

// is_socket_op(k): an op on a socket (the thread pool waits for readiness instead of a worker).
constexpr bool is_socket_op(op_kind k) noexcept {
  return k >= op_kind::accept;
}

// op: one read, write, fsync or socket call in flight. It lives in the frame of the tasklet that
// issued it; that tasklet does not leave the frame until the poller is done with it (state
// delivered).
struct op {
  enum class state : std::uint8_t {
    queued,     // started with the backend, maybe not yet handed to the kernel or a worker
    completed,  // result set; on the poller's done list, not yet handed to the tasklet
    delivered,  // the poller no longer references the record
  };
  op_kind kind = op_kind::read;
  int fd = -1;
  void* buf = nullptr;
  std::uint32_t len = 0;
  std::int64_t offset = -1;  // -1: a stream (pipe, tty): no offset, read()/write(); ftruncate: size
  int open_flags = 0;        // openat: the flags (buf is the NUL-terminated path)
  unsigned open_mode = 0;    // openat: the mode of a created file
  long result = 0;           // bytes, or -errno
  std::uint32_t addrlen = 0;  // accept: the sockaddr buffer's size in, the peer's length out
  int msg_flags = 0;          // recv/send/recvmsg/sendmsg flags (MSG_NOSIGNAL, MSG_PEEK, ...)
  bool timed_out = false;     // its deadline passed and the poller asked for its cancellation
  state st = state::queued;
  bool cancel_requested = false;
  op* done_next = nullptr;  // the poller's done list
  op* done_prev = nullptr;
  struct op_group* group = nullptr;  // the owner's group (poller.hpp) while in flight
  op* group_next = nullptr;
  op* group_prev = nullptr;

  // Thread pool: phase 0 queued, 1 running on `worker`, 2 finished. Written by a worker
  // under the pool's queue lock, read by the poller under the same lock.
  // IOCP: phase 1 while a completion packet is due, 2 complete (backend_iocp.cpp).
  int pool_phase = 0;
  unsigned long pool_worker = 0;  // pthread_t of the worker running it
  // cancel flag read by the worker between retries; release/acquire pairs it with the signal.
  std::atomic<bool> pool_cancel{false};
#ifdef _WIN32
  // IOCP only: the OVERLAPPED of the call (backend_iocp.cpp), kept here so that an operation
  // allocates nothing. The kernel owns it from ReadFile/WriteFile until the completion packet.
  alignas(8) unsigned char overlapped[32];
#endif
};

class backend {
 public:
  virtual ~backend() = default;
  virtual const char* name() const noexcept = 0;
  // start(o) queues o. No kernel entry (the uring SQ may be flushed early only when full).
  virtual void start(op& o) = 0;
  // cancel(o) asks for o (started, not yet completed) to end early. Its completion still arrives
  // through poll(), with -ECANCELED or -EINTR, or its real result when it was too late. An op
  // not yet handed to the kernel or a worker is never performed: it completes with -ECANCELED.
  virtual void cancel(op& o) = 0;
  // poll(done, timeout) hands everything queued to the kernel or the workers, then appends the
  // completed ops to `done` with their `result` set. It waits up to `timeout` for at least one
  // completion when none is ready (zero: never waits; nullopt: no limit). One kernel entry.
  virtual void poll(std::vector<op*>& done, std::optional<std::chrono::nanoseconds> timeout) = 0;
  // wake() makes a poll() waiting on another thread return early. Thread-safe.
  virtual void wake() noexcept = 0;
};

// make_uring_backend(ec): a ring for the calling thread, or null with ec set.
std::unique_ptr<backend> make_uring_backend(std::error_code& ec);
// probe_uring(): can this process set up io_uring with the opcodes we need?
std::error_code probe_uring();
std::unique_ptr<backend> make_thread_backend();
#ifdef _WIN32
// make_iocp_backend(): a completion port for the calling thread (backend_iocp.hpp has the test
// seam). Throws std::system_error when Windows refuses one.
std::unique_ptr<backend> make_iocp_backend();
#endif

}  // namespace stackless::io::detail
