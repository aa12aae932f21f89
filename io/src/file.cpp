// io::file: Python's buffered file object on the poller. The only place where a negative errno
// from a backend becomes an exception (filesystem_error naming the operation, the path, the
// offset and the byte count).
//
// Invariants (regular files; streams such as pipes have no position and use offset -1):
//   pos is the logical position: where the next read or write of the user happens.
//   The read buffer rbuf[rbeg, rend) holds the file's bytes at [pos, pos + rend - rbeg).
//   The write buffer wbuf holds bytes for [wpos, wpos + wbuf.size()) and then pos == wpos +
//   wbuf.size(). At most one of the two buffers is non-empty.
//   busy is true while one tasklet runs a buffered operation; others wait on lock_ch.
#include <fcntl.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <unistd.h>
#ifdef _WIN32
#include <io.h>
#include <windows.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <thread>
#include <utility>

#include "poller.hpp"
#include "stackless/channel.hpp"
#include "stackless/io/file.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless::io {
namespace detail {

constexpr std::size_t kDefaultBuffer = 64 * 1024;
constexpr std::size_t kMaxChunk = std::size_t{1} << 30;  // one op moves at most 1 GiB
constexpr std::size_t kReadAllChunk = 256 * 1024;
constexpr std::int64_t kMaxOffset = std::numeric_limits<std::int64_t>::max();

enum newline_seen : unsigned { nl_cr = 1, nl_lf = 2, nl_crlf = 4 };

// lock_waiter: a tasklet queued on a file's operation lock (FIFO). Released holders hand the
// lock over directly (granted), so a newcomer can never barge past a waiter; close() wakes every
// waiter without granting it (it then raises "I/O operation on closed file").
struct lock_waiter {
  bool done = false;
  bool granted = false;
  lock_waiter* next = nullptr;
  signal_channel sig;
};

struct file_impl {
  int fd = -1;
  std::filesystem::path path;
  std::string name, mode;
  bool readable = false, writable = false, append = false, universal = false;
  bool stream = false;  // no position: pipes, FIFOs, terminals, sockets
  bool line_buffered = false;
  std::size_t bufsize = kDefaultBuffer;  // 0: unbuffered
  std::int64_t pos = 0;
  std::thread::id owner = std::this_thread::get_id();

  // The read buffer: rbuf[rbeg, rend) of rsize bytes allocated; a fill asks for rcap bytes. It
  // grows past rcap only to keep bytes a cancelled read took from a stream (unread()).
  std::unique_ptr<char[]> rbuf;
  std::size_t rcap = 0, rsize = 0, rbeg = 0, rend = 0;
  std::string wbuf;
  std::int64_t wpos = 0;

  bool skip_lf = false;  // 'U': the last byte was '\r'; a following '\n' belongs to it
  unsigned seen = 0;

  bool busy = false;  // a tasklet holds the operation lock
  lock_waiter* lock_head = nullptr;
  lock_waiter* lock_tail = nullptr;
  bool closing = false;                  // close() or ~file() has begun: no new operation starts
  bool final_flush = false;              // ...except the closer's own flush
  bool closer_active = false;            // a tasklet is inside close_file()
  lock_waiter* close_waiters = nullptr;  // other closers waiting for it (await_closer())
  op_group group;                        // every read, write and fsync in flight on fd

  // refs: the file handle's reference plus one per call in progress (a call never touches a
  // freed impl, whatever happens to the handle meanwhile). Thread-confined, so not atomic.
  std::size_t refs = 1;

