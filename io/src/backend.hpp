// The internal backend interface of the poller, and the completion record of one operation.
//
// A backend moves op records from "started" to "completed". It never touches channels or
// tasklets: the poller (poller.cpp) owns those. Results are a byte count or a negative errno, as
// in liburing; the conversion to exceptions happens once, in io::file.
//
// On Windows (backend_iocp.cpp) results are a byte count or a negative Win32 error code
// (GetLastError()), reported with std::system_category; for the socket kinds a negative Winsock
// code (WSAGetLastError()), which net.cpp translates to an errno (net_sys.hpp).
//
// Threading: every member is called on the poller's own thread. A backend may use threads of its
// own (the thread pool) but hands completions back only through poll().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <type_traits>
#include <vector>

#include <boost/intrusive/list.hpp>

namespace stackless::io::detail {

// kCancelled: the result of an op cancelled before it did anything (-ECANCELED; on Windows
// -ERROR_OPERATION_ABORTED, 995, as CancelIoEx reports it).
// kInterrupted: a call a signal interrupted, to be made again (-EINTR); no Windows call reports
// it, and no result is LONG_MIN.
#ifdef _WIN32
constexpr long kCancelled = -995;
constexpr long kInterrupted = std::numeric_limits<long>::min();
#else
constexpr long kCancelled = -125;                // -ECANCELED on Linux
constexpr long kInterrupted = -4;                // -EINTR on Linux
#endif

// The path-based and descriptor-lifetime operations (openat, close, ftruncate) go through the
// poller too, so a slow file system (NFS, FUSE, a cold dentry cache) blocks only the tasklet.
// The socket kinds (net.cpp): accept (POSIX: buf: sockaddr storage, addrlen: its size in, the
// peer's out; Windows: buf: a win_accept; result: the new descriptor), connect (buf: sockaddr,
// len: its size), recv/send (buf, len, msg_flags), recvmsg/sendmsg (buf: a msghdr; Windows: a
// win_dgram; msg_flags). Sockets are always streams: offset is unused.
// external (Windows only): an op that no system call performs: it completes when another thread
// calls complete() on the external_completion that buf points to (net_resolve.cpp's lookups).
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
  sendmsg,
  external
};

// run_blocking(o): op o done by a blocking call of the calling thread. POSIX: the system call,
// -errno on failure (the thread-pool workers, and the io_uring backend for an opcode the kernel
// lacks); not for the socket kinds (-EINVAL). Windows: openat, fsync, ftruncate and close only
// (what the IOCP backend runs on a pool thread), -GetLastError() on failure. Also where a
// tasklet may not block (submit_open()).
long run_blocking(struct op& o) noexcept;

// is_socket_op(k): an op on a socket (the thread pool waits for readiness instead of a worker).
constexpr bool is_socket_op(op_kind k) noexcept {
  return k >= op_kind::accept && k <= op_kind::sendmsg;
}

// try_at_once(o): one non-blocking attempt at a socket recv, send, recvmsg or sendmsg, on the
// calling thread, before anything is started (the poller's short cut, poller.cpp). True when it
// is done (o.result set: bytes or -errno, as a completion would carry); false when it would
// block, or for any other kind (accept and connect start a kernel operation; files always go
// through the backend), or where the platform has no such attempt (IOCP).
bool try_at_once(struct op& o) noexcept;

