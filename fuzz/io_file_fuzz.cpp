// libFuzzer target: random sequences of operations on one stackless::io::file, issued from
// tasklets that are killed at random points while the backend seam (detail::set_fault_hook)
// injects short transfers and errors; checked after every step against a reference model of the
// file (the issue 12 rules, docs/io.md).
//
// The world of one input: a scratch regular file (or FIFO, below) of a few KiB with known content,
// one io::file `F` on it (opened at the start with a mode and buffering from the input), and a list
// of steps. A step is one operation, or a pair of operations issued from two tasklets at once (the
// second queues on the file's lock while the first waits for the backend). The vocabulary: open
// (modes r, r+, w, w+, a, a+, x; buffering 0, line, 7, 64, 512, default), read(n), read(),
// readline(limit), readinto, write, seek (SEEK_SET/CUR/END and an invalid whence), tell,
// truncate(), truncate(size), flush, fsync, pread, pwrite, close. Each step may kill one of its
// tasklets: before it runs, at the i-th scheduling round after it started (queued on the lock,
// its operation queued in the backend, submitted, ...), or once its operation completed and the
// tasklet is runnable but has not resumed. The fault hook, driven by bytes taken from the end of
// the input, shortens transfers (the library must continue them), returns -EINTR / -EAGAIN (must
// be retried invisibly) or -ENOSPC / -EIO / -EFBIG (the call fails with that error).
//
// About one input in six uses a FIFO instead (F opened 'r+' or 'w+', so it holds both ends; the
// pipe starts with some bytes): the file is then a stream, whose unread bytes are modelled as one
// string. A read that wants more than the stream holds waits for ever: the harness kills it
// after a while, and its bytes must go to the next reader (issue 12, item 1). Reads and writes
// are at most 512 bytes, so the pipe never fills. seek/tell/pread/pwrite must fail with ESPIPE;
// close empties the pipe; reopening keeps it, minus what the old F had buffered.
//
// The model is exact where the library is deterministic and a set of states where it is not:
// the model keeps every state the rules allow, and each observation prunes the set; an empty set
// is a mismatch. State: the bytes on disk, open/closing/closed, the mode, the buffer size, the
// position, and the write buffer (bytes not yet written and where they go). The read buffer is
// not modelled: it always mirrors the disk (every write path drops it). Rules checked:
//   - a call that returns has its whole documented effect and result (bytes read, counts,
//     positions, what a buffered write leaves in the buffer and when it is written: a full
//     buffer, a newline when line-buffered, a read, seek, flush, close, ...);
//   - a call that ends with a kill or an error either did nothing, or stopped after some of its
//     transfers: the bytes that reached the file are exactly a prefix of what it writes, the
//     position equals what reached the file, and unwritten buffered data stays buffered for a
//     retry while the file is open (a failed close loses it and says so); a read that fails or
//     is killed leaves the position where it was (its bytes are still in the file);
//   - EINTR and EAGAIN are retried, short transfers continued: the caller sees nothing;
//   - an injected error surfaces as std::filesystem::filesystem_error with that errno, never
//     swallowed; a kill surfaces only in the tasklet that was killed;
//   - every tasklet ends (no hang) and no operation stays pending.
// The possible stop points of a call are the prefix sums of the write transfers the hook saw
// for that tasklet (each one either performed whole or not at all, as regular files do), with
// the stop right after a transfer (a kill delivered at its completion) or at the next one.
// After each step we observe: each call's outcome, the file's bytes (read with plain POSIX
// calls on a separate descriptor), F.closed() and F.tell() (when not in append mode, where
// tell() would flush); for a FIFO, the bytes in the pipe (FIONREAD: the stream's tail, all of it
// while F's read buffer is known to be empty).
//
// The backend is the process's: run the target once with STACKLESS_IO_BACKEND=uring and once
// with STACKLESS_IO_BACKEND=threadpool (scripts/fuzz.sh does). STACKLESS_FUZZ_TRACE=1 prints
// each step and its outcome.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <stackless/io/file.hpp>
#include <stackless/io/io.hpp>
#include <stackless/runtime/errors.hpp>
#include <stackless/runtime/tasklet.hpp>
#include <string>
#include <vector>

#include "poller.hpp"  // io/src: detail::set_fault_hook, detail::op

namespace {

namespace io = stackless::io;
using stackless::tasklet;

// ---- the program -------------------------------------------------------------------------------

enum Op : std::uint8_t {
  READ,
  READALL,
  READLINE,
  READINTO,
  WRITE,
  SEEK,
  TELL,
  TRUNC,
  FLUSH,
  FSYNC,
  PREAD,
  PWRITE,
  CLOSE,
  OPEN,
  kOps
};
const char* const kOpName[kOps] = {"read",  "readall", "readline", "readinto", "write",
                                   "seek",  "tell",    "truncate", "flush",    "fsync",
                                   "pread", "pwrite",  "close",    "open"};
const char* const kModes[] = {"r", "r+", "w", "w+", "a", "a+", "x"};
constexpr int kNModes = 7;
const int kBufferings[] = {0, 1, 7, 64, 512, -1};
constexpr int kNBufferings = 6;
constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();

struct OpSpec {
  Op op = READ;
  std::size_t n = 0;     // read sizes, readline limit (kUnlimited: none)
  std::int64_t off = 0;  // seek offset, pread/pwrite offset, truncate size
  int whence = 0;
  bool flag = false;  // truncate(): at the current position
  std::string data;   // write, pwrite
  int mode = 0, buffering = 0;
};

bool is_read(Op op) { return op == READ || op == READALL || op == READLINE || op == READINTO; }

// Ops that hold the file's lock for the whole call, so that two of them from two tasklets run
// one after the other (pread/pwrite don't; truncate() takes it twice; open replaces the file).
bool pairable(const OpSpec& o) {
  return o.op != PREAD && o.op != PWRITE && o.op != OPEN && !(o.op == TRUNC && o.flag);
}

enum class Kill : std::uint8_t { none, before_run, at_round, delivered };

struct Step {
  std::vector<OpSpec> ops;  // 1 or 2 (a pair)
  Kill kill = Kill::none;
  int target = 0;  // which op's tasklet
  int round = 0;   // Kill::at_round
};

struct reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t next() {
    if (!n) return 0;
    --n;
    return *p++;
  }
};

