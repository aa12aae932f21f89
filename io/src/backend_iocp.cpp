// The IOCP backend (Windows): one completion port per poller thread, overlapped ReadFile and
// WriteFile with 64-bit offsets, one GetQueuedCompletionStatusEx per poll().
//
// Outcomes of an overlapped call on a handle associated with the port (without
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, which is not used):
//   pending (FALSE, ERROR_IO_PENDING)      a packet arrives when it is done;
//   completed at once (TRUE)               a packet arrives all the same: the op completes then;
//   failed at once (FALSE, anything else)  no packet: the op is complete now, on ready_.
// End of file (ERROR_HANDLE_EOF) and a closed pipe (ERROR_BROKEN_PIPE) are results of 0 bytes,
// as read() returns on POSIX; every other error is a negative Win32 code (backend.hpp).
//
// Cancellation: CancelIoEx(handle, overlapped). The op still completes through a packet (with
// ERROR_OPERATION_ABORTED, or its real result if it was too late), so its buffer stays valid
// until then: the poller keeps the killed tasklet waiting for it (poller.cpp).
//
// Open, fsync, truncate and close have no overlapped form (CreateFileW, FlushFileBuffers,
// SetFileInformationByHandle and CloseHandle block the calling thread; on a network share or a
// cold cache for a long time). They run on the process's Windows thread pool
// (TrySubmitThreadpoolCallback), and the worker posts the op's OVERLAPPED to the port when done:
// to the poller they complete like a read. Once on a worker they cannot be cancelled; a kill
// waits for the packet (the poller keeps the tasklet until then), and an open that succeeded for
// a killed tasklet is closed by submit_open(). Handles are associated with the port on their
// first read or write (again on every one: a closed handle's value may come back for a new
// file; associating a handle twice with the same port fails harmlessly).
//
// Sockets (net.cpp) take the same three outcomes and the same cancellation: WSARecv, WSASend,
// WSARecvFrom, WSASendTo, AcceptEx and ConnectEx with the op's OVERLAPPED (WSA_IO_PENDING is
// ERROR_IO_PENDING), their results taken with WSAGetOverlappedResult (Winsock error codes, as
// WSAGetLastError() gives them). A socket's value is carried in op::fd (see net.hpp's fileno()).
// After a successful AcceptEx the backend runs SO_UPDATE_ACCEPT_CONTEXT and GetAcceptExSockaddrs
// (win_accept, backend.hpp), after a ConnectEx SO_UPDATE_CONNECT_CONTEXT, so the socket the
// tasklet gets back works with getpeername(), shutdown() and the rest.
//
// op_kind::external (getaddrinfo's wake-up) is issued to nobody: the op waits for the thread that
// calls external_completion::complete() to post its OVERLAPPED to the port (kExternalKey).
#ifdef _WIN32

// clang-format off
#include <winsock2.h>  // before windows.h
#include <mswsock.h>
// clang-format on
#include <fcntl.h>
#include <io.h>
#include <windows.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <system_error>
#include <type_traits>

#include "backend.hpp"
#include "backend_iocp.hpp"

