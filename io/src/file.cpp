// io::file: Python's buffered file object on the poller: its operation lock, close, and the
// public methods. The control block and its invariants are in file_impl.hpp; buffering in
// file_buffer.cpp, the I/O and its errors in file_raw.cpp, open() in file_open.cpp, the OS calls
// in file_posix.cpp / file_win.cpp.
#include <unistd.h>
#ifdef _WIN32
#include <io.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>

#include "file_impl.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless::io {
namespace detail {
namespace {

// The file's operation lock: a whole buffered operation (and close) runs with it held.
// Acquisition is FIFO with direct hand-over (see lock_waiter); a waiter killed while queued leaves
// the queue, and one killed after the hand-over passes the lock on, so nothing is lost or stolen.
void lock_release(file_impl& f) noexcept;

class op_lock {
 public:
  // op_lock(f, closer): the closer is queued in front and is not woken by close.
  explicit op_lock(file_impl& f, bool closer = false) : f_(f) {
    if (f_.closing && !closer) fail_closed(f_);
    if (!f_.busy) {
      f_.busy = true;
      return;
    }
    lock_waiter w;
    if (closer) {
      w.next = f_.lock_head;
      f_.lock_head = &w;
      if (!f_.lock_tail) f_.lock_tail = &w;
    } else {
      (f_.lock_tail ? f_.lock_tail->next : f_.lock_head) = &w;
      f_.lock_tail = &w;
    }
    try {
      while (!w.done) w.sig.wait_step();
    } catch (...) {
      if (w.granted)
        lock_release(f_);  // handed over, then killed before we could use it: pass it on
      else if (!w.done)
        unlink(w);
      throw;
    }
    if (!w.granted) fail_closed(f_);  // woken by close()
  }
  ~op_lock() { lock_release(f_); }
  op_lock(const op_lock&) = delete;
  op_lock& operator=(const op_lock&) = delete;

 private:
  void unlink(lock_waiter& w) noexcept {
    lock_waiter* prev = nullptr;
    for (lock_waiter* p = f_.lock_head; p; prev = p, p = p->next) {
      if (p != &w) continue;
      (prev ? prev->next : f_.lock_head) = w.next;
      if (f_.lock_tail == &w) f_.lock_tail = prev;
      return;
    }
  }
  file_impl& f_;
};

void lock_release(file_impl& f) noexcept {
  lock_waiter* w = f.lock_head;
  if (!w) {
    f.busy = false;
    return;
  }
  f.lock_head = w->next;
  if (!f.lock_head) f.lock_tail = nullptr;
  w->done = w->granted = true;  // busy stays true: the lock passes straight to w
  try {
    w->sig.deliver(0);
  } catch (...) {
    // A send to a waiting receiver does not fail; closing the channel cannot fail.
  }
}

// wake_lock_waiters(f): close() wakes every queued waiter (before queueing itself): each
// raises "I/O operation on closed file".
void wake_lock_waiters(file_impl& f) noexcept {
  lock_waiter* w = f.lock_head;
  f.lock_head = f.lock_tail = nullptr;
  while (w) {
    lock_waiter* next = w->next;
    w->next = nullptr;
    w->done = true;
    try {
      w->sig.deliver(0);
    } catch (...) {
      // A send to a waiting receiver does not fail; closing the channel cannot fail.
    }
    w = next;
  }
}

// hold: a call in progress keeps the impl alive (file_impl::refs).
class hold {
 public:
  explicit hold(file_impl& f) noexcept : f_(f) { ++f_.refs; }
  ~hold() { impl_release{}(&f_); }
  hold(const hold&) = delete;
  hold& operator=(const hold&) = delete;