// The bytes a write puts: lower case and newlines, distinct from the initial content (upper case
// and digits), so that a misplaced byte shows.
std::string payload(std::size_t len, unsigned seed) {
  static const char kAlpha[] = "abcdefghijklmnopqrstuvwxyz\n";
  std::string s(len, ' ');
  for (std::size_t i = 0; i < len; ++i) s[i] = kAlpha[(seed + i * 7) % 27];
  return s;
}

std::size_t size_arg(std::uint8_t a, std::uint8_t b) {
  return (b & 1) ? a % 64 : std::size_t{a} * 16;  // small, or up to ~4 KiB
}

// The FIFO world: reads and writes of at most 512 bytes (the pipe never fills: a write never
// blocks and is never partial), open only 'r+', 'w+' or 'x' (O_RDWR: opening never waits for a
// peer), no truncate or fsync (the kernel's errno for those on a pipe is not the point).
constexpr int kFifoModes[] = {1, 3, 6};
constexpr std::size_t kFifoMax = 512;

OpSpec decode_op(reader& r, unsigned seed, bool fifo) {
  OpSpec o;
  const std::uint8_t k = r.next(), a = r.next(), b = r.next();
  o.op = static_cast<Op>(k % kOps);
  if (fifo && (o.op == TRUNC || o.op == FSYNC)) o.op = FLUSH;
  switch (o.op) {
    case READ:
    case READINTO:
    case PREAD:
      o.n = fifo ? size_arg(a, b) % (kFifoMax + 1) : size_arg(a, b);
      o.off = (b >> 1) * 32;
      break;
    case READLINE:
      o.n = (b & 1) ? kUnlimited : a % 128;
      break;
    case WRITE:
    case PWRITE:
      o.data = payload(fifo ? size_arg(a, b) % (kFifoMax + 1) : size_arg(a, b), seed);
      o.off = (b >> 1) * 32;
      break;
    case SEEK:
      o.whence = b % 4;  // 3: invalid
      o.off = o.whence == 0 ? std::int64_t{a} * 16 : std::int64_t{a} * 16 - 2048;
      break;
    case TRUNC:
      o.flag = b & 1;
      o.off = a == 255 ? -1 : std::int64_t{a} * 16;
      break;
    case OPEN:
      o.mode = fifo ? kFifoModes[a % 3] : a % kNModes;
      o.buffering = kBufferings[b % kNBufferings];
      break;
    default:
      break;
  }
  return o;
}

struct Program {
  bool fifo = false;    // a FIFO instead of a regular file
  std::string initial;  // the file's content (the FIFO's) before the first step
  int mode = 0, buffering = 0;
  std::vector<Step> steps;
};

constexpr std::size_t kMaxSteps = 48;

Program decode(reader& r) {
  Program pg;
  const std::uint8_t h = r.next(), m = r.next();
  const std::size_t len = (h % 6) * 700 + (h >> 3);
  static const char kInit[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n";
  pg.initial.resize(len);
  for (std::size_t i = 0; i < len; ++i) pg.initial[i] = kInit[(i * 5 + h) % 37];
  pg.mode = m % kNModes;
  pg.buffering = kBufferings[(m / kNModes) % kNBufferings];
  pg.fifo = m >= 210;
  if (pg.fifo) {
    pg.mode = kFifoModes[m % 2];
    pg.initial.resize(std::min<std::size_t>(pg.initial.size(), 2000));
  }
  while (r.n >= 4 && pg.steps.size() < kMaxSteps) {
    Step s;
    const auto seed = static_cast<unsigned>(pg.steps.size() * 31);
    s.ops.push_back(decode_op(r, seed, pg.fifo));
    const std::uint8_t c = r.next();
    if (c & 1) {
      OpSpec b = decode_op(r, seed + 13, pg.fifo);
      if (pairable(s.ops[0]) && pairable(b)) s.ops.push_back(b);
    }
    switch ((c >> 1) % 8) {
      case 3:
        s.kill = Kill::before_run;
        break;
      case 4:
      case 5:
        s.kill = Kill::at_round;
        break;
      case 6:
        s.kill = Kill::delivered;
        break;
      default:
        s.kill = Kill::none;
    }
    s.round = (c >> 4) % 4;
    s.target = (c >> 6) & 1 ? static_cast<int>(s.ops.size()) - 1 : 0;
    // open replaces F (its destructor flushes the old file uncancellably): only killed before
    // it runs.
    if (s.ops[0].op == OPEN && s.kill != Kill::before_run) s.kill = Kill::none;
    pg.steps.push_back(std::move(s));
  }
  return pg;
}

std::string esc(const std::string& s, std::size_t max = 96) {
  std::string r;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      r += "\\n";
    } else if (c >= 32 && c < 127) {
      r += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      r += b;
    }
  }
  if (s.size() > max) r += "...(" + std::to_string(s.size()) + " bytes)";
  return r;
}