namespace stackless::io::detail {
namespace {

// iocp_state: this backend's part of an op (op::backend_area, backend.hpp), created by start().
// The OVERLAPPED is kept there so that an operation allocates nothing; the kernel owns it from
// ReadFile/WriteFile until the completion packet.
struct iocp_state {
  OVERLAPPED ov;  // first: a packet's OVERLAPPED* is the address of the op's state area
  int phase;      // 0 staged, 1 while a completion packet is due, 2 complete
  DWORD flags;    // WSARecv/WSARecvFrom's flags word (in/out; the kernel may write it until done)
};
static_assert(std::is_standard_layout_v<iocp_state> && offsetof(iocp_state, ov) == 0);
iocp_state& iocp_of(op& o) noexcept {
  return op_state<iocp_state>(o);
}

constexpr ULONG_PTR kOpKey = 1;        // packets of ReadFile/WriteFile
constexpr ULONG_PTR kWakeKey = 2;      // wake(): PostQueuedCompletionStatus
constexpr ULONG_PTR kBlockingKey = 3;  // a pool worker finished a blocking call (o.result set)
constexpr ULONG_PTR kExternalKey = 4;  // external_completion::complete() (result 0)
constexpr ULONG kEntries = 64;

bool real_read(void* h, void* buf, std::uint32_t len, void* ov) {
  return ::ReadFile(h, buf, len, nullptr, static_cast<OVERLAPPED*>(ov)) != FALSE;
}
bool real_write(void* h, const void* buf, std::uint32_t len, void* ov) {
  return ::WriteFile(h, buf, len, nullptr, static_cast<OVERLAPPED*>(ov)) != FALSE;
}

SOCKET socket_of(int fd) noexcept {
  return static_cast<SOCKET>(static_cast<std::intptr_t>(fd));  // sign-extended: -1 is invalid
}

HANDLE handle_of(const op& o) noexcept {
  if (is_socket_op(o.kind)) return reinterpret_cast<HANDLE>(socket_of(o.fd));
  return reinterpret_cast<HANDLE>(::_get_osfhandle(o.fd));
}

// The Winsock extension functions, looked up once per process (WSAIoctl on a socket of the
// Microsoft provider, the only one Windows and Wine have for TCP/IP).
struct winsock_ext {
  LPFN_ACCEPTEX accept_ex = nullptr;
  LPFN_GETACCEPTEXSOCKADDRS accept_ex_sockaddrs = nullptr;
  LPFN_CONNECTEX connect_ex = nullptr;
};
template <class F>
void lookup_ext(SOCKET s, GUID id, F& fn) noexcept {
  DWORD bytes = 0;
  if (::WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof id, &fn, sizeof fn, &bytes,
                 nullptr, nullptr) != 0)
    fn = nullptr;
}
const winsock_ext& ext_functions(SOCKET s) noexcept {
  static const winsock_ext ext = [s] {
    winsock_ext e;
    lookup_ext(s, WSAID_ACCEPTEX, e.accept_ex);
    lookup_ext(s, WSAID_GETACCEPTEXSOCKADDRS, e.accept_ex_sockaddrs);
    lookup_ext(s, WSAID_CONNECTEX, e.connect_ex);
    return e;
  }();
  return ext;
}

long last_error_result() noexcept {
  return -static_cast<long>(::GetLastError());
}

// open_file(o): CreateFileW with FILE_FLAG_OVERLAPPED (reads and writes go through the port),
// wrapped in a C runtime descriptor (fileno(), and _get_osfhandle() for this backend). o.buf is
// the NUL-terminated UTF-16 path, o.open_flags parse_mode()'s O_* flags. Sharing is POSIX-like:
// other opens, renames and deletes are allowed while the file is open. The descriptor, or
// -GetLastError().
long open_file(const op& o) noexcept {
  const int fl = o.open_flags;
  const int acc = fl & (O_RDONLY | O_WRONLY | O_RDWR);
  const bool readable = acc != O_WRONLY, writable = acc != O_RDONLY;
  const bool append = (fl & O_APPEND) != 0;
  DWORD access = 0;
  if (readable) access |= GENERIC_READ;
  // Append: FILE_APPEND_DATA without FILE_WRITE_DATA, and writes at FILE_WRITE_TO_END_OF_FILE.
  if (writable) access |= append ? (FILE_APPEND_DATA | SYNCHRONIZE) : GENERIC_WRITE;
  DWORD disposition = OPEN_EXISTING;
  if (fl & O_TRUNC)
    disposition = CREATE_ALWAYS;
  else if (fl & O_EXCL)
    disposition = CREATE_NEW;
  else if (fl & O_CREAT)
    disposition = OPEN_ALWAYS;
  HANDLE h = ::CreateFileW(static_cast<const wchar_t*>(o.buf), access,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                           disposition, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED, nullptr);
  if (h == INVALID_HANDLE_VALUE) return last_error_result();
  int crt = readable && !writable ? _O_RDONLY : (readable ? _O_RDWR : _O_WRONLY);
  if (append) crt |= _O_APPEND;
  const int fd = ::_open_osfhandle(reinterpret_cast<intptr_t>(h), crt | _O_BINARY);
  if (fd < 0) {
    ::CloseHandle(h);
    return -static_cast<long>(ERROR_TOO_MANY_OPEN_FILES);
  }
  return fd;
}

long real_blocking(op& o) noexcept {
  if (o.kind == op_kind::openat) return open_file(o);
  const HANDLE h = handle_of(o);
  if (h == INVALID_HANDLE_VALUE) return -static_cast<long>(ERROR_INVALID_HANDLE);
  switch (o.kind) {
    case op_kind::fsync:
      return ::FlushFileBuffers(h) ? 0 : last_error_result();
    case op_kind::ftruncate: {
      FILE_END_OF_FILE_INFO eof{};
      eof.EndOfFile.QuadPart = o.offset;
      return ::SetFileInformationByHandle(h, FileEndOfFileInfo, &eof, sizeof eof)
                 ? 0
                 : last_error_result();
    }
    case op_kind::close:  // the descriptor and its handle, released either way
      return ::_close(o.fd) == 0 ? 0 : -static_cast<long>(ERROR_INVALID_HANDLE);
    default:
      return -static_cast<long>(ERROR_INVALID_FUNCTION);  // reads and writes are overlapped
  }
}

iocp_calls g_calls{real_read, real_write, real_blocking};

constexpr bool is_blocking_kind(op_kind k) noexcept {
  return k == op_kind::openat || k == op_kind::fsync || k == op_kind::ftruncate ||
         k == op_kind::close;
}

OVERLAPPED* overlapped_of(op& o) noexcept {
  return &iocp_of(o).ov;
}
op* op_of(OVERLAPPED* ov) noexcept {
  return reinterpret_cast<op*>(reinterpret_cast<char*>(ov) - offsetof(op, backend_area));
}

// run_on_pool: a pool worker's part of a blocking op. The op's OVERLAPPED is never given to an
// overlapped call, so its hEvent carries the port to post to. After the post the worker does
// not touch the op: the poller may hand it back to its tasklet at once.
void CALLBACK run_on_pool(PTP_CALLBACK_INSTANCE, void* ctx) noexcept {
  op& o = *static_cast<op*>(ctx);
  o.result = g_calls.blocking(o);
  OVERLAPPED* ov = overlapped_of(o);
  // Posting fails only when the system is out of memory for the packet; the tasklet waits for
  // it, so keep trying rather than lose the completion.
  while (!::PostQueuedCompletionStatus(ov->hEvent, 0, kBlockingKey, ov)) ::Sleep(1);
}

// result_of(ok, err, bytes): the op's result from a finished call.
long result_of(bool ok, DWORD err, DWORD bytes) noexcept {
  if (ok) return static_cast<long>(bytes);
  if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE) return 0;
  return -static_cast<long>(err);
}