 private:
  file_impl& f_;
};
}  // namespace

void impl_release::operator()(file_impl* f) const noexcept {
  if (--f->refs > 0) return;
  // The last reference: no call is in progress and no operation in flight. A descriptor still
  // open here belongs to a file destroyed while others used it (~file left the close to us).
  if (f->fd >= 0) {
    if (!f->wbuf.empty())
      std::fprintf(stderr, "stackless: %s: %zu buffered bytes were not written (file closed)\n",
                   f->name.c_str(), f->wbuf.size());
    ::close(f->fd);
  }
  delete f;  // NOLINT: the impl is reference counted (file_impl::refs)
}

namespace {

// close_file(f, closer_dtor): close() and ~file(). Marks the file closing (new calls fail with
// "I/O operation on closed file"), cancels every operation in flight on it and wakes every
// tasklet queued on its lock; then, holding the lock, flushes, waits until the backend is done
// with every operation on the descriptor, and closes it. Returns the flush error and any kill or
// exception that arrived while it waited (the caller rethrows them, or reports them).
struct close_result {
  std::exception_ptr flush_error;
  std::exception_ptr interrupted;
};

close_result close_file(file_impl& f, bool from_destructor) {
  close_result res;
  hold h(f);
  f.closing = true;
  f.closer_active = true;
  struct end_closer {
    file_impl& f;
    ~end_closer() {
      f.closer_active = f.final_flush = false;
      // Wake the tasklets that called close() meanwhile: they finish the job if we did not.
      for (lock_waiter* w = std::exchange(f.close_waiters, nullptr); w;) {
        lock_waiter* next = w->next;
        w->done = true;
        try {
          w->sig.deliver(0);
        } catch (...) {
        }
        w = next;
      }
    }
  } ec{f};
  cancel_group(f.group);
  wake_lock_waiters(f);
  // In a destructor the buffered data is written whatever happens (a kill waits for it), so a
  // tasklet unwinding at the end of its thread still leaves its data on disk.
  const submit_flags flags =
      from_destructor ? submit_flags::uncancellable : submit_flags::cancellable;
  try {
    op_lock lock(f, /*closer=*/true);
    try {
      f.final_flush = true;
      flush_write(f, flags);
    } catch (const std::filesystem::filesystem_error&) {
      res.flush_error = std::current_exception();
      f.wbuf.clear();  // not written: said by the error
    } catch (const std::bad_alloc&) {
      res.flush_error = std::current_exception();
      f.wbuf.clear();
    }
    f.final_flush = false;
    if (std::exception_ptr e = wait_group_empty(f.group)) res.interrupted = e;
    os_close(f, res.interrupted, res.flush_error);
    f.fd = -1;
    f.rbuf.reset();
    f.rsize = f.rbeg = f.rend = 0;
  } catch (...) {
    // Killed while waiting for the lock or during the flush: the file stays closing, with what
    // was not written still buffered; ~file (or a second close()) finishes the job, or the last
    // reference closes the descriptor and reports what was lost.
    res.interrupted = std::current_exception();
  }
  return res;
}

// await_closer(f): another tasklet is inside close_file(): wait until it is out. It may have been
// killed before the descriptor was closed; the caller then closes it (a second close() must not
// report success while the buffered data is still unwritten: io_file_fuzz, close-while-closing).
void await_closer(file_impl& f) {
  while (f.closer_active) {
    lock_waiter w;
    w.next = f.close_waiters;
    f.close_waiters = &w;
    try {
      while (!w.done) w.sig.wait_step();
    } catch (...) {
      if (!w.done) {
        for (lock_waiter** p = &f.close_waiters; *p; p = &(*p)->next) {
          if (*p == &w) {
            *p = w.next;
            break;
          }
        }
      }
      throw;
    }
  }
}

}  // namespace
}  // namespace detail

using detail::file_impl;

file::file() noexcept = default;
file::file(std::unique_ptr<file_impl, detail::impl_release> p) noexcept : impl_(std::move(p)) {}
file::file(file&&) noexcept = default;
file& file::operator=(file&& o) noexcept {
  if (this != &o) {
    file old(std::move(*this));
    impl_ = std::move(o.impl_);
  }
  return *this;
}