std::string op_text(const OpSpec& o) {
  std::string r = kOpName[o.op];
  switch (o.op) {
    case READ:
    case READINTO:
      return r + "(" + std::to_string(o.n) + ")";
    case READLINE:
      return r + "(" + (o.n == kUnlimited ? std::string("-") : std::to_string(o.n)) + ")";
    case PREAD:
      return r + "(" + std::to_string(o.n) + " @" + std::to_string(o.off) + ")";
    case WRITE:
      return r + "(" + std::to_string(o.data.size()) + " bytes)";
    case PWRITE:
      return r + "(" + std::to_string(o.data.size()) + " bytes @" + std::to_string(o.off) + ")";
    case SEEK:
      return r + "(" + std::to_string(o.off) + ", " + std::to_string(o.whence) + ")";
    case TRUNC:
      return o.flag ? r + "()" : r + "(" + std::to_string(o.off) + ")";
    case OPEN:
      return r + "('" + kModes[o.mode] + "', " + std::to_string(o.buffering) + ")";
    default:
      return r;
  }
}

// ---- the model ---------------------------------------------------------------------------------

enum class FSt : std::uint8_t { closed, open, closing };  // closing: a close() was killed

// disk: the regular file's bytes; for a FIFO, the stream's unread bytes: the pipe's and, in front
// of them, those in F's read buffer (the split is seen only through FIONREAD).
struct W {
  std::string disk;
  bool fifo = false;
  bool rb_empty = true;     // FIFO: F's read buffer is known to be empty (F was just opened)
  bool lost_front = false;  // FIFO: an unknown front part (the old F's read buffer) was lost
  FSt st = FSt::closed;
  bool rd = false, wr = false, app = false, line = false;
  std::size_t bufsize = 0;
  std::int64_t pos = 0;
  std::string wbuf;
  std::int64_t wpos = 0;
  bool operator==(const W&) const = default;
};

std::string state_text(const W& w) {
  static const char* const kSt[] = {"closed", "open", "closing"};
  return std::string(kSt[static_cast<int>(w.st)]) + (w.fifo ? " fifo" : "") +
         (w.rb_empty ? "" : " rbuf?") + (w.lost_front ? " lost?" : "") + " pos " +
         std::to_string(w.pos) + " wpos " + std::to_string(w.wpos) + " wbuf[" +
         std::to_string(w.wbuf.size()) + "] \"" + esc(w.wbuf, 40) + "\" disk[" +
         std::to_string(w.disk.size()) + "]";
}

// How a run of the model ends: complete (budget unlimited), or stopped: after `budget` bytes
// have reached the file, either right after the transfer that used the last of it (eager: a kill
// delivered with that transfer's completion) or at the next transfer (which does nothing: an
// error or a cancelled transfer). abort: a stop after the last transfer (a read's or seek's
// effect is then not applied). error: the stop is an error rather than a kill (close differs).
struct Ctx {
  std::size_t budget = kUnlimited;
  bool eager = false, abort = false, error = false;
};
struct Stop {};
struct MErr {
  int e;
};
struct Block {};  // the call waits for bytes that nobody will write: only a kill ends it

void put(std::string& d, std::int64_t off, std::string_view s) {
  if (s.empty()) return;  // nothing is written, the file does not grow
  const auto o = static_cast<std::size_t>(off);
  if (o + s.size() > d.size()) d.resize(o + s.size(), '\0');
  std::memcpy(d.data() + o, s.data(), s.size());
}

// xfer: one raw_write_all of s at off (the end of the file in append mode), cut by the budget.
// Returns the bytes that reached the file; stop says the call ends there.
std::size_t xfer(W& w, Ctx& c, std::int64_t off, std::string_view s, bool& stop) {
  const std::size_t k = std::min(c.budget, s.size());
  if (w.app || w.fifo)
    w.disk.append(s.substr(0, k));
  else
    put(w.disk, off, s.substr(0, k));
  if (c.budget != kUnlimited) c.budget -= k;
  stop = k < s.size() || (c.eager && c.budget == 0 && k > 0);
  return k;
}

void check_open(const W& w) {
  if (w.st != FSt::open) throw MErr{EBADF};
}
void check_readable(const W& w) {
  check_open(w);
  if (!w.rd) throw MErr{EBADF};
}
void check_writable(const W& w) {
  check_open(w);
  if (!w.wr) throw MErr{EBADF};
}
void commit(const Ctx& c) {
  if (c.abort) throw Stop{};
}

void flush_write(W& w, Ctx& c) {
  if (w.wbuf.empty()) return;
  bool stop = false;
  const std::size_t k = xfer(w, c, w.wpos, w.wbuf, stop);
  w.wbuf.erase(0, k);
  w.wpos += static_cast<std::int64_t>(k);
  if (stop) throw Stop{};
  if (w.app) w.pos = static_cast<std::int64_t>(w.disk.size());
}

