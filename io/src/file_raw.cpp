// io::file's unbuffered reads, writes, truncation and closing through the poller, and the one
// place where a backend's negative result becomes an exception (filesystem_error naming the
// operation, the path, the offset and the byte count).
#include <algorithm>
#include <cerrno>
#include <string>

#include "file_impl.hpp"

namespace stackless::io::detail {

[[noreturn]] void fail(const file_impl& f, const std::string& what, std::error_code ec) {
  throw std::filesystem::filesystem_error(what, f.path, ec);
}
[[noreturn]] void fail(const file_impl& f, const std::string& what, int err) {
  fail(f, what, std::error_code(err, std::generic_category()));
}
[[noreturn]] void fail_closed(const file_impl& f) {
  fail(f, "I/O operation on closed file", EBADF);
}

[[noreturn]] void fail_io(const file_impl& f, const char* op, std::error_code ec, std::int64_t off,
                          std::size_t count, std::string extra) {
  std::string what = op;
  if (off >= 0) what += " at offset " + std::to_string(off);
  what += " (" + std::to_string(count) + " bytes" + extra + ")";
  fail(f, what, ec);
}

// check_result(f, r): r < 0 from a cancelled op on a closing file is "closed"; other errors are
// the caller's to report.
void check_cancelled_by_close(const file_impl& f, long r) {
  if (f.closing && r == kCancelled) fail_closed(f);
}

std::size_t raw_read(file_impl& f, char* dst, std::size_t n, std::int64_t off, read_txn* txn) {
  const auto len = static_cast<std::uint32_t>(std::min(n, kMaxChunk));
  for (;;) {
    if (f.closing) fail_closed(f);  // no switch between this test and the submission
    const outcome o = submit(op_kind::read, f.fd, dst, len, f.stream ? -1 : off, &f.group);
    if (o.interrupted) {
      if (o.result > 0) {
        const auto k = static_cast<std::size_t>(o.result);
        if (dst == f.rbuf.get()) {
          f.rbeg = 0;
          f.rend = k;
        } else if (txn) {
          txn->took(dst, k);
        }
      }
      o.rethrow_if_interrupted();
    }
    const long r = o.result;
    if (r >= 0) return static_cast<std::size_t>(r);
    check_cancelled_by_close(f, r);
    if (retry(r)) continue;
    fail_io(f, "read", backend_error(r), f.stream ? -1 : off, len);
  }
}

// raw_write_all(f, src, n, off, done, flags): writes all n bytes at off; short writes continue.
// `done` counts the bytes that reached the file, and is up to date however the call ends (an
// error, a kill): the caller moves its position by it. A failure throws naming the offset where
// the failing write started, the bytes it tried and how many of the n were written.
void raw_write_all(file_impl& f, const char* src, std::size_t n, std::int64_t off,
                   std::size_t& done, submit_flags flags) {
  done = 0;
  if (!f.stream &&
      (off < 0 || static_cast<std::uint64_t>(off) + n > static_cast<std::uint64_t>(kMaxOffset)))
    fail_io(f, "write", std::make_error_code(std::errc::file_too_large), off, n,
            ": the end would pass the largest offset, 2^63-1");
  while (done < n) {
    const auto len = static_cast<std::uint32_t>(std::min(n - done, kMaxChunk));
    const std::int64_t at = f.stream ? -1 : off + static_cast<std::int64_t>(done);
    const std::int64_t to = (kAppendAtOffsetMinus1 && f.append) ? -1 : at;
    if (f.closing && !f.final_flush) fail_closed(f);
    const outcome o =
        submit(op_kind::write, f.fd, const_cast<char*>(src + done), len, to, &f.group, flags);
    if (o.result > 0) done += static_cast<std::size_t>(o.result);
    o.rethrow_if_interrupted();
    const long r = o.result;
    if (retry(r)) continue;
    const std::string written =
        ", " + std::to_string(done) + " of " + std::to_string(n) + " written";
    if (r < 0) {
      check_cancelled_by_close(f, r);
      fail_io(f, "write", backend_error(r), at, len, written);
    }
    if (r == 0)
      fail_io(f, "write (no progress)", std::make_error_code(std::errc::io_error), at, len,
              written);
  }
}

// Truncating and closing go through the poller too (io_uring, a pool worker, or a Windows pool
// thread): a slow file system blocks only the calling tasklet.
void os_truncate(file_impl& f, std::int64_t size) {
  for (;;) {
    check_open(f);
    const outcome o = submit(op_kind::ftruncate, f.fd, nullptr, 0, size, &f.group);
    o.rethrow_if_interrupted();
    if (retry(o.result)) continue;
    if (o.result < 0) {
      check_cancelled_by_close(f, o.result);
      fail(f, "truncate to " + std::to_string(size), backend_error(o.result));
    }
    break;
  }
}

void os_close(file_impl& f, std::exception_ptr& interrupted, std::exception_ptr& error) {
  // Through the poller (closing can flush on NFS or a network share); not cancellable: once asked,
  // the descriptor is gone (released even when the kernel reports EINTR).
  const outcome c =
      submit(op_kind::close, f.fd, nullptr, 0, 0, nullptr, submit_flags::uncancellable);
  if (c.interrupted && !interrupted) interrupted = c.interrupted;
  if (c.result < 0 && c.result != kInterrupted && !error) {
    try {
      fail(f, "close", backend_error(c.result));
    } catch (...) {
      error = std::current_exception();
    }
  }
}

}  // namespace stackless::io::detail
