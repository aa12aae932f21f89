// io::file's buffering (Python's BufferedReader/BufferedWriter and 'U' newline translation): the
// read buffer is refilled and consumed, the write buffer flushed, on top of file_raw.cpp.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "file_impl.hpp"

namespace stackless::io::detail {

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
void flush_write(file_impl& f, submit_flags flags) {
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

}  // namespace stackless::io::detail