class iocp_backend final : public backend {
 public:
  explicit iocp_backend(HANDLE port) : port_(port) {}
  ~iocp_backend() override { ::CloseHandle(port_); }
  iocp_backend(const iocp_backend&) = delete;
  iocp_backend& operator=(const iocp_backend&) = delete;

  const char* name() const noexcept override { return "iocp"; }

  // start(o) only stages o; the call is made by the next poll(), so that a cancel() before then
  // takes it back and Windows never sees it (a killed write must not reach the file).
  void start(op& o) override {
    make_op_state<iocp_state>(o);  // phase 0
    staged_.push_back(&o);
  }

  void cancel(op& o) override {
    if (auto it = std::find(staged_.begin(), staged_.end(), &o); it != staged_.end()) {
      staged_.erase(it);
      return fail_now(o, ERROR_OPERATION_ABORTED);  // never issued
    }
    if (iocp_of(o).phase != 1) return;     // complete already, waiting on ready_
    if (is_blocking_kind(o.kind)) return;  // on a pool worker: runs to its end, then posts
    if (o.kind == op_kind::external) {
      auto& ext = *static_cast<external_completion*>(o.buf);
      std::unique_lock lk(ext.m);
      if (!ext.ov) return;  // complete() posted it: the packet is on the way
      ext.ov = nullptr;     // complete() will not touch the op now
      lk.unlock();
      return fail_now(o, ERROR_OPERATION_ABORTED);
    }
    // ERROR_NOT_FOUND: it has completed; its packet is on the way.
    ::CancelIoEx(handle_of(o), overlapped_of(o));
  }

