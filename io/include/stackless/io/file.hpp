// stackless::io::file: Python's file object on asynchronous I/O (the 2007 "stacklessfile" made
// real). Every open, read, write, flush, fsync, truncate and close blocks only the calling
// tasklet; the thread keeps running the other tasklets. seek and tell are in-memory.
//
// Differences from stacklessfile, on purpose: write() advances the position, SEEK_END works,
// buffering and universal newlines exist, failures are exceptions naming the path, the offset and
// the byte count, and offsets are 64-bit.
//
// Errors: every failure is a std::filesystem::filesystem_error carrying the path and the
// std::error_code (e.g. ENOENT, EACCES, EFBIG); I/O on a closed file is EBADF "I/O operation on
// closed file", reading a write-only file EBADF "file not open for reading" (and the reverse). An
// invalid mode string is std::invalid_argument naming the mode.
//
// Concurrency: any number of tasklets of the owning thread may use one file at once. Buffered
// operations (read, readline, write, seek, ...) are serialised per file, one whole call at a time
// (FIFO); pread/pwrite run concurrently. A file belongs to the thread that opened it: every call
// from another thread throws stackless::wrong_thread_error naming the file.
//
// Rules every call keeps (docs/io.md, "The rules"): an operation is either not performed or
// performed and its result kept (a killed read leaves the bytes it took for the next reader; a
// killed or failed write moves the position by what reached the file and says how many bytes
// that was); unwritten buffered data stays buffered for a retry; closing or destroying the file
// wakes every tasklet using it with EBADF "I/O operation on closed file".
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace stackless::io {

namespace detail {
struct file_impl;
// impl_release: drops one reference to a file_impl (a call in progress holds one too).
struct impl_release {
  void operator()(file_impl* f) const noexcept;
};
}  // namespace detail

// whence: where file::seek() counts from, named (the values of SEEK_SET, SEEK_CUR, SEEK_END).
enum class whence : int { set = 0, cur = 1, end = 2 };

class file {
 public:
  // file(): a closed file with no name.
  file() noexcept;
  file(file&&) noexcept;
  file& operator=(file&&) noexcept;
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  // ~file() closes the file; a flush error is reported on stderr (call close() to see it). The
  // buffered data is written even when the tasklet is being killed; never throws. Destroyed on
  // another thread, it closes the descriptor without flushing and says so on stderr.
  ~file();

  // read() returns the rest of the file, however large (read in chunks until end of file).
  std::string read();
  // read(n) returns up to n bytes; fewer only at end of file ("" at end of file). n = 0 returns
  // ""; memory grows with the data, not with n (read(SIZE_MAX) reads to the end).
  std::string read(std::size_t n);
  // readinto(buf) fills buf from the current position; returns the bytes read (less than
  // buf.size() only at end of file; an empty buf reads nothing).
  std::size_t readinto(std::span<std::byte> buf);
  std::size_t readinto(std::span<char> buf) { return readinto(std::as_writable_bytes(buf)); }
  // readline() returns the next line including its '\n' ("" at end of file); with a limit,
  // at most `limit` bytes (limit 0 returns "").
  std::string readline(std::size_t limit = static_cast<std::size_t>(-1));
  // readlines() returns every remaining line.
  std::vector<std::string> readlines();

  // write(data) writes all of data (short writes continue) and returns data.size(). With
  // buffering the bytes may reach the file later (flush(), close(), a full buffer, or a newline
  // when line-buffered); a failure is then reported by that call, and the unwritten bytes stay
  // buffered for the next try. Never silently short. Empty data writes nothing. A write whose
  // end would pass offset 2^63-1 is refused (EFBIG) before anything is written.
  std::size_t write(std::string_view data);
  std::size_t write(std::span<const std::byte> data);
  // writelines(lines) writes each string in order (no separators are added).
  template <class Range>
  void writelines(const Range& lines) {
    for (const auto& l : lines) write(std::string_view(l));
  }

  // seek(offset, whence) moves the position (SEEK_SET, SEEK_CUR, SEEK_END) and returns it.
  // Buffered writes are flushed first. A negative result or another whence is EINVAL, a result
  // past 2^63-1 EOVERFLOW (the position does not move); pipes give ESPIPE.
  std::int64_t seek(std::int64_t offset, int whence = 0);
  // seek(offset, whence::cur): the named form (whence::set, whence::cur, whence::end).
  std::int64_t seek(std::int64_t offset, io::whence from) {
    return seek(offset, static_cast<int>(from));
  }
  // tell() is the current position (with buffering taken into account).
  std::int64_t tell();
  // truncate() cuts the file at the current position; truncate(size) at size (growing it
  // sparsely when larger). The position does not change. A negative size is EINVAL; a file not
  // open for writing EBADF.
  void truncate();
  void truncate(std::int64_t size);
  // flush() writes buffered data to the file (not to the disk: see fsync()).
  void flush();
  // fsync() flushes, then waits until the data is on stable storage.
  void fsync();
  // close() flushes and closes; calling it again does nothing. Operations other tasklets have in
  // flight on the file are cancelled (they raise EBADF) and waited for; tasklets waiting for the
  // file raise EBADF. Throws the flush error, if any, after closing (that data is then dropped).
  void close();
  bool closed() const noexcept;

  // name(): the path given to open(); mode(): the mode string given to open().
  const std::string& name() const noexcept;
  const std::string& mode() const noexcept;
  int fileno() const;
  bool isatty() const;
  // newlines(): with mode 'U', the newline conventions met so far while reading, in the order
  // "\r", "\n", "\r\n" (Python's file.newlines as a list; empty when none seen or not 'U').
  std::vector<std::string> newlines() const;

  // pread(buf, offset) reads at offset without using or moving the position; returns the bytes
  // read (fewer only at end of file). pwrite(data, offset) writes all of data at offset and
  // returns data.size(). Both may run concurrently from many tasklets on one file. An offset
  // past 2^63-1, or a range whose end passes it, is refused with EOVERFLOW naming the offset;
  // pipes give ESPIPE.
  std::size_t pread(std::span<std::byte> buf, std::uint64_t offset);
  std::size_t pread(std::span<char> buf, std::uint64_t offset) {
    return pread(std::as_writable_bytes(buf), offset);
  }
  std::size_t pwrite(std::span<const std::byte> data, std::uint64_t offset);
  std::size_t pwrite(std::string_view data, std::uint64_t offset) {
    return pwrite(std::as_bytes(std::span(data.data(), data.size())), offset);
  }

  // Iteration over lines: `for (const std::string& line : f)` calls readline() until "".
  class line_iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string*;
    using reference = const std::string&;
    line_iterator() = default;
    explicit line_iterator(file* f) : f_(f) { ++*this; }
    reference operator*() const { return line_; }
    pointer operator->() const { return &line_; }
    line_iterator& operator++() {
      line_ = f_->readline();
      if (line_.empty()) f_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const line_iterator& a, const line_iterator& b) noexcept {
      return a.f_ == b.f_;
    }

   private:
    file* f_ = nullptr;
    std::string line_;
  };
  line_iterator begin() { return line_iterator(this); }
  line_iterator end() { return line_iterator(); }

 private:
  friend file open(const std::filesystem::path&, std::string_view, int);
  friend file open(std::string_view, std::string_view, int);
  explicit file(std::unique_ptr<detail::file_impl, detail::impl_release> p) noexcept;
  // live(op): the impl; throws EBADF on a moved-from file, wrong_thread_error on another thread.
  detail::file_impl& live(const char* op) const;
  std::unique_ptr<detail::file_impl, detail::impl_release> impl_;
};

