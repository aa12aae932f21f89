// Internal to stackless::net: a socket's state and the receive/send paths that both the socket
// (net.cpp) and its buffered stream, socket_file (net_file.cpp), use.
//
// Invariants (per socket_impl, all thread-confined):
//   pending holds stream bytes a cancelled recv took; they precede anything still in the kernel,
//   because receives are serialised by rlock (a second receive cannot overtake the first).
//   pending_dgrams / pending_accepts likewise hold datagrams and connections.
//   refs counts the socket handle plus one per call in progress: a call never touches a freed
//   impl, whatever happens to the handle meanwhile.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "net_sys.hpp"
#include "poller.hpp"
#include "stackless/net.hpp"
#include "stackless/sync.hpp"

namespace stackless::net::detail {

using io::detail::deadline_clock;
using io::detail::no_deadline;
using io::detail::op_args;
using io::detail::op_kind;
using io::detail::outcome;

constexpr std::size_t kMaxRecv = std::size_t{1} << 20;  // one recv moves at most 1 MiB
constexpr std::size_t kMaxSend = std::size_t{1} << 30;

struct socket_impl {
  int fd = -1;
  int family = 0, type = 0;
  std::thread::id owner = std::this_thread::get_id();
  // timeout: nullopt blocks without limit; zero is non-blocking.
  std::optional<deadline_clock::duration> timeout;
  bool closing = false;          // close() began: no new operation starts
  bool closer_active = false;    // a tasklet is inside close_socket()
  io::detail::op_group group;    // every operation in flight on fd
  stackless::lock rlock, wlock;  // receives, sends: one call of each kind at a time (FIFO)
  address peer;                  // known peer (connect, accept), for messages
  std::string pending;           // stream bytes a cancelled receive took
  bool rx_full = false;  // the last stream receive filled its buffer: more is likely waiting
  std::deque<std::pair<std::string, address>> pending_dgrams;
  std::deque<std::pair<int, address>> pending_accepts;
  std::size_t refs = 1;

  bool stream() const noexcept { return type == SOCK_STREAM; }
  bool nonblocking() const noexcept { return timeout && timeout->count() == 0; }
  deadline_clock::time_point deadline() const {
    if (!timeout) return no_deadline;
    return deadline_clock::now() + *timeout;
  }
};

// hold: one more reference on a socket for the length of a call.
class hold {
 public:
  explicit hold(socket_impl& s) noexcept : s_(s) { ++s_.refs; }
  ~hold() { socket_release{}(&s_); }
  hold(const hold&) = delete;
  hold& operator=(const hold&) = delete;

 private:
  socket_impl& s_;
};

// where(what, prep, a): "stackless::net::<what>" plus " <prep> <addr>" when an address is known.
std::string where(const char* what, const char* prep, const address& a);
// local_name(s), peer_name(s): for messages; empty when unknown.
address local_name(const socket_impl& s);
address peer_name(socket_impl& s);
[[noreturn]] void fail_closed(const char* what);
void check_open(const socket_impl& s, const char* what);
[[noreturn]] void fail_errno(int err, const std::string& where);
[[noreturn]] void fail_timeout(const std::string& where, const std::string& extra = {});
// direct_result(r, where): a non-blocking socket's system call result (-1 with errno set).
long direct_result(long r, const std::string& where);

// lock_within(s, l, deadline, what, who): takes l for a call on s: at once or EAGAIN on a
// non-blocking socket, else waiting until the deadline (timeout_error naming `who`).
inline void lock_within(const socket_impl& s, stackless::lock& l,
                        deadline_clock::time_point deadline, const char* what,
                        const std::string& who) {
  if (s.nonblocking()) {
    if (!l.try_lock()) fail_errno(EAGAIN, std::string("stackless::net::") + what);
  } else if (deadline == no_deadline) {
    l.lock();
  } else if (!l.try_lock_until(deadline)) {
    fail_timeout(who);
  }
}

// kind_lock: one receive (or send) call at a time per socket, FIFO; the wait counts against the
// call's deadline. Non-blocking sockets do not wait for it (EAGAIN).
class kind_lock {
 public:
  kind_lock(socket_impl& s, stackless::lock& l, deadline_clock::time_point deadline,
            const char* what)
      : l_(l) {
    lock_within(s, l_, deadline, what, std::string("stackless::net::") + what);
    if (s.closing || s.fd < 0) {
      l_.unlock();
      fail_closed(what);
    }
  }
  ~kind_lock() { l_.unlock(); }
  kind_lock(const kind_lock&) = delete;
  kind_lock& operator=(const kind_lock&) = delete;