  void poll(std::vector<op*>& done, std::optional<std::chrono::nanoseconds> timeout) override {
    for (op* o : staged_) issue(*o);
    staged_.clear();
    DWORD ms = INFINITE;
    if (!ready_.empty()) {
      done.insert(done.end(), ready_.begin(), ready_.end());
      ready_.clear();
      ms = 0;
    } else if (timeout) {
      // Rounded up: waking before the deadline would make the poller wait again for nothing.
      const auto t = (timeout->count() + 999'999) / 1'000'000;
      ms = static_cast<DWORD>(std::min<std::int64_t>(t, INFINITE - 1));
    }
    OVERLAPPED_ENTRY entries[kEntries];
    ULONG n = 0;
    if (!::GetQueuedCompletionStatusEx(port_, entries, kEntries, &n, ms, FALSE)) return;
    for (ULONG i = 0; i < n; ++i) {
      const ULONG_PTR key = entries[i].lpCompletionKey;
      if (key == kWakeKey || !entries[i].lpOverlapped) continue;
      op* o = op_of(entries[i].lpOverlapped);
      if (key == kBlockingKey || key == kExternalKey) {
        // The worker set the result (the port orders its write first); external: 0.
        if (key == kExternalKey) o->result = 0;
        iocp_of(*o).phase = 2;
        done.push_back(o);
        continue;
      }
      if (is_socket_op(o->kind)) {
        finish_socket(*o);
        iocp_of(*o).phase = 2;
        done.push_back(o);
        continue;
      }
      DWORD bytes = 0;
      const bool ok =
          ::GetOverlappedResult(handle_of(*o), entries[i].lpOverlapped, &bytes, FALSE) != FALSE;
      o->result = result_of(ok, ok ? ERROR_SUCCESS : ::GetLastError(), bytes);
      iocp_of(*o).phase = 2;
      done.push_back(o);
    }
  }

  void wake() noexcept override { ::PostQueuedCompletionStatus(port_, 0, kWakeKey, nullptr); }

 private:
  // issue(o): the overlapped call, made in poll() right before the wait (see start()).
  void issue(op& o) {
    iocp_state& st = iocp_of(o);
    st.phase = 0;  // 1 once the kernel or a pool worker owns the OVERLAPPED (a packet will come)
    if (is_blocking_kind(o.kind)) return issue_blocking(o);
    if (o.kind == op_kind::external) return issue_external(o);
    HANDLE h = handle_of(o);
    if (h == INVALID_HANDLE_VALUE) return fail_now(o, ERROR_INVALID_HANDLE);
    if (!::CreateIoCompletionPort(h, port_, kOpKey, 0) &&
        ::GetLastError() != ERROR_INVALID_PARAMETER) {  // ERROR_INVALID_PARAMETER: already ours
      return fail_now(o, ::GetLastError());
    }
    st.ov = OVERLAPPED{};
    OVERLAPPED* ov = &st.ov;
    if (is_socket_op(o.kind)) return issue_socket(o);
    // A stream (offset -1) gets FILE_WRITE_TO_END_OF_FILE; pipes ignore the offset anyway.
    const auto off = static_cast<std::uint64_t>(o.offset);
    ov->Offset = static_cast<DWORD>(off);
    ov->OffsetHigh = static_cast<DWORD>(off >> 32);
    const bool ok = o.kind == op_kind::read ? g_calls.read(h, o.buf, o.len, ov)
                                            : g_calls.write(h, o.buf, o.len, ov);
    const DWORD err = ok ? ERROR_SUCCESS : ::GetLastError();
    if (ok || err == ERROR_IO_PENDING) {
      st.phase = 1;  // completed at once or pending: the packet tells
      return;
    }
    fail_now(o, err);  // failed at once: no packet
  }

  // issue_socket(o): the Winsock call of a socket op (associated with the port already).
  void issue_socket(op& o) {
    iocp_state& st = iocp_of(o);
    const SOCKET sk = socket_of(o.fd);
    OVERLAPPED* ov = &st.ov;
    // WSARecv and WSASend capture the WSABUF during the call: it may live on this frame.
    WSABUF b{o.len, static_cast<char*>(o.buf)};
    bool ok = false;
    switch (o.kind) {
      case op_kind::recv:
        st.flags = static_cast<DWORD>(o.msg_flags);
        ok = ::WSARecv(sk, &b, 1, nullptr, &st.flags, ov, nullptr) == 0;
        break;
      case op_kind::send:
        ok = ::WSASend(sk, &b, 1, nullptr, static_cast<DWORD>(o.msg_flags), ov, nullptr) == 0;
        break;
      case op_kind::recvmsg: {
        auto& m = *static_cast<win_dgram*>(o.buf);
        WSABUF d{m.len, static_cast<char*>(m.data)};
        st.flags = static_cast<DWORD>(o.msg_flags);
        ok = ::WSARecvFrom(sk, &d, 1, nullptr, &st.flags, static_cast<sockaddr*>(m.name),
                           &m.namelen, ov, nullptr) == 0;
        break;
      }
      case op_kind::sendmsg: {
        auto& m = *static_cast<win_dgram*>(o.buf);
        WSABUF d{m.len, static_cast<char*>(m.data)};
        ok = ::WSASendTo(sk, &d, 1, nullptr, static_cast<DWORD>(o.msg_flags),
                         static_cast<const sockaddr*>(m.name), m.namelen, ov, nullptr) == 0;
        break;
      }
      case op_kind::accept: {
        auto& a = *static_cast<win_accept*>(o.buf);
        const auto fn = ext_functions(sk).accept_ex;
        // finish_socket() needs GetAcceptExSockaddrs too: without it, refuse before accepting.
        if (!fn || !ext_functions(sk).accept_ex_sockaddrs) return fail_now(o, WSAEOPNOTSUPP);
        constexpr DWORD kAddr = kSockaddrMax + 16;
        ok = fn(sk, socket_of(a.accepted), a.out, 0, kAddr, kAddr, nullptr, ov) != FALSE;
        break;
      }
      case op_kind::connect: {
        const auto fn = ext_functions(sk).connect_ex;
        if (!fn) return fail_now(o, WSAEOPNOTSUPP);
        ok = fn(sk, static_cast<const sockaddr*>(o.buf), static_cast<int>(o.len), nullptr, 0,
                nullptr, ov) != FALSE;
        break;
      }
      default:
        return fail_now(o, ERROR_INVALID_FUNCTION);
    }
    const DWORD err = ok ? ERROR_SUCCESS : static_cast<DWORD>(::WSAGetLastError());
    // Completed at once, pending, or a datagram larger than the buffer (WSAEMSGSIZE at once is
    // STATUS_BUFFER_OVERFLOW, a warning: the operation ran and its packet still follows, so
    // completing it here as well would complete it twice): the packet tells.
    if (ok || err == WSA_IO_PENDING || truncated_datagram(o, err)) {
      st.phase = 1;
      return;
    }
    fail_now(o, err);  // failed at once: no packet (as for files)
  }

  // A datagram larger than the receive buffer fills it and loses its tail: POSIX recvmsg says
  // so with MSG_TRUNC, Winsock with WSAEMSGSIZE (ERROR_MORE_DATA from a packet). Python's recvfrom
  // on POSIX returns the part, as this library does on both systems.
  static bool truncated_datagram(const op& o, DWORD err) noexcept {
    return (o.kind == op_kind::recv || o.kind == op_kind::recvmsg) &&
           (err == WSAEMSGSIZE || err == ERROR_MORE_DATA);
  }
  static std::uint32_t received_capacity(const op& o) noexcept {
    return o.kind == op_kind::recvmsg ? static_cast<const win_dgram*>(o.buf)->len : o.len;
  }

  // finish_socket(o): o's result from its packet, and what a successful accept or connect needs
  // before the socket is usable.
  static void finish_socket(op& o) {
    iocp_state& st = iocp_of(o);
    const SOCKET sk = socket_of(o.fd);
    DWORD bytes = 0, flags = 0;
    if (!::WSAGetOverlappedResult(sk, &st.ov, &bytes, FALSE, &flags)) {
      const auto err = static_cast<DWORD>(::WSAGetLastError());
      // A stream send cancelled after part of it reached the connection: those bytes are sent
      // (the count is in the status block), so the send's result is that count, as a send
      // interrupted on POSIX returns what it sent.
      const auto partial = static_cast<long>(st.ov.InternalHigh);
      if (o.kind == op_kind::send && partial > 0) {
        o.result = partial;
        return;
      }
      o.result = truncated_datagram(o, err) ? static_cast<long>(received_capacity(o))
                                            : -static_cast<long>(err);
      return;
    }
    o.result = static_cast<long>(bytes);
    if (o.kind == op_kind::accept) {
      auto& a = *static_cast<win_accept*>(o.buf);
      const SOCKET as = socket_of(a.accepted);
      if (::setsockopt(as, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&sk),
                       sizeof sk) != 0) {
        o.result = -static_cast<long>(::WSAGetLastError());
        return;
      }
      sockaddr *local = nullptr, *remote = nullptr;
      int llen = 0, rlen = 0;
      constexpr DWORD kAddr = kSockaddrMax + 16;
      ext_functions(sk).accept_ex_sockaddrs(a.out, 0, kAddr, kAddr, &local, &llen, &remote, &rlen);
      rlen = std::clamp(rlen, 0, static_cast<int>(kSockaddrMax));
      if (remote) std::memcpy(a.peer, remote, static_cast<std::size_t>(rlen));
      o.addrlen = remote ? static_cast<std::uint32_t>(rlen) : 0;
      o.result = a.accepted;
    } else if (o.kind == op_kind::connect) {
      if (::setsockopt(sk, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0) != 0)
        o.result = -static_cast<long>(::WSAGetLastError());
    }
  }