file::~file() {
  if (!impl_) return;
  file_impl& f = *impl_;
  if (f.fd < 0) return;
  if (f.owner != std::this_thread::get_id()) {
    // Its operations belong to another thread's poller: nothing may be waited for here. The
    // descriptor is closed; what was buffered is reported lost.
    std::fprintf(stderr,
                 "stackless: %s destroyed on a thread other than the one that opened it; "
                 "closed without flushing\n",
                 f.name.c_str());
    if (!f.busy && f.group.count == 0) {
      if (!f.wbuf.empty())
        std::fprintf(stderr, "stackless: %s: %zu buffered bytes were not written\n", f.name.c_str(),
                     f.wbuf.size());
      ::close(f.fd);
      f.fd = -1;
    }
    f.closing = true;
    return;
  }
  detail::close_result r;
  if (f.closer_active) {
    detail::hold h(f);
    try {
      detail::await_closer(f);
    } catch (...) {
      r.interrupted = std::current_exception();
    }
  }
  if (f.fd >= 0 && !f.closer_active) {
    detail::close_result c = detail::close_file(f, /*from_destructor=*/true);
    r.flush_error = c.flush_error;
    if (!r.interrupted) r.interrupted = c.interrupted;
  }
  if (r.flush_error) {
    try {
      std::rethrow_exception(r.flush_error);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stackless: closing %s: %s\n", f.name.c_str(), e.what());
    }
  }
  if (r.interrupted && std::uncaught_exceptions() == 0) {
    // A kill or throw that arrived while the destructor flushed: a destructor cannot throw, so
    // it is delivered again, at the tasklet's next check point or switch. (throw_exception on
    // the current tasklet raises at once, as Stackless's does: it used to be caught here and
    // the kill was lost.)
    stackless::detail::deliver_later(r.interrupted);
  }
}

file_impl& file::live(const char* op) const {
  if (!impl_) {
    throw std::filesystem::filesystem_error(std::string(op) + ": I/O operation on closed file",
                                            std::error_code(EBADF, std::generic_category()));
  }
  if (impl_->owner != std::this_thread::get_id()) {
    throw wrong_thread_error(std::string("stackless::io::file::") + op + ": " + impl_->name +
                             " belongs to the thread that opened it");
  }
  return *impl_;
}

std::string file::read() {
  file_impl& f = live("read");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  detail::read_txn txn(f);
  std::string out;
  if (f.universal) {
    detail::read_universal(f, out, std::string::npos, false, txn);
    return out;
  }
  detail::read_growing(f, out, std::string::npos, txn);
  return out;
}

std::string file::read(std::size_t n) {
  file_impl& f = live("read");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  detail::read_txn txn(f);
  std::string out;
  if (f.universal) {
    detail::read_universal(f, out, n, false, txn);
    return out;
  }
  detail::read_growing(f, out, n, txn);
  return out;
}

std::size_t file::readinto(std::span<std::byte> buf) {
  file_impl& f = live("readinto");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  detail::read_txn txn(f);
  if (f.universal) {
    std::string tmp;
    detail::read_universal(f, tmp, buf.size(), false, txn);
    std::memcpy(buf.data(), tmp.data(), tmp.size());
    return tmp.size();
  }
  return detail::read_exact(f, reinterpret_cast<char*>(buf.data()), buf.size(), txn);
}

std::string file::readline(std::size_t limit) {
  file_impl& f = live("readline");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  detail::read_txn txn(f);
  std::string out;
  if (f.universal) {
    detail::read_universal(f, out, limit, true, txn);
    return out;
  }
  while (out.size() < limit) {
    if (!f.avail() && detail::fill(f) == 0) break;
    const char* p = f.rbuf.get() + f.rbeg;
    const std::size_t a = std::min(f.avail(), limit - out.size());
    const void* nl = std::memchr(p, '\n', a);
    const std::size_t k = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - p) + 1 : a;
    out.append(p, k);
    detail::consume(f, k, txn);
    if (nl) break;
  }
  return out;
}

std::vector<std::string> file::readlines() {
  std::vector<std::string> lines;
  for (std::string l = readline(); !l.empty(); l = readline()) lines.push_back(std::move(l));
  return lines;
}

std::size_t file::write(std::string_view data) {
  return write(std::as_bytes(std::span(data.data(), data.size())));
}

