// stackless::net::socket_file: socket::makefile()'s buffered stream (readline, read, write,
// flush) on the socket's own receive and send paths (net_impl.hpp).
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "net_impl.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless::net {

using detail::socket_impl;

// ---- socket_file ------------------------------------------------------------------------------
// Not io::file: its reads and writes are read/write ops, which the thread-pool backend performs
// on a blocking worker (a socket would then hold a worker per connection) and which know
// nothing of the socket's timeout, pending bytes or close(). The stream below is the same
// buffering (a read buffer with a consumed prefix, a write buffer that keeps what was not sent)
// on the socket's own receive and send paths.

namespace detail {

struct socket_file_state {
  std::unique_ptr<socket_impl, socket_release> sock;  // a reference, not the handle
  bool readable = false, writable = false;
  std::size_t bufsize = 8192;  // 0: unbuffered
  bool line_buffered = false;
  std::size_t max_line = 65536;
  std::string rbuf;  // received, not yet returned: rbuf[rpos..]
  std::size_t rpos = 0;
  std::string wbuf;  // written, not yet sent
  bool closed = false;
  stackless::lock lk;  // one whole call at a time (FIFO)

  std::string_view unread() const noexcept { return std::string_view(rbuf).substr(rpos); }
  std::string take(std::size_t n) {
    std::string out = rbuf.substr(rpos, n);
    rpos += n;
    if (rpos == rbuf.size()) {
      rbuf.clear();
      rpos = 0;
    }
    return out;
  }
};

namespace {

[[noreturn]] void fail_file(const char* what, const char* why) {
  throw std::system_error(EBADF, std::generic_category(),
                          std::string("stackless::net::socket_file::") + what + ": " + why);
}

// file_call: the prologue of every socket_file call: the state kept alive (the handle may go
// meanwhile), the owner thread, the file and socket open, the mode, and the file's lock taken
// within the socket's timeout (whose deadline then covers the whole call).
class file_call {
 public:
  file_call(const std::shared_ptr<socket_file_state>& st, const char* what, bool reading,
            bool writing)
      : st_(st ? st
               : throw std::system_error(
                     EBADF, std::generic_category(),
                     std::string("stackless::net::socket_file::") + what + ": file is closed")),
        s_(*st_->sock),
        h_(s_) {
    if (s_.owner != std::this_thread::get_id()) {
      throw wrong_thread_error(std::string("stackless::net::socket_file::") + what +
                               ": the socket belongs to the thread that made it");
    }
    if (st_->closed) fail_file(what, "file is closed");
    if (reading && !st_->readable) fail_file(what, "file not open for reading");
    if (writing && !st_->writable) fail_file(what, "file not open for writing");
    check_open(s_, what);
    deadline = s_.deadline();
    lock_within(s_, st_->lk, deadline, what, std::string("stackless::net::socket_file::") + what);
  }
  ~file_call() { st_->lk.unlock(); }
  file_call(const file_call&) = delete;
  file_call& operator=(const file_call&) = delete;

  socket_file_state& st() const noexcept { return *st_; }
  socket_impl& sock() const noexcept { return s_; }
  deadline_clock::time_point deadline;

 private:
  std::shared_ptr<socket_file_state> st_;
  socket_impl& s_;
  hold h_;
};

// fill(c, want, what): receives up to `want` more bytes into the read buffer; false at EOF.
bool fill(file_call& c, std::size_t want, const char* what) {
  socket_file_state& st = c.st();
  if (st.rpos > 0) {  // compact: the buffer holds only what is unread
    st.rbuf.erase(0, st.rpos);
    st.rpos = 0;
  }
  const std::size_t old = st.rbuf.size();
  st.rbuf.resize(old + std::min(want, kMaxRecv));
  std::size_t n = 0;
  try {
    n = recv_common(c.sock(), st.rbuf.data() + old, st.rbuf.size() - old, 0, nullptr, what,
                    c.deadline);
  } catch (...) {
    st.rbuf.resize(old);  // a killed recv's bytes wait in the socket (pending) for the next one
    throw;
  }
  st.rbuf.resize(old + n);
  return n > 0;
}

// flush_locked(c, what): sends the write buffer; what was sent leaves it, even when a kill,
// a timeout or an error stops the loop.
void flush_locked(file_call& c, const char* what) {
  socket_file_state& st = c.st();
  socket_impl& s = c.sock();
  if (st.wbuf.empty()) return;
  kind_lock lk(s, s.wlock, c.deadline, what);
  const auto where_fn = [&] { return where(what, "to", peer_name(s)); };
  auto keep = [&](long r, std::uint32_t) { st.wbuf.erase(0, static_cast<std::size_t>(r)); };
  while (!st.wbuf.empty()) {
    const std::size_t n =
        send_some(s, st.wbuf.data(), st.wbuf.size(), 0, c.deadline, what, where_fn, keep);
    st.wbuf.erase(0, n);
  }
}

}  // namespace
}  // namespace detail