#ifdef _WIN32
// The buffers of the socket kinds on Windows (net.cpp fills them in the waiting tasklet's frame;
// backend_iocp.cpp makes the Winsock calls). Sizes are sockaddr_storage's (128 bytes).
inline constexpr std::size_t kSockaddrMax = 128;
// win_accept: AcceptEx's. The caller makes `accepted` (a SOCKET's value, as fileno() gives it)
// and closes it unless the op succeeded; on success the backend has run SO_UPDATE_ACCEPT_CONTEXT
// on it, copied the peer's address into `peer` (op::addrlen: its length), and the result is
// `accepted`.
struct win_accept {
  int accepted = -1;
  alignas(8) std::byte peer[kSockaddrMax];
  alignas(8) std::byte out[2 * (kSockaddrMax + 16)];  // the local and remote addresses
};
// win_dgram: WSARecvFrom's or WSASendTo's. recvfrom: name receives the sender, namelen its size
// in and its length out (written when the op completes, so it lives here, not on a call frame).
struct win_dgram {
  void* data = nullptr;
  std::uint32_t len = 0;
  void* name = nullptr;
  int namelen = 0;
};
// external_completion: what an op_kind::external op waits for (buf). complete() (any thread,
// once) completes the op with result 0, or makes a later one complete at once; a cancel before
// complete() ends it with kCancelled and complete() then touches nothing of the op's. Shared by
// both sides (the op's owner keeps it alive while the op is in flight; the other thread keeps it
// alive until complete() returns).
struct external_completion {
  void complete() noexcept;  // backend_iocp.cpp
  std::mutex m;
  bool done = false;     // complete() was called
  void* port = nullptr;  // while an op waits: the port to post to and its OVERLAPPED
  void* ov = nullptr;
};
#endif

// A backend's own per-op state (the thread pool's phase, worker and cancel flag; IOCP's
// OVERLAPPED) lives inside the op, so that an operation allocates nothing, in an area the rest
// of the library does not interpret. Its size is the largest backend's on the platform; a backend
// whose state does not fit fails to compile (op_state_fits).
#ifdef _WIN32
inline constexpr std::size_t kOpStateSize = 40;  // IOCP: an OVERLAPPED (32), a phase, WSARecv flags
#else
inline constexpr std::size_t kOpStateSize = 16;  // thread pool: a pthread_t, a phase, a flag
#endif
inline constexpr std::size_t kOpStateAlign = alignof(void*);

// op_hook: an op's link in one of the poller's lists (poller.cpp, poller.hpp). Safe-link mode
// where assert() is on (the mode must not depend on a flag that only the library's own objects
// get: the tests see op too): an op destroyed or linked twice while still on a list asserts.
#ifdef NDEBUG
using op_hook =
    boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::normal_link>>;
#else
using op_hook =
    boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>;
#endif

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
  bool at_once = false;       // op_args::at_once (poller.hpp): try it without blocking first
  bool timed_out = false;     // its deadline passed and the poller asked for its cancellation
  state st = state::queued;
  bool cancel_requested = false;
  op_hook state_hook;                // the poller's inflight_ or done_ list (poller.cpp)
  struct op_group* group = nullptr;  // the owner's group (poller.hpp) while in flight
  op_hook group_hook;                // that group's list of ops

  // The backend's own state for this op (op_state<T>() below): opaque to everything else.
  alignas(kOpStateAlign) std::byte backend_area[kOpStateSize];
};

template <class T>
inline constexpr bool op_state_fits =
    sizeof(T) <= kOpStateSize && alignof(T) <= kOpStateAlign&& std::is_trivially_destructible_v<T>;

// make_op_state<T>(o): starts the lifetime of o's backend state as a value-initialised T (the
// backend's start() does it; a restarted op gets a fresh one). Never destroyed: T is trivially
// destructible.
template <class T>
T& make_op_state(op& o) noexcept {
  static_assert(op_state_fits<T>, "the backend's op state does not fit op::backend_area");
  return *::new (static_cast<void*>(o.backend_area)) T{};
}
// op_state<T>(o): the backend state that make_op_state<T>(o) created.
template <class T>
T& op_state(op& o) noexcept {
  static_assert(op_state_fits<T>, "the backend's op state does not fit op::backend_area");
  return *std::launder(reinterpret_cast<T*>(o.backend_area));
}

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

// thread_backend_for_this_thread(): the backend of a new poller on the calling thread: the
// process-wide choice (STACKLESS_IO_BACKEND, the io_uring probe), falling back to the thread pool
// when this thread's ring cannot be set up (backend_choice.cpp).
std::unique_ptr<backend> thread_backend_for_this_thread();
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