 private:
  stackless::lock& l_;
};

// perform(s, a, deadline, keep, where): one operation, repeated on EINTR/EAGAIN. A kill or
// throw that arrives while it runs: `keep(result, addrlen)` keeps what a completed operation
// produced (result >= 0), then the exception propagates. Returns the result (>= 0) and sets
// `addrlen` for accept/recvmsg; raises timeout_error, EBADF (closed meanwhile) or the errno.
template <class Keep, class Where>
long perform(socket_impl& s, op_args a, deadline_clock::time_point deadline, Keep&& keep,
             Where&& where_fn, std::uint32_t* addrlen = nullptr, const char* what = "operation") {
  const std::uint32_t addrlen0 = a.addrlen;
  for (;;) {
    if (s.closing || s.fd < 0) fail_closed(what);  // no switch between this and the submission
    a.fd = s.fd;
    a.addrlen = addrlen0;
    const outcome o = io::detail::submit(a, &s.group, deadline);
    if (o.interrupted) {
      if (o.result >= 0) keep(o.result, o.addrlen);
      o.rethrow_if_interrupted();
    }
    if (o.timed_out) fail_timeout(where_fn());
    const long r = o.result;
    if (r >= 0) {
      if (addrlen) *addrlen = o.addrlen;
      return r;
    }
    if (s.closing && r == io::detail::kCancelled) fail_closed(what);
    const int err = sys::result_errno(r);
    if (err == EINTR || err == EAGAIN) continue;
    fail_errno(err, where_fn());
  }
}

// recv_common(s, dst, n, flags, from, what, deadline): the receive path of recv/recv_into/
// recvfrom (and socket_file's reads, with the deadline of their whole call). Takes from what a
// cancelled receive kept first; a datagram larger than n is truncated. Without a deadline: the
// socket's timeout from now.
std::size_t recv_common(socket_impl& s, char* dst, std::size_t n, int flags, address* from,
                        const char* what, deadline_clock::time_point deadline);
std::size_t recv_common(socket_impl& s, char* dst, std::size_t n, int flags, address* from,
                        const char* what);

// send_some(s, p, n, flags, deadline, what, where_fn, keep): one send; returns the bytes sent.
// keep(sent, 0) is told what a send that completed before a kill reached the tasklet sent.
template <class Where, class Keep = void (*)(long, std::uint32_t)>
std::size_t send_some(
    socket_impl& s, const char* p, std::size_t n, int flags, deadline_clock::time_point deadline,
    const char* what, Where&& where_fn, Keep&& keep = [](long, std::uint32_t) {}) {
  flags |= sys::msg_nosignal;
  n = std::min(n, kMaxSend);
  if (s.nonblocking())
    return static_cast<std::size_t>(direct_result(sys::send_now(s.fd, p, n, flags), where_fn()));
  op_args a;
  a.kind = op_kind::send;
  a.buf = const_cast<char*>(p);
  a.len = static_cast<std::uint32_t>(n);
  a.msg_flags = flags;
  a.at_once = true;  // a send usually finds room in the socket buffer
  return static_cast<std::size_t>(perform(s, a, deadline, keep, where_fn, nullptr, what));
}

}  // namespace stackless::net::detail