void flush_lines(W& w, Ctx& c) {
  const std::size_t n = w.wbuf.rfind('\n') + 1;
  bool stop = false;
  const std::size_t k = xfer(w, c, w.wpos, std::string_view(w.wbuf).substr(0, n), stop);
  w.wbuf.erase(0, k);
  w.wpos += static_cast<std::int64_t>(k);
  if (stop) throw Stop{};
  if (w.app) w.wpos = static_cast<std::int64_t>(w.disk.size());
}

std::string bytes_at(const W& w, std::int64_t at, std::size_t n) {
  const auto p = static_cast<std::size_t>(at);
  if (p >= w.disk.size()) return {};
  return w.disk.substr(p, std::min(n, w.disk.size() - p));
}

std::string model_open(W& w, const OpSpec& o) {
  const std::string_view m = kModes[o.mode];
  if (m == "x") throw MErr{EEXIST};  // the scratch file always exists; F is untouched
  W n;
  n.fifo = w.fifo;
  n.st = FSt::open;
  n.rd = m == "r" || m.size() == 2;
  n.wr = m != "r";
  n.app = m[0] == 'a';
  if (m[0] == 'w' && !w.fifo) w.disk.clear();
  const auto size_at_open = static_cast<std::int64_t>(w.disk.size());
  n.line = o.buffering == 1;
  n.bufsize =
      o.buffering < 0 || o.buffering == 1 ? 64 * 1024 : static_cast<std::size_t>(o.buffering);
  n.pos = n.app ? size_at_open : 0;
  // F = open(...): the old file's destructor flushes it (no faults are injected in this step).
  if (w.st != FSt::closed) {
    Ctx c;
    flush_write(w, c);
    // FIFO: the new descriptor keeps the pipe; the old F's read buffer goes with it. How much
    // that was is seen by FIONREAD after the step (check_step resolves lost_front).
    n.lost_front = w.fifo && !w.rb_empty;
  }
  n.disk = std::move(w.disk);
  w = std::move(n);
  return "ok";
}

// model_run(w, o, c): o on state w, as io::file does it. Returns the result text; throws MErr
// for a refusal (EBADF, EINVAL, EEXIST) and Stop where the context stops the call.
std::string model_run(W& w, const OpSpec& o, Ctx& c) {
  switch (o.op) {
    case READ:
    case READALL:
    case READINTO:
    case READLINE: {
      check_readable(w);
      if (w.fifo) w.rb_empty = false;  // a fill may leave bytes in F's read buffer
      flush_write(w, c);
      commit(c);
      std::string r;
      if (w.fifo) {
        // A stream has no end while F holds the pipe: a call that wants more than there is
        // waits for ever.
        const std::string& q = w.disk;
        if (o.op == READALL) throw Block{};
        if (o.op == READLINE) {
          const auto nl = q.find('\n');
          if (nl != q.npos && nl < o.n)
            r = q.substr(0, nl + 1);
          else if (q.size() >= o.n)
            r = q.substr(0, o.n);
          else
            throw Block{};
        } else {
          if (q.size() < o.n) throw Block{};
          r = q.substr(0, o.n);
        }
        w.disk.erase(0, r.size());
        return o.op == READINTO ? "n" + std::to_string(r.size()) + ":" + r : "s" + r;
      }
      if (o.op == READLINE) {
        r = bytes_at(w, w.pos, o.n);
        const auto nl = r.find('\n');
        if (nl != r.npos) r.resize(nl + 1);
      } else {
        r = bytes_at(w, w.pos, o.op == READALL ? kUnlimited : o.n);
      }
      w.pos += static_cast<std::int64_t>(r.size());
      return o.op == READINTO ? "n" + std::to_string(r.size()) + ":" + r : "s" + r;
    }
    case WRITE: {
      check_writable(w);
      const std::size_t n = o.data.size();
      if (w.wbuf.empty()) w.wpos = w.pos;
      if (w.bufsize == 0 || n >= w.bufsize) {
        flush_write(w, c);
        bool stop = false;
        const std::size_t done = xfer(w, c, w.pos, o.data, stop);
        if (!w.app && !w.fifo) w.pos += static_cast<std::int64_t>(done);
        if (w.app && (done || !stop)) w.pos = static_cast<std::int64_t>(w.disk.size());
        if (stop) throw Stop{};
        return "n" + std::to_string(n);
      }
      w.wbuf += o.data;
      if (!w.fifo) w.pos += static_cast<std::int64_t>(n);
      if (w.wbuf.size() >= w.bufsize)
        flush_write(w, c);
      else if (w.line && o.data.find('\n') != std::string::npos)
        flush_lines(w, c);
      return "n" + std::to_string(n);
    }
    case SEEK: {
      check_open(w);
      if (w.fifo) throw MErr{ESPIPE};
      if (o.whence > 2) throw MErr{EINVAL};
      std::int64_t base = o.whence == 1 ? w.pos : 0;
      flush_write(w, c);
      commit(c);
      if (o.whence == 2) base = static_cast<std::int64_t>(w.disk.size());
      const std::int64_t to = base + o.off;
      if (to < 0) throw MErr{EINVAL};
      w.pos = to;
      return "p" + std::to_string(to);
    }
    case TELL:
      check_open(w);
      if (w.fifo) throw MErr{ESPIPE};
      if (w.app && !w.wbuf.empty()) flush_write(w, c);
      return "p" + std::to_string(w.pos);
    case TRUNC: {
      std::int64_t size = o.off;
      if (o.flag) {  // truncate(tell())
        check_open(w);
        if (w.app && !w.wbuf.empty()) flush_write(w, c);
        size = w.pos;
      }
      check_writable(w);
      if (size < 0) throw MErr{EINVAL};
      flush_write(w, c);
      commit(c);
      w.disk.resize(static_cast<std::size_t>(size), '\0');
      return "ok";
    }
    case FLUSH:
      check_open(w);
      flush_write(w, c);
      return "ok";
    case FSYNC:
      check_open(w);
      flush_write(w, c);
      commit(c);
      return "ok";
    case PREAD: {
      check_readable(w);
      if (w.fifo) throw MErr{ESPIPE};
      if (!w.wbuf.empty()) flush_write(w, c);
      commit(c);
      const std::string r = bytes_at(w, o.off, o.n);
      return "n" + std::to_string(r.size()) + ":" + r;
    }
    case PWRITE: {
      check_writable(w);
      if (w.fifo) throw MErr{ESPIPE};
      if (!w.wbuf.empty()) flush_write(w, c);
      bool stop = false;
      xfer(w, c, o.off, o.data, stop);
      if (stop) throw Stop{};
      return "n" + std::to_string(o.data.size());
    }
    case CLOSE:
      if (w.st == FSt::closed) return "ok";
      w.st = FSt::closing;
      try {
        flush_write(w, c);
      } catch (const Stop&) {
        // An error: closed anyway, the rest is lost (the error says so). A kill: the file stays
        // closing with the rest buffered; the next close() (or ~file) writes it.
        if (c.error) {
          w.wbuf.clear();
          w.st = FSt::closed;
          if (w.fifo) w.disk.clear();  // the last descriptor of the pipe is gone
        }
        throw;
      }
      w.st = FSt::closed;
      if (w.fifo) w.disk.clear();
      return "ok";
    case OPEN:
      return model_open(w, o);
    case kOps:
      break;
  }
  return "?";
}

