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
#include <unistd.h>
#ifdef _WIN32
#include <io.h>
#include <windows.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "poller.hpp"
#include "stackless/channel.hpp"
#include "stackless/io/file.hpp"

namespace stackless::io {
namespace detail {

constexpr std::size_t kDefaultBuffer = 64 * 1024;
constexpr std::size_t kMaxChunk = std::size_t{1} << 30;  // one op moves at most 1 GiB
constexpr std::size_t kReadAllChunk = 256 * 1024;

enum newline_seen : unsigned { nl_cr = 1, nl_lf = 2, nl_crlf = 4 };

struct file_impl {
  int fd = -1;
  std::filesystem::path path;
  std::string name, mode;
  bool readable = false, writable = false, append = false, universal = false;
  bool stream = false;  // no position: pipes, FIFOs, terminals, sockets
  bool line_buffered = false;
  std::size_t bufsize = kDefaultBuffer;  // 0: unbuffered
  std::int64_t pos = 0;

  std::unique_ptr<char[]> rbuf;
  std::size_t rcap = 0, rbeg = 0, rend = 0;
  std::string wbuf;
  std::int64_t wpos = 0;

  bool skip_lf = false;  // 'U': the last byte was '\r'; a following '\n' belongs to it
  unsigned seen = 0;

  bool busy = false;
  channel<void> lock_ch;
  int positional = 0;  // pread/pwrite in flight
  channel<void> drain_ch;