// open(path, mode, buffering) opens a file, as Python's open():
//   mode: one of 'r' (read; the default), 'w' (truncate or create), 'a' (append; create) or
//         'x' (create, failing with EEXIST when it exists), optionally '+' (read and write),
//         'b' or 't' (accepted; no translation on POSIX), and 'U' (universal newlines: "\r\n"
//         and "\r" read as "\n"; only for reading: "U", "rU", "rbU").
//   buffering: 0 unbuffered, 1 line-buffered (writes flushed at each '\n'), N > 1 a buffer of
//         N bytes, negative the default (64 KiB; line-buffered for terminals).
// Opening blocks only the calling tasklet (through the poller; a plain call on Windows). Throws
// std::invalid_argument for a bad mode, std::filesystem::filesystem_error (ENOENT, EACCES, EISDIR,
// EEXIST, ...) naming the path, and filesystem_error EINVAL "embedded null byte" for a path
// containing a NUL (the OS would open the shorter name). A negative buffering is the default, 0
// unbuffered. Dropping the result is refused at compile time: the file would be closed at once
// (write `(void)io::open(p, "w")` to only create or truncate a file).
[[nodiscard("dropping the opened file closes it at once")]] file open(
    const std::filesystem::path& path, std::string_view mode = "r", int buffering = -1);
// open(utf8_path, ...): the same for a path given as a narrow string, which is UTF-8: on Windows
// it is converted to UTF-16 for CreateFileW (std::filesystem::path would use the ANSI code
// page); on POSIX the bytes are the name. name() returns the string as given.
[[nodiscard("dropping the opened file closes it at once")]] file open(std::string_view utf8_path,
                                                                      std::string_view mode = "r",
                                                                      int buffering = -1);
[[nodiscard("dropping the opened file closes it at once")]] inline file open(
    const char* utf8_path, std::string_view mode = "r", int buffering = -1) {
  return open(std::string_view(utf8_path), mode, buffering);
}
[[nodiscard("dropping the opened file closes it at once")]] inline file open(
    const std::string& utf8_path, std::string_view mode = "r", int buffering = -1) {
  return open(std::string_view(utf8_path), mode, buffering);
}

}  // namespace stackless::io