// ---- the real run ------------------------------------------------------------------------------

struct Transfer {  // a write the hook saw
  std::uint32_t len;
  long injected;  // 0: none
};

struct Slot {
  const OpSpec* op = nullptr;
  tasklet t;
  std::string out = "norun";  // "ok..." result, "exit" (killed), "fs:<errno>", "other:..."
  bool killed = false;
  int submitted = 0;
  std::vector<Transfer> writes;
  std::vector<int> errors;  // non-retryable errors injected into this call
};

struct Real {
  bool fifo = false;
  std::filesystem::path path;
  io::file F;
  std::array<Slot, 2> slots;
  reader faults{nullptr, 0};
  bool faults_on = false;
  int faults_this_step = 0;
  std::vector<std::string> log;
};
Real* g_real = nullptr;

struct Totals {
  unsigned long long steps = 0, kills = 0, shortened = 0, retried = 0, errors = 0, cut = 0;
  ~Totals() {
    std::fprintf(stderr,
                 "io_file_fuzz: %llu steps, %llu kills, faults injected: %llu short transfers, "
                 "%llu EINTR/EAGAIN, %llu errors; %llu inputs cut short (model too ambiguous)\n",
                 steps, kills, shortened, retried, errors, cut);
  }
} g_totals;

std::optional<long> fault(io::detail::op& o) {
  Real* R = g_real;
  if (!R) return std::nullopt;
  // open, close and truncate go through the poller too; the model injects faults into, and
  // counts, only the data operations.
  if (o.kind != io::detail::op_kind::read && o.kind != io::detail::op_kind::write &&
      o.kind != io::detail::op_kind::fsync)
    return std::nullopt;
  Slot* s = nullptr;
  for (Slot& x : R->slots)
    if (x.op && x.t == stackless::getcurrent()) s = &x;
  if (!s) return std::nullopt;
  ++s->submitted;
  std::optional<long> inj;
  if (R->faults_on && R->faults_this_step < 8) {
    const std::uint8_t b = R->faults.next();
    switch (b % 8) {
      case 3:
        if (o.len > 1) {
          o.len = 1 + R->faults.next() % (o.len - 1);
          ++g_totals.shortened;
          ++R->faults_this_step;
        }
        break;
      case 4:
      case 5:
        inj = (b % 8) == 4 ? -EINTR : -EAGAIN;
        ++g_totals.retried;
        ++R->faults_this_step;
        break;
      case 6: {
        static const int kErr[] = {ENOSPC, EIO, EFBIG};
        const int e = kErr[(b >> 3) % 3];
        inj = -e;
        s->errors.push_back(e);
        ++g_totals.errors;
        ++R->faults_this_step;
        break;
      }
      default:
        break;
    }
  }
  if (o.kind == io::detail::op_kind::write) s->writes.push_back({o.len, inj.value_or(0)});
  return inj;
}

