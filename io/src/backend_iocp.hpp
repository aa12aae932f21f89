// The IOCP backend's test seam (Windows only; see backend_iocp.cpp).
//
// Under Wine every overlapped ReadFile/WriteFile on a regular file reports ERROR_IO_PENDING and
// end of file always arrives as a completion packet; real Windows often completes a cached read
// at once (TRUE, and a packet still follows) or fails at once (FALSE with ERROR_HANDLE_EOF, and no
// packet). The tests reach those paths by replacing the two calls the backend makes. The calls
// that have no overlapped form (open, fsync, truncate, close) run on a pool thread through
// `blocking`; a test makes them slow (a stalled file system) or fail by replacing it.
#pragma once

#include <cstdint>

namespace stackless::io::detail {

struct op;

struct iocp_calls {
  // Both have ReadFile/WriteFile's contract with lpNumberOfBytes = NULL: true when the operation
  // completed at once, false with the Win32 error in GetLastError() (ERROR_IO_PENDING: in flight).
  bool (*read)(void* handle, void* buf, std::uint32_t len, void* overlapped);
  bool (*write)(void* handle, const void* buf, std::uint32_t len, void* overlapped);
  // run_blocking()'s contract (backend.hpp), called on a pool thread.
  long (*blocking)(op& o) noexcept;
};

// The calls every IOCP backend of the process makes; ReadFile and WriteFile unless a test
// replaced them. Change them only while no operation is in flight.
iocp_calls& iocp_seam() noexcept;
// The real calls (ReadFile, WriteFile, run_blocking), for a test's replacement to delegate to.
iocp_calls iocp_real_calls() noexcept;

}  // namespace stackless::io::detail