std::size_t file::write(std::span<const std::byte> bytes) {
  file_impl& f = live("write");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::prepare_write(f);
  const char* p = reinterpret_cast<const char*>(bytes.data());
  const std::size_t n = bytes.size();
  if (!f.stream &&
      static_cast<std::uint64_t>(f.pos) + n > static_cast<std::uint64_t>(detail::kMaxOffset)) {
    detail::fail_io(f, "write", std::make_error_code(std::errc::file_too_large), f.pos, n,
                    ": the end would pass the largest offset, 2^63-1");
  }
  if (f.wbuf.empty()) f.wpos = f.pos;
  if (f.bufsize == 0 || n >= f.bufsize) {
    detail::flush_write(f);
    std::size_t done = 0;
    struct account {  // the position moves by what reached the file, however the call ends
      file_impl& f;
      std::size_t& done;
      ~account() {
        if (!f.stream && !f.append) f.pos += static_cast<std::int64_t>(done);
      }
    } acc{f, done};
    try {
      detail::raw_write_all(f, p, n, f.pos, done);
    } catch (...) {
      if (f.append && !f.stream && done) f.pos = detail::file_size(f);
      throw;
    }
    if (f.append && !f.stream) f.pos = detail::file_size(f);
    return n;
  }
  f.wbuf.append(p, n);
  if (!f.stream) f.pos += static_cast<std::int64_t>(n);
  if (f.wbuf.size() >= f.bufsize) {
    detail::flush_write(f);
  } else if (f.line_buffered && std::memchr(p, '\n', n)) {
    detail::flush_lines(f);  // up to the last newline, as C stdio does
  }
  return n;
}

std::int64_t file::seek(std::int64_t offset, int whence) {
  file_impl& f = live("seek");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::check_open(f);
  if (f.stream) detail::fail(f, "seek", ESPIPE);
  std::int64_t base = 0;
  switch (whence) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = f.pos;
      break;
    case SEEK_END:
      break;
    default:
      detail::fail(f, "seek: whence " + std::to_string(whence) + " (expected 0, 1 or 2)", EINVAL);
  }
  detail::flush_write(f);
  if (whence == SEEK_END) base = detail::file_size(f);
  std::int64_t to = 0;
  if (__builtin_add_overflow(base, offset, &to)) {
    detail::fail(f,
                 "seek by " + std::to_string(offset) + " from " + std::to_string(base) +
                     ": the position would pass 2^63-1",
                 EOVERFLOW);
  }
  if (to < 0) detail::fail(f, "seek to " + std::to_string(to), EINVAL);
  f.drop_read();
  f.skip_lf = false;
  f.pos = to;
  return to;
}

std::int64_t file::tell() {
  file_impl& f = live("tell");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::check_open(f);
  if (f.stream) detail::fail(f, "tell", ESPIPE);
  if (f.append && !f.wbuf.empty()) detail::flush_write(f);
  return f.pos;
}

void file::truncate() {
  truncate(tell());
}

void file::truncate(std::int64_t size) {
  file_impl& f = live("truncate");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::check_writable(f);
  if (size < 0) detail::fail(f, "truncate to " + std::to_string(size), EINVAL);
  detail::flush_write(f);
  f.drop_read();
  detail::os_truncate(f, size);
}

void file::flush() {
  file_impl& f = live("flush");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::check_open(f);
  detail::flush_write(f);
}

void file::fsync() {
  file_impl& f = live("fsync");
  detail::hold h(f);
  detail::op_lock lock(f);
  detail::check_open(f);
  detail::flush_write(f);
  for (;;) {
    detail::check_open(f);
    const detail::outcome o = detail::submit(detail::op_kind::fsync, f.fd, nullptr, 0, 0, &f.group);
    o.rethrow_if_interrupted();
    const long r = o.result;
    if (detail::retry(r)) continue;
    if (r < 0) {
      detail::check_cancelled_by_close(f, r);
      detail::fail(f, "fsync", detail::backend_error(r));
    }
    return;
  }
}