std::string real_exec(const OpSpec& o) {
  io::file& f = g_real->F;
  switch (o.op) {
    case READ:
      return "s" + f.read(o.n);
    case READALL:
      return "s" + f.read();
    case READLINE:
      return "s" + f.readline(o.n);
    case READINTO:
    case PREAD: {
      std::string buf(o.n, '\xee');
      const std::size_t k = o.op == READINTO
                                ? f.readinto(std::span<char>(buf))
                                : f.pread(std::span<char>(buf), static_cast<std::uint64_t>(o.off));
      if (k > o.n) return "other:count " + std::to_string(k) + " > " + std::to_string(o.n);
      return "n" + std::to_string(k) + ":" + buf.substr(0, k);
    }
    case WRITE:
      return "n" + std::to_string(f.write(o.data));
    case PWRITE:
      return "n" + std::to_string(f.pwrite(o.data, static_cast<std::uint64_t>(o.off)));
    case SEEK:
      return "p" + std::to_string(f.seek(o.off, o.whence));
    case TELL:
      return "p" + std::to_string(f.tell());
    case TRUNC:
      if (o.flag)
        f.truncate();
      else
        f.truncate(o.off);
      return "ok";
    case FLUSH:
      f.flush();
      return "ok";
    case FSYNC:
      f.fsync();
      return "ok";
    case CLOSE:
      f.close();
      return "ok";
    case OPEN:
      f = io::open(g_real->path.string(), kModes[o.mode], o.buffering);
      return "ok";
    case kOps:
      break;
  }
  return "?";
}

void run_slot(Slot& s) {
  try {
    s.out = real_exec(*s.op);
  } catch (const stackless::tasklet_exit&) {
    s.out = "exit";
    throw;
  } catch (const std::filesystem::filesystem_error& e) {
    s.out = "fs:" + std::to_string(e.code().value());
  } catch (const std::exception& e) {
    s.out = std::string("other:") + e.what();
  } catch (...) {
    s.out = "other:unknown exception";
  }
}

std::string read_disk(const std::filesystem::path& p) {
  std::string r;
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<open failed>";
  char buf[4096];
  for (;;) {
    const ssize_t k = ::read(fd, buf, sizeof buf);
    if (k <= 0) break;
    r.append(buf, static_cast<std::size_t>(k));
  }
  ::close(fd);
  return r;
}

[[noreturn]] void fail(const Real& R, const std::string& what, const std::vector<W>& before,
                       const std::vector<std::string>& detail) {
  std::fprintf(stderr, "\n*** MODEL MISMATCH (%s backend): %s\n--- steps ---\n",
               std::string(io::backend_name()).c_str(), what.c_str());
  for (const auto& l : R.log) std::fprintf(stderr, "  %s\n", l.c_str());
  std::fprintf(stderr, "--- model states before the step ---\n");
  for (const W& w : before) std::fprintf(stderr, "  %s\n", state_text(w).c_str());
  for (const auto& l : detail) std::fprintf(stderr, "  %s\n", l.c_str());
  std::abort();
}

bool any_alive(const Real& R, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (R.slots[i].t && R.slots[i].t.alive()) return true;
  return false;
}

void kill_slot(Slot& s) {
  if (!s.t.alive()) return;
  s.killed = true;
  ++g_totals.kills;
  s.t.kill();
}

// run_step: runs the step's tasklets to the end, killing as planned.
void run_step(Real& R, const Step& st) {
  const std::size_t n = st.ops.size();
  R.faults_on = st.ops[0].op != OPEN;
  R.faults_this_step = 0;
  for (std::size_t i = 0; i < n; ++i) {
    Slot& s = R.slots[i];
    s = Slot{};
    s.op = &st.ops[i];
    s.t = tasklet([&s] { run_slot(s); });
  }
  for (std::size_t i = 0; i < n; ++i) {
    Slot& s = R.slots[i];
    s.t.setup();
    if (st.kill == Kill::before_run && static_cast<int>(i) == st.target) {
      kill_slot(s);  // dies without running its code
      continue;
    }
    s.t.run();  // runs until it blocks (on the backend, on the file's lock) or ends
  }
  Slot& victim = R.slots[static_cast<std::size_t>(st.target)];
  if (st.kill == Kill::at_round) {
    for (int i = 0; i < 4 && any_alive(R, n); ++i) {
      if (i == st.round) kill_slot(victim);
      stackless::schedule();
    }
  } else if (st.kill == Kill::delivered) {
    // The backend completed its operation and the poll tasklet handed the result over; the
    // tasklet is runnable but has not resumed.
    for (int i = 0; i < 10000 && victim.t.alive(); ++i) {
      if (victim.submitted && victim.t.scheduled() && !victim.t.blocked()) {
        kill_slot(victim);
        break;
      }
      stackless::schedule();
    }
  }
  if (R.fifo && any_alive(R, n)) {
    // A read of a FIFO may wait for bytes nobody will write (the model knows which): after a
    // while it is killed, which must give its bytes back.
    // Only reads can wait for ever: open, close and truncate go through the poller too and
    // may take more rounds than that (an io-wq worker, a pool thread), but they end.
    for (int i = 0; i < 32 && any_alive(R, n); ++i) stackless::schedule();
    for (std::size_t i = 0; i < n; ++i)
      if (is_read(R.slots[i].op->op)) kill_slot(R.slots[i]);
  }
  for (int i = 0; i < 1000 && any_alive(R, n); ++i) stackless::run();
  if (any_alive(R, n)) fail(R, "LIVENESS: a tasklet of the step never ends", {}, {});
  R.faults_on = false;
  for (std::size_t i = 0; i < n; ++i) R.slots[i].t = tasklet();
}

// ---- checking ----------------------------------------------------------------------------------