  // issue_external(o): o waits for external_completion::complete(), or is complete already.
  void issue_external(op& o) {
    auto& ext = *static_cast<external_completion*>(o.buf);
    iocp_state& st = iocp_of(o);
    st.ov = OVERLAPPED{};
    std::unique_lock lk(ext.m);
    if (ext.done) {
      lk.unlock();
      return fail_now(o, ERROR_SUCCESS);  // result 0
    }
    ext.port = port_;
    ext.ov = &st.ov;
    st.phase = 1;
  }

  // issue_blocking(o): o's call on a pool worker, which posts a kBlockingKey packet when done.
  // Without a pool thread (out of memory) the call is made here: the thread blocks, nothing fails.
  void issue_blocking(op& o) {
    iocp_state& st = iocp_of(o);
    st.ov = OVERLAPPED{};
    st.ov.hEvent = port_;
    st.phase = 1;
    if (::TrySubmitThreadpoolCallback(run_on_pool, &o, nullptr)) return;
    o.result = g_calls.blocking(o);
    st.phase = 2;
    ready_.push_back(&o);
  }

  void fail_now(op& o, DWORD err) {
    o.result = result_of(err == ERROR_SUCCESS, err, 0);
    iocp_of(o).phase = 2;
    ready_.push_back(&o);
  }