socket_file socket::makefile(std::string_view mode, int buffering, std::size_t max_line) {
  socket_impl& s = live("makefile");
  detail::check_open(s, "makefile");
  auto st = std::make_shared<detail::socket_file_state>();
  for (char ch : mode) {
    bool& flag = ch == 'r' ? st->readable : st->writable;
    if ((ch != 'r' && ch != 'w' && ch != 'b') || (ch != 'b' && flag) ||
        (ch == 'b' && mode.find('b') != mode.rfind('b'))) {
      throw std::invalid_argument("stackless::net::socket::makefile: invalid mode '" +
                                  std::string(mode) + "' (expected r, w or rw, and maybe b)");
    }
    if (ch != 'b') flag = true;
  }
  if (!st->readable && !st->writable) {
    throw std::invalid_argument("stackless::net::socket::makefile: invalid mode '" +
                                std::string(mode) + "' (expected r, w or rw, and maybe b)");
  }
  if (max_line == 0)
    throw std::invalid_argument("stackless::net::socket::makefile: max_line must be positive");
  if (buffering == 0) st->bufsize = 0;
  if (buffering == 1) st->line_buffered = true;
  if (buffering > 1) st->bufsize = static_cast<std::size_t>(buffering);
  st->max_line = max_line;
  ++s.refs;
  st->sock.reset(&s);
  return socket_file(std::move(st));
}

socket_file::socket_file() noexcept = default;
socket_file::socket_file(std::shared_ptr<detail::socket_file_state> st) noexcept
    : st_(std::move(st)) {}
socket_file::socket_file(socket_file&&) noexcept = default;
socket_file& socket_file::operator=(socket_file&& o) noexcept {
  if (this != &o) {
    socket_file old(std::move(*this));
    st_ = std::move(o.st_);
  }
  return *this;
}

socket_file::~socket_file() {
  if (!st_ || st_->closed || st_->wbuf.empty()) return;
  socket_impl& s = *st_->sock;
  const bool can_flush = std::uncaught_exceptions() == 0 && s.owner == std::this_thread::get_id() &&
                         !s.closing && s.fd >= 0;
  if (can_flush) {
    try {
      flush();
      return;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stackless: ~socket_file: %s\n", e.what());
    } catch (...) {
      // A kill that arrived while flushing: the rest is dropped, the kill delivered again at
      // the next switch (as ~socket does).
      std::fprintf(stderr, "stackless: ~socket_file: %zu unsent byte(s) dropped\n",
                   st_->wbuf.size());
      try {
        getcurrent().throw_exception(std::current_exception(), /*pending=*/true);
      } catch (...) {
        std::fprintf(stderr, "stackless: ~socket_file: a kill received meanwhile was lost\n");
      }
      return;
    }
  }
  std::fprintf(stderr, "stackless: ~socket_file: %zu unsent byte(s) dropped\n", st_->wbuf.size());
}

std::string socket_file::readline(std::optional<std::size_t> limit) {
  detail::file_call c(st_, "readline", true, false);
  detail::socket_file_state& st = c.st();
  const std::size_t cap = limit.value_or(st.max_line);
  if (cap == 0) return {};
  for (;;) {
    const std::string_view u = st.unread();
    const std::size_t nl = u.substr(0, cap).find('\n');
    if (nl != std::string_view::npos) return st.take(nl + 1);
    if (u.size() >= cap) return st.take(cap);
    // Unbuffered: one byte at a time, so nothing past the line leaves the socket.
    const std::size_t want = st.bufsize == 0 ? 1 : std::min(st.bufsize, cap - u.size());
    if (!detail::fill(c, want, "readline")) return st.take(st.unread().size());  // EOF
  }
}

std::string socket_file::read(std::size_t n) {
  detail::file_call c(st_, "read", true, false);
  detail::socket_file_state& st = c.st();
  while (st.unread().size() < n) {
    const std::size_t missing = n - st.unread().size();
    if (!detail::fill(c, st.bufsize == 0 ? missing : std::max(missing, st.bufsize), "read")) break;
  }
  return st.take(std::min(n, st.unread().size()));
}

std::size_t socket_file::write(std::string_view data) {
  detail::file_call c(st_, "write", false, true);
  detail::socket_file_state& st = c.st();
  st.wbuf.append(data);
  if (st.bufsize == 0 || st.wbuf.size() >= st.bufsize ||
      (st.line_buffered && data.find('\n') != std::string_view::npos)) {
    detail::flush_locked(c, "write");
  }
  return data.size();
}

void socket_file::flush() {
  detail::file_call c(st_, "flush", false, false);
  detail::flush_locked(c, "flush");
}

void socket_file::close() {
  if (!st_ || st_->closed) return;
  if (st_->sock->owner != std::this_thread::get_id()) {
    throw wrong_thread_error(
        "stackless::net::socket_file::close: the socket belongs to the thread that made it");
  }
  std::exception_ptr e;
  if (!st_->wbuf.empty()) {
    try {
      flush();
    } catch (...) {
      e = std::current_exception();
    }
  }
  st_->closed = true;
  st_->wbuf.clear();
  st_->rbuf.clear();
  st_->rpos = 0;
  if (e) std::rethrow_exception(e);
}

bool socket_file::closed() const noexcept {
  return !st_ || st_->closed;
}

std::size_t socket_file::max_line() const noexcept {
  return st_ ? st_->max_line : 0;
}

}  // namespace stackless::net