void add(std::vector<W>& v, W w) {
  if (std::find(v.begin(), v.end(), w) == v.end()) v.push_back(std::move(w));
}

// successors: every state the rules allow after op on a state of S, given what the call did.
// queued: the call may have waited on the file's lock (the second of a pair), so it may have been
// killed before doing anything at all.
std::vector<W> successors(const std::vector<W>& S, const Slot& s, bool partner_closes, bool queued,
                          std::vector<std::string>* why) {
  const OpSpec& o = *s.op;
  std::vector<W> next;
  const bool killed = s.out == "exit";
  bool injected_err = false;
  bool stopped = killed;
  if (s.out.rfind("fs:", 0) == 0) {
    const int e = std::stoi(s.out.substr(3));
    injected_err = std::find(s.errors.begin(), s.errors.end(), e) != s.errors.end() ||
                   (e == EBADF && partner_closes);
    stopped = injected_err;
  }
  // The stop points: after each prefix of the writes that could have reached the file.
  std::vector<std::size_t> ks{0};
  std::size_t cum = 0;
  for (const Transfer& t : s.writes) {
    if (t.injected) continue;
    cum += t.len;
    ks.push_back(cum);
  }
  for (const W& w0 : S) {
    {  // the whole call
      W w = w0;
      Ctx c;
      std::string res;
      try {
        res = model_run(w, o, c);
      } catch (const MErr& e) {
        res = "fs:" + std::to_string(e.e);
      } catch (const Block&) {
        res = "blocks";  // only a kill ends it
      }
      const bool ok = res.rfind("fs:", 0) != 0;
      if (res == s.out && !(ok && !s.errors.empty())) add(next, w);
      if (why && res != s.out)
        why->push_back("model: " + esc(res, 200) + " from " + state_text(w0));
    }
    if (s.out == "norun") add(next, w0);
    if (!stopped) continue;
    if (killed && o.op == TRUNC) {
      // ftruncate goes through the poller: the kill may arrive with its completion, after the
      // kernel changed the size (the whole call's effect, then tasklet_exit).
      W w = w0;
      Ctx c;
      try {
        model_run(w, o, c);
        add(next, w);
      } catch (...) {
      }
    }
    if (queued) add(next, w0);  // killed while queued on the lock
    if (queued && o.op == CLOSE && w0.st == FSt::open && killed) {
      W w = w0;  // killed while queued on the lock: closing, nothing written
      w.st = FSt::closing;
      add(next, w);
    }
    // A close whose flush failed and that was killed while it then closed the descriptor ends
    // with the kill (the error goes to stderr): closed, the rest of the buffer lost.
    const bool close_err_then_kill = killed && o.op == CLOSE && !s.errors.empty();
    for (std::size_t k : ks) {
      for (int variant = 0; variant < (close_err_then_kill ? 4 : 2); ++variant) {
        const bool eager = variant & 1;
        W w = w0;
        Ctx c{k, eager, true, !killed || variant >= 2};
        try {
          model_run(w, o, c);
        } catch (const Stop&) {
        } catch (const MErr&) {
          continue;  // refused before doing anything: covered by the whole call
        } catch (const Block&) {
          continue;  // (a stop comes first)
        }
        add(next, w);
      }
    }
  }
  return next;
}

constexpr std::size_t kMaxStates = 64;

// check_step: checks the step's outcomes and the file against the model states S and advances
// them. Returns false when the input should end here (see below).
bool check_step(Real& R, const Step& st, std::vector<W>& S) {
  const std::vector<W> before = S;
  std::vector<std::string> why;
  std::string line;
  for (std::size_t i = 0; i < st.ops.size(); ++i) {
    const Slot& s = R.slots[i];
    line += (i ? " | " : "") + op_text(st.ops[i]) + " -> " + esc(s.out, 60);
    if (s.killed) line += " [killed]";
    for (const Transfer& t : s.writes)
      line += " w" + std::to_string(t.len) + (t.injected ? "!" + std::to_string(-t.injected) : "");
    for (int e : s.errors) line += " err" + std::to_string(e);
  }
  if (st.kill != Kill::none)
    line += " {kill op " + std::to_string(st.target) + " " +
            (st.kill == Kill::before_run  ? std::string("before run")
             : st.kill == Kill::delivered ? std::string("when delivered")
                                          : "round " + std::to_string(st.round)) +
            "}";
  R.log.push_back(line);
  for (std::size_t i = 0; i < st.ops.size(); ++i) {
    const Slot& s = R.slots[i];
    if (s.out == "exit" && !s.killed)
      fail(R, "a tasklet that nobody killed got tasklet_exit", before, {});
    if (s.out.rfind("other:", 0) == 0) fail(R, "not a filesystem_error: " + s.out, before, {});
    const bool partner_closes = st.ops.size() == 2 && st.ops[1 - i].op == CLOSE;
    std::vector<W> next = successors(S, s, partner_closes, i == 1, nullptr);
    if (next.empty()) {
      successors(S, s, partner_closes, i == 1, &why);  // again, saying why
      fail(R,
           "op " + std::to_string(i) + " (" + op_text(st.ops[i]) + "): outcome " + esc(s.out, 200) +
               " allowed by no model state",
           before, why);
    }
    S = std::move(next);
  }
  // Observe the file: a regular file's bytes and position; a FIFO's byte count in the pipe.
  const bool closed = R.F.closed();
  std::string disk;
  std::optional<std::int64_t> pos;
  std::optional<std::size_t> in_pipe;
  if (R.fifo) {
    int k = 0;
    if (!closed && ::ioctl(R.F.fileno(), FIONREAD, &k) == 0) in_pipe = static_cast<std::size_t>(k);
  } else {
    disk = read_disk(R.path);
    if (!closed && R.F.mode().find('a') == std::string::npos) pos = R.F.tell();
  }
  std::vector<W> kept;
  for (W& w : S) {
    if ((w.st != FSt::open) != closed) continue;
    if (!R.fifo) {
      if (w.disk != disk || (pos && w.pos != *pos)) continue;
    } else if (in_pipe) {
      // The pipe holds the stream's tail; all of it when F's read buffer is empty.
      const std::size_t k = *in_pipe;
      if (k > w.disk.size()) continue;
      if (w.lost_front) {
        w.disk.erase(0, w.disk.size() - k);
        w.lost_front = false;
      } else if (w.rb_empty && k != w.disk.size()) {
        continue;
      }
    }
    kept.push_back(std::move(w));
  }
  if (kept.empty()) {
    why.clear();
    why.push_back("observed: " + std::string(closed ? "closed" : "open") + " pos " +
                  (pos ? std::to_string(*pos) : std::string("-")) + " in pipe " +
                  (in_pipe ? std::to_string(*in_pipe) : std::string("-")) + " disk[" +
                  std::to_string(disk.size()) + "] \"" + esc(disk, 200) + "\"");
    for (const W& w : S)
      why.push_back("model:    " + state_text(w) + " \"" + esc(w.disk, 200) + "\"");
    fail(R, "the file disagrees with every model state after the step", before, why);
  }
  S = std::move(kept);
  // A model this ambiguous (kills and errors that observations could not tell apart, mostly in
  // append mode where tell() is not observed) ends the input: dropping states would report
  // false mismatches, keeping them all would be slow.
  return S.size() <= kMaxStates;
}