  HANDLE port_;
  std::vector<op*> staged_;  // started, not yet issued (see start())
  std::vector<op*> ready_;   // complete without a packet (failed at once, cancelled)
};

}  // namespace

void external_completion::complete() noexcept {
  std::lock_guard lk(m);
  done = true;
  if (!ov) return;
  // As run_on_pool: the waiting op must get its packet, so a shortage of memory is waited out;
  // any other failure (a port already closed at process exit) cannot be, and is not retried.
  while (!::PostQueuedCompletionStatus(static_cast<HANDLE>(port), 0, kExternalKey,
                                       static_cast<OVERLAPPED*>(ov))) {
    const DWORD e = ::GetLastError();
    if (e != ERROR_NO_SYSTEM_RESOURCES && e != ERROR_NOT_ENOUGH_MEMORY && e != ERROR_OUTOFMEMORY)
      break;
    ::Sleep(1);
  }
  ov = nullptr;
}

iocp_calls& iocp_seam() noexcept {
  return g_calls;
}
iocp_calls iocp_real_calls() noexcept {
  return {real_read, real_write, real_blocking};
}

long run_blocking(op& o) noexcept {
  return g_calls.blocking(o);
}

bool try_at_once(op&) noexcept {
  // No attempt on IOCP: a socket in blocking mode has no FIONBIO, and the overlapped call the
  // backend makes is itself the attempt (it completes at once when it can, through the port).
  return false;
}

std::unique_ptr<backend> make_iocp_backend() {
  HANDLE port = ::CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (!port) {
    throw std::system_error(static_cast<int>(::GetLastError()), std::system_category(),
                            "stackless: CreateIoCompletionPort");
  }
  return std::make_unique<iocp_backend>(port);
}

}  // namespace stackless::io::detail

#endif  // _WIN32