void file::close() {
  if (!impl_) return;
  file_impl& f = live("close");
  detail::hold h(f);
  detail::await_closer(f);  // another tasklet is closing it: wait, then finish if it did not
  if (f.fd < 0) return;
  const detail::close_result r = detail::close_file(f, /*from_destructor=*/false);
  if (r.interrupted && r.flush_error) {
    // The flush failed (the rest of the buffer is lost), then a kill or throw arrived while the
    // descriptor was closed. The kill wins (the tasklet asked to end must end), so the loss is
    // said where ~file says it: on stderr, with the path. Found by io_file_fuzz.
    try {
      std::rethrow_exception(r.flush_error);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stackless: closing %s: %s\n", f.name.c_str(), e.what());
    }
  }
  if (r.interrupted) std::rethrow_exception(r.interrupted);
  if (r.flush_error) std::rethrow_exception(r.flush_error);
}

bool file::closed() const noexcept {
  return !impl_ || impl_->fd < 0 || impl_->closing;
}

const std::string& file::name() const noexcept {
  static const std::string none;
  return impl_ ? impl_->name : none;
}
const std::string& file::mode() const noexcept {
  static const std::string none;
  return impl_ ? impl_->mode : none;
}

int file::fileno() const {
  file_impl& f = live("fileno");
  detail::check_open(f);
  return f.fd;
}

bool file::isatty() const {
  file_impl& f = live("isatty");
  detail::check_open(f);
  return ::isatty(f.fd) == 1;
}

std::vector<std::string> file::newlines() const {
  std::vector<std::string> out;
  if (!impl_) return out;
  if (impl_->seen & detail::nl_cr) out.emplace_back("\r");
  if (impl_->seen & detail::nl_lf) out.emplace_back("\n");
  if (impl_->seen & detail::nl_crlf) out.emplace_back("\r\n");
  return out;
}

namespace detail {
namespace {
// check_positional(f, what, offset, size): refuses offsets past 2^63-1 (a signed offset of -1
// would mean "the current position" to the backends) and ranges whose end passes it.
void check_positional(const file_impl& f, const char* what, std::uint64_t offset,
                      std::size_t size) {
  const auto max = static_cast<std::uint64_t>(kMaxOffset);
  if (offset > max) {
    fail(f,
         std::string(what) + " at offset " + std::to_string(offset) +
             ": offset too large (the largest is 2^63-1)",
         EOVERFLOW);
  }
  if (size > max - offset) {
    fail(f,
         std::string(what) + " of " + std::to_string(size) + " bytes at offset " +
             std::to_string(offset) + ": the end would pass 2^63-1",
         EOVERFLOW);
  }
}
}  // namespace
}  // namespace detail

std::size_t file::pread(std::span<std::byte> buf, std::uint64_t offset) {
  file_impl& f = live("pread");
  detail::hold h(f);
  detail::check_readable(f);
  if (f.stream) detail::fail(f, "pread", ESPIPE);
  detail::check_positional(f, "pread", offset, buf.size());
  if (!f.wbuf.empty()) {
    detail::op_lock lock(f);
    detail::flush_write(f);
  }
  detail::check_readable(f);  // the flush may have waited for a close
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t k =
        detail::raw_read(f, reinterpret_cast<char*>(buf.data()) + got, buf.size() - got,
                         static_cast<std::int64_t>(offset + got), nullptr);
    if (k == 0) break;
    got += k;
  }
  return got;
}

std::size_t file::pwrite(std::span<const std::byte> data, std::uint64_t offset) {
  file_impl& f = live("pwrite");
  detail::hold h(f);
  detail::check_writable(f);
  if (f.stream) detail::fail(f, "pwrite", ESPIPE);
  detail::check_positional(f, "pwrite", offset, data.size());
  if (!f.wbuf.empty()) {
    detail::op_lock lock(f);
    detail::flush_write(f);
  }
  detail::check_writable(f);
  f.drop_read();  // the read-ahead may cover what we overwrite
  std::size_t done = 0;
  detail::raw_write_all(f, reinterpret_cast<const char*>(data.data()), data.size(),
                        static_cast<std::int64_t>(offset), done);
  return data.size();
}

}  // namespace stackless::io