// The scratch directory of this process, removed at exit: in STACKLESS_FUZZ_DIR, else on tmpfs
// (/dev/shm) when there is one (truncating a file on a disk with discard costs milliseconds),
// else in the temporary directory.
std::filesystem::path scratch_parent() {
  if (const char* d = std::getenv("STACKLESS_FUZZ_DIR")) return d;
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec)) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

struct Scratch {
  std::filesystem::path dir, file, fifo;
  Scratch()
      : dir(scratch_parent() / ("io_file_fuzz." + std::to_string(::getpid()))),
        file(dir / "f"),
        fifo(dir / "p") {
    std::filesystem::create_directories(dir);
    if (::mkfifo(fifo.c_str(), 0600) != 0) {
      std::perror("io_file_fuzz: mkfifo");
      std::abort();
    }
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const Scratch& scratch() {
  static const Scratch s;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader r{data, size};
  const Program pg = decode(r);
  Real R;
  R.fifo = pg.fifo;
  R.path = pg.fifo ? scratch().fifo : scratch().file;
  // Faults come from the end of the input, backwards (independent of the step bytes).
  std::vector<std::uint8_t> tape(data, data + size);
  std::reverse(tape.begin(), tape.end());
  R.faults = reader{tape.data(), tape.size()};
  // The initial content. A FIFO's is written through a descriptor held until F has opened it
  // (the pipe is empty again whenever no descriptor is open on it).
  const int fd = pg.fifo ? ::open(R.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC)
                         : ::open(R.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, pg.initial.data(), pg.initial.size()) !=
                    static_cast<ssize_t>(pg.initial.size())) {
    std::perror("io_file_fuzz: scratch file");
    std::abort();
  }
  if (!pg.fifo) ::close(fd);
  g_real = &R;
  io::detail::set_fault_hook(fault);
  std::vector<W> S(1);
  S[0].disk = pg.initial;
  S[0].fifo = pg.fifo;
  OpSpec first;
  first.op = OPEN;
  first.mode = pg.mode == 6 ? 1 : pg.mode;  // not 'x': the file exists
  first.buffering = pg.buffering;
  Step open_step;
  open_step.ops.push_back(first);
  run_step(R, open_step);
  if (pg.fifo) ::close(fd);
  check_step(R, open_step, S);
  for (const Step& st : pg.steps) {
    ++g_totals.steps;
    run_step(R, st);
    if (!check_step(R, st, S)) {
      ++g_totals.cut;
      break;
    }
  }
  if (std::getenv("STACKLESS_FUZZ_TRACE")) {
    for (const auto& l : R.log) std::fprintf(stderr, "  %s\n", l.c_str());
    std::fprintf(stderr, "--\n");
  }
  io::detail::set_fault_hook({});
  try {
    R.F.close();
  } catch (...) {
    // Closing what is left (no faults now) cannot fail on the scratch file.
    std::fprintf(stderr, "\n*** the final close() failed\n");
    std::abort();
  }
  g_real = nullptr;
  // The poll tasklet may still be in the run queue with nothing left to do: let it end.
  stackless::run();
  if (stackless::alive_tasklets() != 0 || io::pending_operations() != 0) {
    std::fprintf(stderr, "\n*** LIVENESS: %zu tasklet(s) alive, %zu operation(s) pending\n",
                 stackless::alive_tasklets(), io::pending_operations());
    std::abort();
  }
  return 0;
}