  std::size_t avail() const noexcept { return rend - rbeg; }
  void drop_read() noexcept {
    if (!stream) rbeg = rend = 0;
  }
  // unread(p, k): puts k bytes back in front of the read buffer (a stream's bytes that a
  // cancelled read had taken: the next reader gets them).
  void unread(const char* p, std::size_t k) {
    if (k == 0) return;
    if (rbeg >= k) {
      std::memcpy(rbuf.get() + rbeg - k, p, k);
      rbeg -= k;
      return;
    }
    const std::size_t a = avail();
    const std::size_t size = std::max(rsize, k + a);
    auto nb = std::make_unique_for_overwrite<char[]>(size);
    std::memcpy(nb.get(), p, k);
    if (a) std::memcpy(nb.get() + k, rbuf.get() + rbeg, a);
    rbuf = std::move(nb);
    rsize = size;
    rbeg = 0;
    rend = k + a;
  }
};

namespace {

[[noreturn]] void fail(const file_impl& f, const std::string& what, std::error_code ec) {
  throw std::filesystem::filesystem_error(what, f.path, ec);
}
[[noreturn]] void fail(const file_impl& f, const std::string& what, int err) {
  fail(f, what, std::error_code(err, std::generic_category()));
}
[[noreturn]] void fail_closed(const file_impl& f) {
  fail(f, "I/O operation on closed file", EBADF);
}

// backend_error(r): the error of a failed operation (r < 0): -errno, or on Windows the negative
// Win32 error code (backend.hpp).
std::error_code backend_error(long r) {
#ifdef _WIN32
  return {static_cast<int>(-r), std::system_category()};
#else
  return {static_cast<int>(-r), std::generic_category()};
#endif
}

// retry(r): an interrupted operation to issue again (POSIX EINTR/EAGAIN; never on Windows).
bool retry(long r) noexcept {
#ifdef _WIN32
  (void)r;
  return false;
#else
  return r == -EINTR || r == -EAGAIN;
#endif
}

[[noreturn]] void fail_io(const file_impl& f, const char* op, std::error_code ec, std::int64_t off,
                          std::size_t count, std::string extra = {}) {
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

#ifdef _WIN32
HANDLE handle_of(const file_impl& f) noexcept {
  return reinterpret_cast<HANDLE>(::_get_osfhandle(f.fd));
}
std::error_code last_error() noexcept {
  return {static_cast<int>(::GetLastError()), std::system_category()};
}
#endif

std::int64_t file_size(const file_impl& f) {
#ifdef _WIN32
  LARGE_INTEGER size{};
  if (!::GetFileSizeEx(handle_of(f), &size)) fail(f, "GetFileSizeEx", last_error());
  return size.QuadPart;
#else
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail(f, "fstat", errno);
  return st.st_size;
#endif
}

// read_txn: one read call's bookkeeping, so that a call ended by an exception (a kill, a throw,
// an I/O error) leaves the file as if it had not read: a regular file's position and 'U' state
// are restored (its bytes are still in the file); a stream's bytes the call had taken (the
// journal) are put back in front of the read buffer for the next reader.
class read_txn {
 public:
  explicit read_txn(file_impl& f) noexcept
      : f_(f), pos0_(f.pos), skip0_(f.skip_lf), uncaught_(std::uncaught_exceptions()) {}
  read_txn(const read_txn&) = delete;
  read_txn& operator=(const read_txn&) = delete;
  ~read_txn() {
    if (std::uncaught_exceptions() <= uncaught_) return;
    f_.skip_lf = skip0_;
    if (!f_.stream) {
      f_.pos = pos0_;
      f_.drop_read();
      return;
    }
    try {
      f_.unread(journal_.data(), journal_.size());
    } catch (...) {  // out of memory while unwinding: say what is lost rather than terminate
      std::fprintf(stderr, "stackless: %s: %zu bytes read from a stream were lost (no memory)\n",
                   f_.name.c_str(), journal_.size());
    }
  }
  // took(p, k): the call took k bytes at p from the file object (a stream's are journaled).
  void took(const char* p, std::size_t k) {
    if (f_.stream) journal_.append(p, k);
  }

 private:
  file_impl& f_;
  std::int64_t pos0_;
  bool skip0_;
  int uncaught_;
  std::string journal_;
};

// raw_read(f, dst, n, off, txn): one read of up to n bytes (fewer: EOF or a short read). 0 = EOF.
// If a kill or throw arrives after the kernel read bytes into dst, they are kept: a fill of the
// read buffer (dst == the buffer) keeps them there, any other dst hands them to txn; then the
// exception propagates.
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
                   std::size_t& done, submit_flags flags = submit_flags::cancellable) {
  done = 0;
  if (!f.stream &&
      (off < 0 || static_cast<std::uint64_t>(off) + n > static_cast<std::uint64_t>(kMaxOffset)))
    fail_io(f, "write", std::make_error_code(std::errc::file_too_large), off, n,
            ": the end would pass the largest offset, 2^63-1");
  while (done < n) {
    const auto len = static_cast<std::uint32_t>(std::min(n - done, kMaxChunk));
    const std::int64_t at = f.stream ? -1 : off + static_cast<std::int64_t>(done);
#ifdef _WIN32
    // Append mode: offset -1 is FILE_WRITE_TO_END_OF_FILE (O_APPEND does this on POSIX).
    const std::int64_t to = f.append ? -1 : at;
#else
    const std::int64_t to = at;
#endif
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

void check_open(const file_impl& f) {
  if (f.fd < 0 || f.closing) fail_closed(f);
}
void check_readable(const file_impl& f) {
  check_open(f);
  if (!f.readable) fail(f, "file not open for reading (mode '" + f.mode + "')", EBADF);
}
void check_writable(const file_impl& f) {
  check_open(f);
  if (!f.writable) fail(f, "file not open for writing (mode '" + f.mode + "')", EBADF);
}

// write_front(f, n, flags): writes the first n buffered bytes. The bytes that reached the file
// leave the buffer (wpos moves past them) however the call ends; the rest stays buffered for a
// retry (Python's BufferedWriter), so the file never gets a hole and the position stays true.
void write_front(file_impl& f, std::size_t n, submit_flags flags) {
  std::size_t done = 0;
  struct account {
    file_impl& f;
    std::size_t& done;
    ~account() {
      f.wbuf.erase(0, done);
      f.wpos += static_cast<std::int64_t>(done);
    }
  } acc{f, done};
  raw_write_all(f, f.wbuf.data(), n, f.wpos, done, flags);
}

// flush_write(f, flags): writes the whole write buffer (write_front).
void flush_write(file_impl& f, submit_flags flags = submit_flags::cancellable) {
  if (f.wbuf.empty()) return;
  write_front(f, f.wbuf.size(), flags);
  if (f.append && !f.stream) f.pos = file_size(f);  // the kernel wrote at the end
}

// flush_lines(f): writes the buffered bytes up to and including the last '\n'; keeps the rest.
void flush_lines(file_impl& f) {
  write_front(f, f.wbuf.rfind('\n') + 1, submit_flags::cancellable);
  if (f.append && !f.stream) f.wpos = file_size(f);  // the kernel wrote at the end
}

void prepare_read(file_impl& f) {
  check_readable(f);
  flush_write(f);
}

void prepare_write(file_impl& f) {
  check_writable(f);
  if (f.avail()) f.drop_read();
  f.skip_lf = false;
}

// fill(f): refills the empty read buffer; returns the bytes read (0 = EOF).
std::size_t fill(file_impl& f) {
  f.rbeg = f.rend = 0;
  // An unbuffered stream reads byte by byte: nothing may be taken that the caller won't get.
  const std::size_t want = (f.stream && f.bufsize == 0) ? 1 : f.rcap;
  f.rend = raw_read(f, f.rbuf.get(), want, f.pos, nullptr);
  return f.rend;
}

// consume(f, k, txn): the call takes k bytes from the front of the read buffer.
void consume(file_impl& f, std::size_t k, read_txn& txn) {
  txn.took(f.rbuf.get() + f.rbeg, k);
  f.rbeg += k;
  if (!f.stream) f.pos += static_cast<std::int64_t>(k);
}

// Unbuffered regular files keep nothing between calls (positional reads make that free).
struct end_of_call {
  file_impl& f;
  ~end_of_call() {
    if (f.bufsize == 0) f.drop_read();
  }
};

// read_universal(f, out, max, line, txn): appends up to max translated bytes; stops after '\n'
// when `line`. '\r\n' and '\r' become '\n' and are recorded in f.seen.
void read_universal(file_impl& f, std::string& out, std::size_t max, bool line, read_txn& txn) {
  while (out.size() < max) {
    if (!f.avail() && fill(f) == 0) {
      if (f.skip_lf) f.seen |= nl_cr;
      f.skip_lf = false;
      break;
    }
    const char* p = f.rbuf.get() + f.rbeg;
    const std::size_t a = f.avail();
    std::size_t i = 0;
    bool stop = false;
    while (i < a && !stop) {
      const char c = p[i++];
      if (f.skip_lf) {
        f.skip_lf = false;
        if (c == '\n') {
          f.seen |= nl_crlf;
          continue;
        }
        f.seen |= nl_cr;
      }
      if (c == '\r') {
        out.push_back('\n');
        f.skip_lf = true;
      } else {
        if (c == '\n') f.seen |= nl_lf;
        out.push_back(c);
      }
      stop = out.size() == max || (line && out.back() == '\n');
    }
    consume(f, i, txn);
    if (stop) break;
  }
}

// read_exact(f, dst, n, txn): reads up to n bytes into dst (non-'U'); fewer only at EOF.
std::size_t read_exact(file_impl& f, char* dst, std::size_t n, read_txn& txn) {
  std::size_t got = std::min(f.avail(), n);
  std::memcpy(dst, f.rbuf.get() + f.rbeg, got);
  consume(f, got, txn);
  while (got < n) {
    const std::size_t left = n - got;
    if (left >= f.rcap || f.bufsize == 0) {
      // large: straight into dst
      const std::size_t k = raw_read(f, dst + got, left, f.pos, &txn);
      if (k == 0) break;
      txn.took(dst + got, k);
      got += k;
      if (!f.stream) f.pos += static_cast<std::int64_t>(k);
    } else {
      if (fill(f) == 0) break;
      const std::size_t k = std::min(f.avail(), left);
      std::memcpy(dst + got, f.rbuf.get() + f.rbeg, k);
      consume(f, k, txn);
      got += k;
    }
  }
  return got;
}

// prefault(p, n): populate the pages of [p, p + n) in one system call. Fresh memory otherwise
// costs a page fault per 4 KiB page on first touch, and on VMs with expensive faults that is
// most of the time a large read() takes (issue 12: 64 MiB cost 0.5 s of faults, 0.05 s of
// reading). Best effort: kernels without MADV_POPULATE_WRITE (before 5.14) just fault.
void prefault(char* p, std::size_t n) noexcept {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  constexpr std::size_t kMin = 1 << 20;  // below this the faults are cheap enough
  if (n < kMin) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto b = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
  const auto e = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(page - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)n;
#endif
}

// read_growing(f, out, n, txn): appends up to n bytes (fewer only at EOF) to out, growing it
// with the data rather than by n: read(1 GiB) of a 15-byte file allocates a few bytes, and
// read(SIZE_MAX) reads to the end. A regular file's size sets the first step.
void read_growing(file_impl& f, std::string& out, std::size_t n, read_txn& txn) {
  std::size_t step = kReadAllChunk;
  if (!f.stream) {
    const std::int64_t left = std::max<std::int64_t>(0, file_size(f) - f.pos);
    // The known rest in one op, plus one byte that shows whether the file grew meanwhile.
    step = f.avail() + static_cast<std::size_t>(std::min<std::int64_t>(left, kMaxChunk)) + 1;
  }
  std::size_t wanted = 0;
  while (wanted < n) {
    const std::size_t want = std::min(n - wanted, step);
    const std::size_t old = out.size();
    if (out.capacity() < old + want) {
      out.reserve(old + want);
      prefault(out.data() + old, out.capacity() - old);
    }
    out.resize(old + want);
    const std::size_t k = read_exact(f, out.data() + old, want, txn);
    out.resize(old + k);
    wanted += k;
    if (k < want) break;  // end of file
    if (!f.stream && wanted < n) {
      // The file may have ended exactly here: find out through the (warm) read buffer instead of
      // growing the string by another step.
      if (!f.avail() && fill(f) == 0) break;
      step = std::max(step, f.avail());
    }
    step = std::min(step * 2, kMaxChunk);
  }
}

// refuse_embedded_nul(path): the OS would stop at the NUL and open another file ("a.txt\0.bak"
// would truncate "a.txt"): refused, as Python does ("embedded null byte").
void refuse_embedded_nul(const std::filesystem::path& path) {
  const auto& native = path.native();
  if (native.find(std::filesystem::path::value_type(0)) == native.npos) return;
  std::string shown;
  for (char c : path.string()) {
    if (c == '\0')
      shown += "\\0";
    else
      shown += c;
  }
  throw std::filesystem::filesystem_error(
      "stackless::io::open: embedded null byte in path \"" + shown + "\"",
      std::make_error_code(std::errc::invalid_argument));
}

struct parsed_mode {
  int flags = 0;
  bool readable = false, writable = false, append = false, universal = false;
};

parsed_mode parse_mode(std::string_view mode) {
  auto bad = [&]() -> std::invalid_argument {
    return std::invalid_argument("stackless::io::open: invalid mode '" + std::string(mode) +
                                 "' (expected r, w, a or x, optionally with +, b or t, or "
                                 "U for reading)");
  };
  int kind = 0, plus = 0, b = 0, t = 0, u = 0;
  char base = 0;
  for (char c : mode) {
    switch (c) {
      case 'r':
      case 'w':
      case 'a':
      case 'x':
        ++kind;
        base = c;
        break;
      case '+':
        ++plus;
        break;
      case 'b':
        ++b;
        break;
      case 't':
        ++t;
        break;
      case 'U':
        ++u;
        break;
      default:
        throw bad();
    }
  }
  if (kind > 1 || plus > 1 || b > 1 || t > 1 || u > 1 || (b && t)) throw bad();
  if (u) {
    if (base == 0) base = 'r';
    if (base != 'r' || plus) throw bad();
  }
  if (base == 0) throw bad();
  parsed_mode m;
  m.universal = u != 0;
  switch (base) {
    case 'r':
      m.readable = true;
      break;
    case 'w':
      m.writable = true;
      m.flags = O_CREAT | O_TRUNC;
      break;
    case 'a':
      m.writable = true;
      m.append = true;
      m.flags = O_CREAT | O_APPEND;
      break;
    case 'x':
      m.writable = true;
      m.flags = O_CREAT | O_EXCL;
      break;
  }
  if (plus) m.readable = m.writable = true;
  m.flags |= (m.readable && m.writable) ? O_RDWR : (m.readable ? O_RDONLY : O_WRONLY);
  return m;
}

#ifdef _WIN32
// open_windows(f, m): CreateFileW with FILE_FLAG_OVERLAPPED (the IOCP backend needs it), wrapped
// in a C runtime descriptor (fileno(), and _get_osfhandle() for the backend). Sets f.fd and
// f.stream. The path is UTF-16 already (std::filesystem::path is wchar_t-based on Windows; a
// narrow path given to open() was converted from UTF-8 by std::filesystem). Sharing is
// POSIX-like: other opens, renames and deletes are allowed while the file is open.
int open_windows(file_impl& f, const parsed_mode& m) {
  const std::string what = "open with mode '" + f.mode + "'";
  DWORD access = 0;
  if (m.readable) access |= GENERIC_READ;
  // Append: FILE_APPEND_DATA without FILE_WRITE_DATA, and writes at FILE_WRITE_TO_END_OF_FILE.
  if (m.writable) access |= m.append ? (FILE_APPEND_DATA | SYNCHRONIZE) : GENERIC_WRITE;
  DWORD disposition = OPEN_EXISTING;
  if (m.flags & O_TRUNC)
    disposition = CREATE_ALWAYS;
  else if (m.flags & O_EXCL)
    disposition = CREATE_NEW;
  else if (m.flags & O_CREAT)
    disposition = OPEN_ALWAYS;
  HANDLE h =
      ::CreateFileW(f.path.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    nullptr, disposition, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const std::error_code ec = last_error();
    // A directory is ERROR_ACCESS_DENIED (or ERROR_PATH_NOT_FOUND under Wine); POSIX says EISDIR.
    const DWORD attrs = ::GetFileAttributesW(f.path.c_str());
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
      fail(f, what, EISDIR);
    fail(f, what, ec);
  }
  const DWORD type = ::GetFileType(h);
  int crt_flags = m.readable && !m.writable ? _O_RDONLY : (m.readable ? _O_RDWR : _O_WRONLY);
  if (m.append) crt_flags |= _O_APPEND;
  const int fd = ::_open_osfhandle(reinterpret_cast<intptr_t>(h), crt_flags | _O_BINARY);
  if (fd < 0) {
    const int err = errno;
    ::CloseHandle(h);
    fail(f, what, err);
  }
  f.fd = fd;
  f.stream = type != FILE_TYPE_DISK;
  return fd;
}
#endif

}  // namespace
}  // namespace detail

namespace detail {

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
#ifdef _WIN32
    ::close(f.fd);
#else
    // Through the poller as well (closing can flush on NFS); not cancellable: once asked, the
    // descriptor is gone (released even when the kernel reports EINTR).
    const outcome c =
        submit(op_kind::close, f.fd, nullptr, 0, 0, nullptr, submit_flags::uncancellable);
    if (c.interrupted && !res.interrupted) res.interrupted = c.interrupted;
    if (c.result < 0 && c.result != -EINTR && !res.flush_error) {
      try {
        fail(f, "close", static_cast<int>(-c.result));
      } catch (...) {
        res.flush_error = std::current_exception();
      }
    }
#endif
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
#ifdef _WIN32
  FILE_END_OF_FILE_INFO eof{};
  eof.EndOfFile.QuadPart = size;
  if (!::SetFileInformationByHandle(detail::handle_of(f), FileEndOfFileInfo, &eof, sizeof eof))
    detail::fail(f, "truncate to " + std::to_string(size), detail::last_error());
#else
  for (;;) {
    detail::check_open(f);
    const detail::outcome o =
        detail::submit(detail::op_kind::ftruncate, f.fd, nullptr, 0, size, &f.group);
    o.rethrow_if_interrupted();
    if (detail::retry(o.result)) continue;
    if (o.result < 0) {
      detail::check_cancelled_by_close(f, o.result);
      detail::fail(f, "truncate to " + std::to_string(size), detail::backend_error(o.result));
    }
    break;
  }
#endif
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

file open(const std::filesystem::path& path, std::string_view mode, int buffering) {
  const detail::parsed_mode m = detail::parse_mode(mode);
  detail::refuse_embedded_nul(path);
  std::unique_ptr<file_impl, detail::impl_release> f(new file_impl);  // NOLINT: refcounted
  f->path = path;
#ifdef _WIN32
  const std::u8string u8 = path.u8string();  // name(): UTF-8, as narrow paths are given
  f->name.assign(u8.begin(), u8.end());
#else
  f->name = path.string();
#endif
  f->mode = std::string(mode);
  f->readable = m.readable;
  f->writable = m.writable;
  f->append = m.append;
  f->universal = m.universal;
#ifdef _WIN32
  const int fd = detail::open_windows(*f, m);
  const bool tty = ::isatty(fd) == 1;
#else
  // Through the poller (io_uring OPENAT, or a pool worker): a slow file system blocks only
  // this tasklet.
  int fd;
  for (;;) {
    const detail::outcome o =
        detail::submit_open(path.c_str(), m.flags | O_CLOEXEC, 0666);  // closed if killed
    o.rethrow_if_interrupted();
    if (o.result >= 0) {
      fd = static_cast<int>(o.result);
      break;
    }
    if (o.result == -EINTR) continue;
    detail::fail(*f, "open with mode '" + f->mode + "'", static_cast<int>(-o.result));
  }
  f->fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    f->fd = -1;
    detail::fail(*f, "open with mode '" + f->mode + "'", err);
  }
  f->stream = !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
  const bool tty = ::isatty(fd) == 1;
#endif
  if (buffering < 0) {
    f->bufsize = detail::kDefaultBuffer;
    f->line_buffered = tty;
  } else if (buffering == 1) {
    f->bufsize = detail::kDefaultBuffer;
    f->line_buffered = true;
  } else {
    f->bufsize = static_cast<std::size_t>(buffering);
  }
  f->rcap = f->rsize = f->bufsize ? f->bufsize : 8192;
  f->rbuf = std::make_unique_for_overwrite<char[]>(f->rcap);
#ifdef _WIN32
  if (f->append && !f->stream) f->pos = detail::file_size(*f);
#else
  if (f->append && !f->stream) f->pos = st.st_size;
#endif
  return file(std::move(f));
}

file open(std::string_view utf8_path, std::string_view mode, int buffering) {
  const std::u8string u8(utf8_path.begin(), utf8_path.end());
  file f = open(std::filesystem::path(u8), mode, buffering);
  f.impl_->name = std::string(utf8_path);
  return f;
}

}  // namespace stackless::io