  std::size_t avail() const noexcept { return rend - rbeg; }
  void drop_read() noexcept {
    if (!stream) rbeg = rend = 0;
  }
};

namespace {

[[noreturn]] void fail(const file_impl& f, const std::string& what, std::error_code ec) {
  throw std::filesystem::filesystem_error(what, f.path, ec);
}
[[noreturn]] void fail(const file_impl& f, const std::string& what, int err) {
  fail(f, what, std::error_code(err, std::generic_category()));
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
                          std::size_t count) {
  std::string what = op;
  if (off >= 0) what += " at offset " + std::to_string(off);
  what += " (" + std::to_string(count) + " bytes)";
  fail(f, what, ec);
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

// raw_read(f, dst, n, off): one read of up to n bytes (fewer: EOF or a short read). 0 = EOF.
std::size_t raw_read(file_impl& f, char* dst, std::size_t n, std::int64_t off) {
  const auto len = static_cast<std::uint32_t>(std::min(n, kMaxChunk));
  for (;;) {
    const long r = submit_and_wait(op_kind::read, f.fd, dst, len, f.stream ? -1 : off);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (retry(r)) continue;
    fail_io(f, "read", backend_error(r), f.stream ? -1 : off, len);
  }
}

// raw_write_all(f, src, n, off): writes all n bytes; short writes continue. Throws on failure,
// naming the offset where the failing write started and the bytes it tried.
void raw_write_all(file_impl& f, const char* src, std::size_t n, std::int64_t off) {
  std::size_t done = 0;
  while (done < n) {
    const auto len = static_cast<std::uint32_t>(std::min(n - done, kMaxChunk));
    const std::int64_t at = f.stream ? -1 : off + static_cast<std::int64_t>(done);
#ifdef _WIN32
    // Append mode: offset -1 is FILE_WRITE_TO_END_OF_FILE (O_APPEND does this on POSIX).
    const std::int64_t to = f.append ? -1 : at;
#else
    const std::int64_t to = at;
#endif
    const long r = submit_and_wait(op_kind::write, f.fd, const_cast<char*>(src + done), len, to);
    if (retry(r)) continue;
    if (r < 0) fail_io(f, "write", backend_error(r), at, len);
    if (r == 0)
      fail_io(f, "write (no progress)", std::make_error_code(std::errc::io_error), at, len);
    done += static_cast<std::size_t>(r);
  }
}

// A whole buffered operation runs with the file's lock held (a tasklet-level mutex).
class op_lock {
 public:
  explicit op_lock(file_impl& f) : f_(f) {
    while (f_.busy) {
      try {
        f_.lock_ch.receive();
      } catch (...) {
        pass_on(f_);  // we may have been handed the wakeup meant for the next waiter
        throw;
      }
    }
    f_.busy = true;
  }
  ~op_lock() {
    f_.busy = false;
    pass_on(f_);
  }
  op_lock(const op_lock&) = delete;
  op_lock& operator=(const op_lock&) = delete;

 private:
  static void pass_on(file_impl& f) {
    if (!f.busy && f.lock_ch.balance() < 0) f.lock_ch.send();  // preference 1: no switch
  }
  file_impl& f_;
};

class positional_guard {
 public:
  explicit positional_guard(file_impl& f) noexcept : f_(f) { ++f_.positional; }
  ~positional_guard() {
    if (--f_.positional == 0 && f_.drain_ch.balance() < 0) f_.drain_ch.send();
  }
  positional_guard(const positional_guard&) = delete;
  positional_guard& operator=(const positional_guard&) = delete;

 private:
  file_impl& f_;
};

void check_open(const file_impl& f) {
  if (f.fd < 0) fail(f, "I/O operation on closed file", EBADF);
}
void check_readable(const file_impl& f) {
  check_open(f);
  if (!f.readable) fail(f, "file not open for reading (mode '" + f.mode + "')", EBADF);
}
void check_writable(const file_impl& f) {
  check_open(f);
  if (!f.writable) fail(f, "file not open for writing (mode '" + f.mode + "')", EBADF);
}

void flush_write(file_impl& f) {
  if (f.wbuf.empty()) return;
  std::string data;
  data.swap(f.wbuf);  // dropped on failure: the error is reported once
  raw_write_all(f, data.data(), data.size(), f.wpos);
  if (f.append && !f.stream) f.pos = file_size(f);  // the kernel wrote at the end
}

// flush_lines(f): writes the buffered bytes up to and including the last '\n'; keeps the rest.
void flush_lines(file_impl& f) {
  const std::size_t k = f.wbuf.rfind('\n') + 1;
  std::string rest = f.wbuf.substr(k);
  f.wbuf.resize(k);
  const std::int64_t rest_at = f.wpos + static_cast<std::int64_t>(k);
  flush_write(f);
  f.wbuf = std::move(rest);
  f.wpos = f.append ? f.pos - static_cast<std::int64_t>(f.wbuf.size()) : rest_at;
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
  f.rend = raw_read(f, f.rbuf.get(), want, f.pos);
  return f.rend;
}

void consume(file_impl& f, std::size_t k) noexcept {
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

// read_universal(f, out, max, line): appends up to max translated bytes; stops after '\n' when
// `line`. '\r\n' and '\r' become '\n' and are recorded in f.seen.
void read_universal(file_impl& f, std::string& out, std::size_t max, bool line) {
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
    consume(f, i);
    if (stop) break;
  }
}

// read_exact(f, dst, n): reads up to n bytes into dst (non-'U'); fewer only at EOF.
std::size_t read_exact(file_impl& f, char* dst, std::size_t n) {
  std::size_t got = std::min(f.avail(), n);
  std::memcpy(dst, f.rbuf.get() + f.rbeg, got);
  consume(f, got);
  while (got < n) {
    const std::size_t left = n - got;
    if (left >= f.rcap || f.bufsize == 0) {
      const std::size_t k = raw_read(f, dst + got, left, f.pos);  // large: straight into dst
      if (k == 0) break;
      got += k;
      if (!f.stream) f.pos += static_cast<std::int64_t>(k);
    } else {
      if (fill(f) == 0) break;
      const std::size_t k = std::min(f.avail(), left);
      std::memcpy(dst + got, f.rbuf.get() + f.rbeg, k);
      consume(f, k);
      got += k;
    }
  }
  return got;
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

using detail::file_impl;

file::file() noexcept = default;
file::file(std::unique_ptr<file_impl> p) noexcept : impl_(std::move(p)) {}
file::file(file&&) noexcept = default;
file& file::operator=(file&& o) noexcept {
  if (this != &o) {
    file old(std::move(*this));
    impl_ = std::move(o.impl_);
  }
  return *this;
}

file::~file() {
  if (!impl_ || impl_->fd < 0) return;
  try {
    close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stackless: closing %s: %s\n", impl_->name.c_str(), e.what());
  }
}

file_impl& file::live(const char* op) const {
  if (!impl_) {
    throw std::filesystem::filesystem_error(std::string(op) + ": I/O operation on closed file",
                                            std::error_code(EBADF, std::generic_category()));
  }
  return *impl_;
}

std::string file::read() {
  file_impl& f = live("read");
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  std::string out;
  if (f.universal) {
    detail::read_universal(f, out, std::string::npos, false);
    return out;
  }
  out.assign(f.rbuf.get() + f.rbeg, f.avail());
  detail::consume(f, f.avail());
  std::size_t chunk = detail::kReadAllChunk;
  if (!f.stream) {
    const std::int64_t left = detail::file_size(f) - f.pos;
    // One op for the whole known rest, then one more that confirms the end.
    if (left > 0) chunk = std::max(chunk, static_cast<std::size_t>(left) + 1);
  }
  for (;;) {
    const std::size_t old = out.size();
    out.resize(old + std::min(chunk, detail::kMaxChunk));
    const std::size_t k = detail::raw_read(f, out.data() + old, out.size() - old, f.pos);
    out.resize(old + k);
    if (k == 0) break;
    if (!f.stream) f.pos += static_cast<std::int64_t>(k);
  }
  return out;
}

std::string file::read(std::size_t n) {
  file_impl& f = live("read");
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  std::string out;
  if (f.universal) {
    detail::read_universal(f, out, n, false);
    return out;
  }
  out.resize(n);
  out.resize(detail::read_exact(f, out.data(), n));
  return out;
}

std::size_t file::readinto(std::span<std::byte> buf) {
  file_impl& f = live("readinto");
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  if (f.universal) {
    std::string tmp;
    detail::read_universal(f, tmp, buf.size(), false);
    std::memcpy(buf.data(), tmp.data(), tmp.size());
    return tmp.size();
  }
  return detail::read_exact(f, reinterpret_cast<char*>(buf.data()), buf.size());
}

std::string file::readline(std::size_t limit) {
  file_impl& f = live("readline");
  detail::op_lock lock(f);
  detail::end_of_call eoc{f};
  detail::prepare_read(f);
  std::string out;
  if (f.universal) {
    detail::read_universal(f, out, limit, true);
    return out;
  }
  while (out.size() < limit) {
    if (!f.avail() && detail::fill(f) == 0) break;
    const char* p = f.rbuf.get() + f.rbeg;
    const std::size_t a = std::min(f.avail(), limit - out.size());
    const void* nl = std::memchr(p, '\n', a);
    const std::size_t k = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - p) + 1 : a;
    out.append(p, k);
    detail::consume(f, k);
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
  detail::op_lock lock(f);
  detail::prepare_write(f);
  const char* p = reinterpret_cast<const char*>(bytes.data());
  const std::size_t n = bytes.size();
  if (f.wbuf.empty()) f.wpos = f.pos;
  if (f.bufsize == 0 || n >= f.bufsize) {
    detail::flush_write(f);
    detail::raw_write_all(f, p, n, f.pos);
    if (f.stream) return n;
    f.pos = f.append ? detail::file_size(f) : f.pos + static_cast<std::int64_t>(n);
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
  detail::op_lock lock(f);
  detail::check_open(f);
  if (f.stream) detail::fail(f, "seek", ESPIPE);
  detail::flush_write(f);
  std::int64_t base = 0;
  switch (whence) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = f.pos;
      break;
    case SEEK_END:
      base = detail::file_size(f);
      break;
    default:
      detail::fail(f, "seek: whence " + std::to_string(whence), EINVAL);
  }
  const std::int64_t to = base + offset;
  if (to < 0) detail::fail(f, "seek to " + std::to_string(to), EINVAL);
  f.drop_read();
  f.skip_lf = false;
  f.pos = to;
  return to;
}

std::int64_t file::tell() {
  file_impl& f = live("tell");
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
  detail::op_lock lock(f);
  detail::check_writable(f);
  detail::flush_write(f);
  f.drop_read();
  if (size < 0) detail::fail(f, "truncate to " + std::to_string(size), EINVAL);
#ifdef _WIN32
  FILE_END_OF_FILE_INFO eof{};
  eof.EndOfFile.QuadPart = size;
  if (!::SetFileInformationByHandle(detail::handle_of(f), FileEndOfFileInfo, &eof, sizeof eof))
    detail::fail(f, "truncate to " + std::to_string(size), detail::last_error());
#else
  if (::ftruncate(f.fd, size) != 0) detail::fail(f, "truncate to " + std::to_string(size), errno);
#endif
}

void file::flush() {
  file_impl& f = live("flush");
  detail::op_lock lock(f);
  detail::check_open(f);
  detail::flush_write(f);
}

void file::fsync() {
  file_impl& f = live("fsync");
  detail::op_lock lock(f);
  detail::check_open(f);
  detail::flush_write(f);
  for (;;) {
    const long r = detail::submit_and_wait(detail::op_kind::fsync, f.fd, nullptr, 0, 0);
    if (detail::retry(r)) continue;
    if (r < 0) detail::fail(f, "fsync", detail::backend_error(r));
    return;
  }
}

void file::close() {
  if (!impl_ || impl_->fd < 0) return;
  file_impl& f = *impl_;
  detail::op_lock lock(f);
  if (f.fd < 0) return;  // closed by the tasklet we waited for
  std::exception_ptr err;
  try {
    detail::flush_write(f);
  } catch (...) {
    err = std::current_exception();
  }
  while (f.positional > 0) f.drain_ch.receive();  // their ops name this descriptor
  ::close(f.fd);  // the descriptor is released even on EINTR (Linux)
  f.fd = -1;
  f.rbuf.reset();
  f.rbeg = f.rend = 0;
  if (err) std::rethrow_exception(err);
}

bool file::closed() const noexcept {
  return !impl_ || impl_->fd < 0;
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

std::size_t file::pread(std::span<std::byte> buf, std::uint64_t offset) {
  file_impl& f = live("pread");
  detail::check_readable(f);
  if (f.stream) detail::fail(f, "pread", ESPIPE);
  if (!f.wbuf.empty()) {
    detail::op_lock lock(f);
    detail::flush_write(f);
  }
  detail::check_readable(f);  // the flush may have waited for a close
  detail::positional_guard g(f);
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t k =
        detail::raw_read(f, reinterpret_cast<char*>(buf.data()) + got, buf.size() - got,
                         static_cast<std::int64_t>(offset + got));
    if (k == 0) break;
    got += k;
  }
  return got;
}

std::size_t file::pwrite(std::span<const std::byte> data, std::uint64_t offset) {
  file_impl& f = live("pwrite");
  detail::check_writable(f);
  if (f.stream) detail::fail(f, "pwrite", ESPIPE);
  if (!f.wbuf.empty()) {
    detail::op_lock lock(f);
    detail::flush_write(f);
  }
  detail::check_writable(f);
  f.drop_read();  // the read-ahead may cover what we overwrite
  detail::positional_guard g(f);
  detail::raw_write_all(f, reinterpret_cast<const char*>(data.data()), data.size(),
                        static_cast<std::int64_t>(offset));
  return data.size();
}

file open(const std::filesystem::path& path, std::string_view mode, int buffering) {
  const detail::parsed_mode m = detail::parse_mode(mode);
  auto f = std::make_unique<file_impl>();
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
  int fd;
  do {
    fd = ::open(path.c_str(), m.flags | O_CLOEXEC, 0666);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) detail::fail(*f, "open with mode '" + f->mode + "'", errno);
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
  f->rcap = f->bufsize ? f->bufsize : 8192;
  f->rbuf = std::make_unique_for_overwrite<char[]>(f->rcap);
  f->lock_ch.set_preference(1);
  f->drain_ch.set_preference(1);
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
