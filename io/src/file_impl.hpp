// Internal: io::file's control block and what the file sources share (file.cpp: the object, its
// lock and close; file_buffer.cpp: buffering; file_raw.cpp: unbuffered reads and writes through
// the poller; file_open.cpp: modes and open(); file_posix.cpp / file_win.cpp: the OS calls).
//
// Invariants (regular files; streams such as pipes have no position and use offset -1):
//   pos is the logical position: where the next read or write of the user happens.
//   The read buffer rbuf[rbeg, rend) holds the file's bytes at [pos, pos + rend - rbeg).
//   The write buffer wbuf holds bytes for [wpos, wpos + wbuf.size()) and then pos == wpos +
//   wbuf.size(). At most one of the two buffers is non-empty.
//   busy is true while one tasklet runs a buffered operation; others wait on lock_ch.
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "poller.hpp"
#include "stackless/channel.hpp"
#include "stackless/io/file.hpp"

namespace stackless::io::detail {

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

// ---- errors (file_raw.cpp) ---------------------------------------------------------------------
[[noreturn]] void fail(const file_impl& f, const std::string& what, std::error_code ec);
[[noreturn]] void fail(const file_impl& f, const std::string& what, int err);
[[noreturn]] void fail_closed(const file_impl& f);
// fail_io(f, op, ec, off, count, extra): "<op> at offset <off> (<count> bytes<extra>)".
[[noreturn]] void fail_io(const file_impl& f, const char* op, std::error_code ec, std::int64_t off,
                          std::size_t count, std::string extra = {});
// check_cancelled_by_close(f, r): r < 0 from a cancelled op on a closing file is "closed"; other
// errors are the caller's to report.
void check_cancelled_by_close(const file_impl& f, long r);

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

// ---- unbuffered I/O through the poller (file_raw.cpp) ------------------------------------------
// raw_read(f, dst, n, off, txn): one read of up to n bytes (fewer: EOF or a short read). 0 = EOF.
// If a kill or throw arrives after the kernel read bytes into dst, they are kept: a fill of the
// read buffer (dst == the buffer) keeps them there, any other dst hands them to txn; then the
// exception propagates.
std::size_t raw_read(file_impl& f, char* dst, std::size_t n, std::int64_t off, read_txn* txn);
// raw_write_all(f, src, n, off, done, flags): writes all n bytes at off; short writes continue.
// `done` counts the bytes that reached the file, and is up to date however the call ends (an
// error, a kill): the caller moves its position by it. A failure throws naming the offset where
// the failing write started, the bytes it tried and how many of the n were written.
void raw_write_all(file_impl& f, const char* src, std::size_t n, std::int64_t off,
                   std::size_t& done, submit_flags flags = submit_flags::cancellable);

// ---- buffering (file_buffer.cpp) ---------------------------------------------------------------
void check_open(const file_impl& f);
void check_readable(const file_impl& f);
void check_writable(const file_impl& f);
// flush_write(f, flags): writes the whole write buffer.
void flush_write(file_impl& f, submit_flags flags = submit_flags::cancellable);
// flush_lines(f): writes the buffered bytes up to and including the last '\n'; keeps the rest.
void flush_lines(file_impl& f);
void prepare_read(file_impl& f);
void prepare_write(file_impl& f);
// fill(f): refills the empty read buffer; returns the bytes read (0 = EOF).
std::size_t fill(file_impl& f);
// consume(f, k, txn): the call takes k bytes from the front of the read buffer.
void consume(file_impl& f, std::size_t k, read_txn& txn);
// read_universal(f, out, max, line, txn): appends up to max translated bytes; stops after '\n'
// when `line`. '\r\n' and '\r' become '\n' and are recorded in f.seen.
void read_universal(file_impl& f, std::string& out, std::size_t max, bool line, read_txn& txn);
// read_exact(f, dst, n, txn): reads up to n bytes into dst (non-'U'); fewer only at EOF.
std::size_t read_exact(file_impl& f, char* dst, std::size_t n, read_txn& txn);
// read_growing(f, out, n, txn): appends up to n bytes (fewer only at EOF) to out, growing it
// with the data rather than by n.
void read_growing(file_impl& f, std::string& out, std::size_t n, read_txn& txn);

// Unbuffered regular files keep nothing between calls (positional reads make that free).
struct end_of_call {
  file_impl& f;
  ~end_of_call() {
    if (f.bufsize == 0) f.drop_read();
  }
};

// ---- modes (file_open.cpp) ---------------------------------------------------------------------
struct parsed_mode {
  int flags = 0;
  bool readable = false, writable = false, append = false, universal = false;
};

// ---- the OS calls (file_posix.cpp, file_win.cpp) -----------------------------------------------
// backend_error(r): the error of a failed operation (r < 0): -errno, or on Windows the negative
// Win32 error code (backend.hpp).
std::error_code backend_error(long r);
// retry(r): an interrupted operation to issue again (POSIX EINTR/EAGAIN; never on Windows).
bool retry(long r) noexcept;
// Windows writes in append mode at offset -1 (FILE_WRITE_TO_END_OF_FILE); POSIX has O_APPEND.
#ifdef _WIN32
inline constexpr bool kAppendAtOffsetMinus1 = true;
#else
inline constexpr bool kAppendAtOffsetMinus1 = false;
#endif
// display_name(path): file::name(), UTF-8.
std::string display_name(const std::filesystem::path& path);
std::int64_t file_size(const file_impl& f);
// prefault(p, n): populate the pages of [p, p + n) in one system call (best effort).
void prefault(char* p, std::size_t n) noexcept;
// os_open(f, m): opens f.path with mode m; sets f.fd and f.stream. Returns the file's size (for
// append mode) and whether it is a terminal. Throws filesystem_error naming the mode.
struct os_opened {
  std::int64_t size = 0;
  bool tty = false;
};
os_opened os_open(file_impl& f, const parsed_mode& m);
// os_truncate(f, size): sets the file's size (flushed, read buffer dropped, lock held).
void os_truncate(file_impl& f, std::int64_t size);
// os_close(f, interrupted, error): closes f.fd (not cancellable); a kill that arrives meanwhile
// goes to `interrupted`, a failure to `error` (each only if still empty).
void os_close(file_impl& f, std::exception_ptr& interrupted, std::exception_ptr& error);

}  // namespace stackless::io::detail
