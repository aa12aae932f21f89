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
// fsync is FlushFileBuffers, a blocking call of the thread (there is no overlapped flush): the
// op is complete when start() returns. Handles are associated with the port on their first
// operation (again on every operation: a closed handle's value may come back for a new file;
// associating a handle twice with the same port fails harmlessly).
#ifdef _WIN32

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
};
static_assert(std::is_standard_layout_v<iocp_state> && offsetof(iocp_state, ov) == 0);
iocp_state& iocp_of(op& o) noexcept {
  return op_state<iocp_state>(o);
}

constexpr ULONG_PTR kOpKey = 1;    // packets of ReadFile/WriteFile
constexpr ULONG_PTR kWakeKey = 2;  // wake(): PostQueuedCompletionStatus
constexpr ULONG kEntries = 64;

bool real_read(void* h, void* buf, std::uint32_t len, void* ov) {
  return ::ReadFile(h, buf, len, nullptr, static_cast<OVERLAPPED*>(ov)) != FALSE;
}
bool real_write(void* h, const void* buf, std::uint32_t len, void* ov) {
  return ::WriteFile(h, buf, len, nullptr, static_cast<OVERLAPPED*>(ov)) != FALSE;
}

iocp_calls g_calls{real_read, real_write};

OVERLAPPED* overlapped_of(op& o) noexcept {
  return &iocp_of(o).ov;
}
op* op_of(OVERLAPPED* ov) noexcept {
  return reinterpret_cast<op*>(reinterpret_cast<char*>(ov) - offsetof(op, backend_area));
}
HANDLE handle_of(const op& o) noexcept {
  return reinterpret_cast<HANDLE>(::_get_osfhandle(o.fd));
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
    if (iocp_of(o).phase != 1) return;  // complete already, waiting on ready_
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
      if (entries[i].lpCompletionKey != kOpKey || !entries[i].lpOverlapped) continue;  // wake
      op* o = op_of(entries[i].lpOverlapped);
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
    st.phase = 0;  // 1 once the kernel owns the OVERLAPPED (a packet will come)
    HANDLE h = handle_of(o);
    if (h == INVALID_HANDLE_VALUE) return fail_now(o, ERROR_INVALID_HANDLE);
    if (o.kind == op_kind::fsync) {
      const bool ok = ::FlushFileBuffers(h) != FALSE;
      return fail_now(o, ok ? ERROR_SUCCESS : ::GetLastError());
    }
    if (!::CreateIoCompletionPort(h, port_, kOpKey, 0) &&
        ::GetLastError() != ERROR_INVALID_PARAMETER) {  // ERROR_INVALID_PARAMETER: already ours
      return fail_now(o, ::GetLastError());
    }
    st.ov = OVERLAPPED{};
    OVERLAPPED* ov = &st.ov;
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

  void fail_now(op& o, DWORD err) {
    o.result = result_of(err == ERROR_SUCCESS, err, 0);
    iocp_of(o).phase = 2;
    ready_.push_back(&o);
  }

  HANDLE port_;
  std::vector<op*> staged_;  // started, not yet issued (see start())
  std::vector<op*> ready_;   // complete without a packet (failed at once, fsync, cancelled)
};

}  // namespace

iocp_calls& iocp_seam() noexcept {
  return g_calls;
}
iocp_calls iocp_real_calls() noexcept {
  return {real_read, real_write};
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
