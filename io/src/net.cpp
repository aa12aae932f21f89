// stackless::net: sockets on the poller (addresses: net_address.cpp; the socket's state and its
// receive/send paths: net_impl.hpp; makefile()'s stream: net_file.cpp). Every blocking call is
// one or more backend operations (poller.hpp's submit with the socket's deadline); a socket in
// non-blocking mode (timeout 0) makes the system call directly. The only place where a socket's
// negative errno becomes an exception (system_error naming the call and the address).
#include "stackless/net.hpp"

#ifndef _WIN32
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <ostream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <tuple>

#include "net_impl.hpp"
#include "net_sys.hpp"
#include "poller.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/park.hpp"
#include "stackless/runtime/tasklet.hpp"

namespace stackless::net {

using io::detail::deadline_clock;
using io::detail::no_deadline;
using io::detail::op_args;
using io::detail::op_kind;
using io::detail::outcome;

// ---- the socket's state (net_impl.hpp) ------------------------------------------------------
namespace detail {

void socket_release::operator()(socket_impl* s) const noexcept {
  if (--s->refs > 0) return;
  // The last reference: no call in progress, no operation in flight.
  if (s->fd >= 0) sys::close_fd(s->fd);
  for (auto& [fd, a] : s->pending_accepts) sys::close_fd(fd);
  delete s;  // NOLINT: reference counted (socket_impl::refs)
}

// where(s, what, to): "stackless::net::<what>" plus " to|from <addr>" when an address is known.
std::string where(const char* what, const char* prep, const address& a) {
  std::string m = std::string("stackless::net::") + what;
  const std::string as = a.str();
  if (!as.empty()) m += std::string(" ") + prep + " " + as;
  return m;
}

// name_of(fd, call, err): the address getsockname or getpeername (call) reports; on failure
// the empty address with err set to the errno.
address name_of(int fd, int (*call)(int, sockaddr*, socklen_t*) noexcept, int& err) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  err = 0;
  if (fd < 0) {
    err = EBADF;
    return {};
  }
  if (call(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    err = sys::last_error();
    return {};
  }
  return address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
}

// local_name(s), peer_name(s): for messages; empty when unknown.
address local_name(const socket_impl& s) {
  int err;
  return name_of(s.fd, sys::getsockname_fd, err);
}

address peer_name(socket_impl& s) {
  if (!s.peer.family()) {
    int err;
    s.peer = name_of(s.fd, sys::getpeername_fd, err);
  }
  return s.peer;
}

[[noreturn]] void fail_closed(const char* what) {
  throw std::system_error(EBADF, std::generic_category(),
                          std::string("stackless::net::") + what + ": socket is closed");
}

void check_open(const socket_impl& s, const char* what) {
  if (s.fd < 0 || s.closing) fail_closed(what);
}

[[noreturn]] void fail_errno(int err, const std::string& where) {
  throw std::system_error(err, sys::category_of(err), where);
}

[[noreturn]] void fail_timeout(const std::string& where, const std::string& extra) {
  throw stackless::timeout_error(where + ": timed out" + extra);
}

// direct(r, where): a non-blocking socket's system call result (-1 with errno set).
long direct_result(long r, const std::string& where) {
  if (r < 0) fail_errno(sys::last_error(), where);
  return r;
}

// recv_common(s, dst, n, flags, from, what, deadline): the receive path of recv/recv_into/
// recvfrom (and socket_file's reads, with the deadline of their whole call). Takes from what a
// cancelled receive kept first; a datagram larger than n is truncated.
std::size_t recv_common(socket_impl& s, char* dst, std::size_t n, int flags, address* from,
                        const char* what, deadline_clock::time_point deadline) {
  kind_lock lk(s, s.rlock, deadline, what);
  const bool peek = flags & MSG_PEEK;
  if (s.stream() && !s.pending.empty()) {
    const std::size_t k = std::min(n, s.pending.size());
    std::memcpy(dst, s.pending.data(), k);
    if (!peek) s.pending.erase(0, k);
    if (from) *from = address();
    return k;
  }
  if (!s.stream() && !s.pending_dgrams.empty()) {
    auto& d = s.pending_dgrams.front();
    const std::size_t k = std::min(n, d.first.size());
    std::memcpy(dst, d.first.data(), k);
    if (from) *from = d.second;
    if (!peek) s.pending_dgrams.pop_front();
    return k;
  }
  auto where_fn = [&] { return where(what, "from", peer_name(s)); };
  if (s.stream()) {
    auto keep = [&](long r, std::uint32_t) {
      if (!peek) s.pending.append(dst, static_cast<std::size_t>(r));
    };
    long r;
    if (s.nonblocking()) {
      r = direct_result(sys::recv_now(s.fd, dst, n, flags), where_fn());
    } else {
      op_args a;
      a.kind = op_kind::recv;
      a.buf = dst;
      a.len = static_cast<std::uint32_t>(n);
      a.msg_flags = flags;
      // Try at once only when the last receive filled its buffer (a bulk transfer): in a
      // request/response exchange the next bytes are usually not there yet, and a receive that
      // finds nothing would cost a system call the backend does not need.
      a.at_once = s.rx_full;
      r = perform(s, a, deadline, keep, where_fn, nullptr, what);
      if (!peek) s.rx_full = n > 0 && static_cast<std::size_t>(r) == n;
    }
    if (from) *from = address();
    return static_cast<std::size_t>(r);
  }
  // Datagrams: recvmsg (Windows: WSARecvFrom), for the sender's address.
  sockaddr_storage ss{};
#ifdef _WIN32
  io::detail::win_dgram msg;
  msg.data = dst;
  msg.len = static_cast<std::uint32_t>(n);
  msg.name = &ss;
  msg.namelen = sizeof ss;
  auto sender = [&] { return address::from_native(reinterpret_cast<sockaddr*>(&ss), msg.namelen); };
#else
  iovec iov{dst, n};
  msghdr msg{};
  msg.msg_name = &ss;
  msg.msg_namelen = sizeof ss;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  auto sender = [&] {
    return address::from_native(reinterpret_cast<sockaddr*>(&ss), msg.msg_namelen);
  };
#endif
  auto keep = [&](long r, std::uint32_t) {
    if (!peek)
      s.pending_dgrams.emplace_back(std::string(dst, static_cast<std::size_t>(r)), sender());
  };
  auto where_local = [&] { return where(what, "on", local_name(s)); };
  long r;
  if (s.nonblocking()) {
#ifdef _WIN32
    r = direct_result(
        sys::recvfrom_now(s.fd, dst, n, flags, reinterpret_cast<sockaddr*>(&ss), &msg.namelen),
        where_local());
#else
    r = direct_result(::recvmsg(s.fd, &msg, flags | MSG_DONTWAIT), where_local());
#endif
  } else {
    op_args a;
    a.kind = op_kind::recvmsg;
    a.buf = &msg;
    a.msg_flags = flags;
    r = perform(s, a, deadline, keep, where_local, nullptr, what);
  }
  if (from) *from = sender();
  return static_cast<std::size_t>(r);
}

std::size_t recv_common(socket_impl& s, char* dst, std::size_t n, int flags, address* from,
                        const char* what) {
  return recv_common(s, dst, n, flags, from, what, s.deadline());
}

namespace {

// connect_impl(s, addr): 0 or the errno (ETIMEDOUT for a timeout); EBADF raises.
int connect_impl(socket_impl& s, const address& addr, const char* what) {
  const auto deadline = s.deadline();
  kind_lock lk(s, s.wlock, deadline, what);
  s.peer = addr;
#ifdef _WIN32
  // Datagram sockets: a plain connect (it never waits). Non-blocking: WSAEWOULDBLOCK is POSIX's
  // EINPROGRESS.
  if (s.nonblocking() || !s.stream()) {
    if (sys::connect_now(s.fd, addr.native(), addr.native_size()) == 0) return 0;
    const int err = sys::last_error();
    return err == EAGAIN ? EINPROGRESS : err;
  }
  // ConnectEx needs a bound socket: the any address of the family, port 0, unless bound already.
  {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (sys::getsockname_fd(s.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      const address any(addr.family() == AF_INET6 ? "::" : "0.0.0.0", 0);
      if (sys::bind_fd(s.fd, any.native(), any.native_size()) != 0) return sys::last_error();
    }
  }
#else
  if (s.nonblocking()) {
    if (::connect(s.fd, addr.native(), addr.native_size()) == 0) return 0;
    return errno;
  }
#endif
  op_args a;
  a.kind = op_kind::connect;
  a.buf = const_cast<sockaddr*>(addr.native());
  a.len = addr.native_size();
  try {
    perform(
        s, a, deadline, [](long, std::uint32_t) {}, [&] { return where(what, "to", addr); },
        nullptr, what);
    return 0;
  } catch (const stackless::timeout_error&) {
    return ETIMEDOUT;
  } catch (const std::system_error& e) {
    if (e.code().value() == EBADF && s.closing) throw;
    return e.code().value();
  }
}

struct close_result {
  std::exception_ptr interrupted;
};

// close_socket(s): marks the socket closing (new calls fail with EBADF), cancels every operation
// in flight on it, waits until the backend is done with each, then closes the descriptor.
// Tasklets queued on its locks wake one after the other and raise EBADF (kind_lock).
std::exception_ptr close_socket(socket_impl& s) {
  hold h(s);
  s.closing = true;
  s.closer_active = true;
  io::detail::cancel_group(s.group);
  std::exception_ptr e = io::detail::wait_group_empty(s.group);
  sys::close_fd(s.fd);
  s.fd = -1;
  for (auto& [fd, a] : s.pending_accepts) sys::close_fd(fd);
  s.pending_accepts.clear();
  s.closer_active = false;
  return e;
}

int make_fd(int family, int type, int proto) {
  const int fd = sys::make_socket(family, type, proto);
  if (fd < 0) {
    fail_errno(sys::last_error(), "stackless::net::socket(family " + std::to_string(family) +
                                      ", type " + std::to_string(type) + ")");
  }
  return fd;
}

// accept_once(s, deadline): one accept on the listening socket s: the new descriptor and the
// peer's address. Raises as every call does.
std::pair<int, address> accept_once(socket_impl& s, deadline_clock::time_point deadline) {
  int fd = -1;
  address peer;
  sockaddr_storage ss{};
  auto where_fn = [&] { return where("accept", "on", local_name(s)); };
  if (s.nonblocking()) {
    socklen_t len = sizeof ss;
    fd = static_cast<int>(
        direct_result(sys::accept_now(s.fd, reinterpret_cast<sockaddr*>(&ss), &len), where_fn()));
    peer = address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
  } else {
    io::detail::op_args a;
    a.kind = op_kind::accept;
#ifdef _WIN32
    // AcceptEx accepts into a socket made here (of the listener's family and type), which
    // stays ours to close unless the op succeeds.
    struct accept_area : io::detail::win_accept {
      ~accept_area() {
        if (accepted >= 0) sys::close_fd(accepted);
      }
    } area;
    area.accepted = sys::make_socket(s.family, s.type, 0);
    if (area.accepted < 0) fail_errno(sys::last_error(), where_fn());
    a.buf = &area;
    auto* peer_sa = reinterpret_cast<sockaddr*>(area.peer);
#else
    a.buf = &ss;
    a.addrlen = sizeof ss;
    auto* peer_sa = reinterpret_cast<sockaddr*>(&ss);
#endif
    auto keep = [&](long r, std::uint32_t len) {
      // Accepted, then killed: the connection goes to the next accept().
      s.pending_accepts.emplace_back(static_cast<int>(r), address::from_native(peer_sa, len));
#ifdef _WIN32
      area.accepted = -1;  // owned by pending_accepts now
#endif
    };
    std::uint32_t len = 0;
    fd = static_cast<int>(perform(s, a, deadline, keep, where_fn, &len, "accept"));
#ifdef _WIN32
    area.accepted = -1;  // the result
#endif
    peer = address::from_native(peer_sa, len);
  }
  return {fd, peer};
}

// accept_skips(code): a failed accept that is skipped rather than raised (socket::accept).
bool accept_skips(const std::error_code& code) noexcept {
  if (code == std::errc::connection_aborted) return true;
#ifdef _WIN32
  if (code == std::errc::connection_reset) return true;  // AcceptEx: ERROR_NETNAME_DELETED
#endif
  return false;
}

}  // namespace
}  // namespace detail

using detail::socket_impl;
namespace sys = detail::sys;

// ---- socket ----------------------------------------------------------------------------------

socket::socket() noexcept = default;
socket::socket(std::unique_ptr<socket_impl, detail::socket_release> p) noexcept
    : impl_(std::move(p)) {}
socket::socket(int family, int type, int proto) {
  std::unique_ptr<socket_impl, detail::socket_release> s(new socket_impl);  // NOLINT: refcounted
  s->fd = detail::make_fd(family, type, proto);
  s->family = family;
  s->type = type;
  impl_ = std::move(s);
}
socket::socket(socket&&) noexcept = default;
socket& socket::operator=(socket&& o) noexcept {
  if (this != &o) {
    socket old(std::move(*this));
    impl_ = std::move(o.impl_);
  }
  return *this;
}

socket::~socket() {
  if (!impl_) return;
  socket_impl& s = *impl_;
  if (s.fd < 0 || s.closer_active) return;
  if (s.owner != std::this_thread::get_id()) {
    // Its operations belong to another thread's poller: nothing may be waited for here.
    std::fprintf(stderr, "stackless: a socket was destroyed on a thread other than its own\n");
    s.closing = true;
    if (s.group.count == 0) {
      sys::close_fd(s.fd);
      s.fd = -1;
    }
    return;
  }
  const std::exception_ptr e = detail::close_socket(s);
  if (e && std::uncaught_exceptions() == 0) {
    // A kill that arrived while the destructor waited: delivered again at the next check
    // point or switch.
    stackless::detail::deliver_later(e);
  }
}

socket_impl& socket::live(const char* op) const {
  if (!impl_) detail::fail_closed(op);
  if (impl_->owner != std::this_thread::get_id()) {
    throw wrong_thread_error(std::string("stackless::net::socket::") + op +
                             ": the socket belongs to the thread that made it");
  }
  return *impl_;
}

void socket::bind(const address& addr) {
  socket_impl& s = live("bind");
  detail::check_open(s, "bind");
  if (sys::bind_fd(s.fd, addr.native(), addr.native_size()) != 0)
    detail::fail_errno(sys::last_error(), detail::where("bind", "to", addr));
}

void socket::listen(int backlog) {
  socket_impl& s = live("listen");
  detail::check_open(s, "listen");
  if (sys::listen_fd(s.fd, std::max(backlog, 0)) != 0)
    detail::fail_errno(sys::last_error(), detail::where("listen", "on", detail::local_name(s)));
}

std::pair<socket, address> socket::accept() {
  socket_impl& s = live("accept");
  detail::hold h(s);
  detail::check_open(s, "accept");
  const auto deadline = s.deadline();
  detail::kind_lock lk(s, s.rlock, deadline, "accept");
  int fd = -1;
  address peer;
  if (!s.pending_accepts.empty()) {
    std::tie(fd, peer) = s.pending_accepts.front();
    s.pending_accepts.pop_front();
  } else {
    // A connection the peer reset or aborted before it was accepted is skipped, as Go does:
    // ECONNABORTED (POSIX), and on Windows AcceptEx's ERROR_NETNAME_DELETED (ECONNRESET). Raised,
    // it would end a server's accept loop because of one client; Linux never reports such a
    // connection at all. Each attempt (on Windows: each accepting socket) is new.
    for (;;) {
      try {
        std::tie(fd, peer) = detail::accept_once(s, deadline);
        break;
      } catch (const std::system_error& e) {
        if (!detail::accept_skips(e.code())) throw;
      }
    }
  }
  std::unique_ptr<socket_impl, detail::socket_release> c(new socket_impl);  // NOLINT: refcounted
  c->fd = fd;
  c->family = s.family;
  c->type = s.type;
  c->peer = peer;
  return {socket(std::move(c)), peer};
}

void socket::connect(const address& addr) {
  socket_impl& s = live("connect");
  detail::hold h(s);
  detail::check_open(s, "connect");
  const int err = detail::connect_impl(s, addr, "connect");
  if (err == ETIMEDOUT && s.timeout) detail::fail_timeout(detail::where("connect", "to", addr));
  if (err) detail::fail_errno(err, detail::where("connect", "to", addr));
}

int socket::connect_ex(const address& addr) {
  socket_impl& s = live("connect_ex");
  detail::hold h(s);
  detail::check_open(s, "connect_ex");
  return detail::connect_impl(s, addr, "connect_ex");
}

std::string socket::recv(std::size_t bufsize, int flags) {
  socket_impl& s = live("recv");
  detail::hold h(s);
  detail::check_open(s, "recv");
  if (bufsize == 0) return {};
  std::string out(std::min(bufsize, detail::kMaxRecv), '\0');
  out.resize(detail::recv_common(s, out.data(), out.size(), flags, nullptr, "recv"));
  return out;
}

std::size_t socket::recv_into(std::span<std::byte> buf, int flags) {
  socket_impl& s = live("recv_into");
  detail::hold h(s);
  detail::check_open(s, "recv_into");
  if (buf.empty()) return 0;
  return detail::recv_common(s, reinterpret_cast<char*>(buf.data()),
                             std::min(buf.size(), detail::kMaxSend), flags, nullptr, "recv_into");
}

std::pair<std::string, address> socket::recvfrom(std::size_t bufsize, int flags) {
  socket_impl& s = live("recvfrom");
  detail::hold h(s);
  detail::check_open(s, "recvfrom");
  std::string out(std::min(bufsize, detail::kMaxRecv), '\0');
  address from;
  out.resize(detail::recv_common(s, out.data(), out.size(), flags, &from, "recvfrom"));
  return {std::move(out), std::move(from)};
}

std::size_t socket::send(std::string_view data, int flags) {
  return send(std::as_bytes(std::span(data.data(), data.size())), flags);
}

std::size_t socket::send(std::span<const std::byte> data, int flags) {
  socket_impl& s = live("send");
  detail::hold h(s);
  detail::check_open(s, "send");
  const auto deadline = s.deadline();
  detail::kind_lock lk(s, s.wlock, deadline, "send");
  return detail::send_some(s, reinterpret_cast<const char*>(data.data()), data.size(), flags,
                           deadline, "send",
                           [&] { return detail::where("send", "to", detail::peer_name(s)); });
}

void socket::sendall(std::string_view data, int flags) {
  socket_impl& s = live("sendall");
  detail::hold h(s);
  detail::check_open(s, "sendall");
  const auto deadline = s.deadline();  // the whole call (Python 3.5+)
  detail::kind_lock lk(s, s.wlock, deadline, "sendall");
  std::size_t done = 0;
  const auto count = [&] {
    return " (sent " + std::to_string(done) + " of " + std::to_string(data.size()) + " bytes)";
  };
  const auto where_fn = [&] { return detail::where("sendall", "to", detail::peer_name(s)); };
  try {
    do {
      done += detail::send_some(s, data.data() + done, data.size() - done, flags, deadline,
                                "sendall", where_fn);
    } while (done < data.size());
  } catch (const stackless::timeout_error&) {
    detail::fail_timeout(where_fn(), count());
  } catch (const std::system_error& e) {
    // Closed meanwhile: "socket is closed", as every call woken by close() says.
    const bool closed = s.closing && e.code().value() == EBADF;
    throw std::system_error(e.code(), where_fn() + count() + (closed ? ": socket is closed" : ""));
  }
}

std::size_t socket::sendto(std::string_view data, const address& addr, int flags) {
  socket_impl& s = live("sendto");
  detail::hold h(s);
  detail::check_open(s, "sendto");
  const auto deadline = s.deadline();
  detail::kind_lock lk(s, s.wlock, deadline, "sendto");
  const auto where_fn = [&] { return detail::where("sendto", "to", addr); };
  flags |= sys::msg_nosignal;
#ifdef _WIN32
  if (s.nonblocking())
    return static_cast<std::size_t>(detail::direct_result(
        sys::sendto_now(s.fd, data.data(), data.size(), flags, addr.native(), addr.native_size()),
        where_fn()));
  io::detail::win_dgram msg;
  msg.data = const_cast<char*>(data.data());
  msg.len = static_cast<std::uint32_t>(std::min(data.size(), detail::kMaxSend));
  msg.name = const_cast<sockaddr*>(addr.native());
  msg.namelen = addr.native_size();
#else
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(addr.native());
  msg.msg_namelen = addr.native_size();
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (s.nonblocking())
    return static_cast<std::size_t>(
        detail::direct_result(::sendmsg(s.fd, &msg, flags | MSG_DONTWAIT), where_fn()));
#endif
  io::detail::op_args a;
  a.kind = op_kind::sendmsg;
  a.buf = &msg;
  a.msg_flags = flags;
  a.at_once = true;
  return static_cast<std::size_t>(detail::perform(
      s, a, deadline, [](long, std::uint32_t) {}, where_fn, nullptr, "sendto"));
}

void socket::shutdown(int how) {
  socket_impl& s = live("shutdown");
  detail::check_open(s, "shutdown");
  if (sys::shutdown_fd(s.fd, how) != 0)
    detail::fail_errno(sys::last_error(), detail::where("shutdown", "of", detail::peer_name(s)));
}

void socket::close() {
  if (!impl_) return;
  socket_impl& s = live("close");
  if (s.fd < 0 || s.closer_active) return;
  if (std::exception_ptr e = detail::close_socket(s)) std::rethrow_exception(e);
}

bool socket::closed() const noexcept {
  return !impl_ || impl_->fd < 0 || impl_->closing;
}

void socket::settimeout(std::optional<double> seconds) {
  socket_impl& s = live("settimeout");
  std::optional<deadline_clock::duration> t;
  if (seconds) {
    if (!(*seconds >= 0) || !std::isfinite(*seconds)) {
      throw std::invalid_argument(
          "stackless::net::socket::settimeout: " + std::to_string(*seconds) +
          " (expected a non-negative number of seconds, or nullopt)");
    }
    // Saturate: a timeout beyond a century is no timeout (the deadline would overflow).
    if (*seconds <= 3.0e9) {
      t = std::chrono::duration_cast<deadline_clock::duration>(
          std::chrono::duration<double>(*seconds));
    }
  }
  const auto old = s.timeout;
  const bool was_nonblocking = s.nonblocking();
  s.timeout = t;
  // Windows: only a non-blocking socket has FIONBIO (its calls are direct; net_sys.hpp).
  if (s.nonblocking() != was_nonblocking && s.fd >= 0 && !s.closing &&
      !sys::set_nonblocking(s.fd, s.nonblocking())) {
    s.timeout = old;
    detail::fail_errno(sys::last_error(), "stackless::net::settimeout");
  }
}

std::optional<double> socket::gettimeout() const {
  const socket_impl& s = live("gettimeout");
  if (!s.timeout) return std::nullopt;
  return std::chrono::duration<double>(*s.timeout).count();
}

void socket::setblocking(bool flag) {
  settimeout(flag ? std::nullopt : std::optional<double>(0.0));
}

bool socket::getblocking() const {
  return !live("getblocking").nonblocking();
}

void socket::setsockopt(int level, int option, int value) {
  socket_impl& s = live("setsockopt");
  detail::check_open(s, "setsockopt");
  if (sys::setsockopt_fd(s.fd, level, option, &value, sizeof value) != 0) {
    detail::fail_errno(sys::last_error(), "stackless::net::setsockopt(level " +
                                              std::to_string(level) + ", option " +
                                              std::to_string(option) + ")");
  }
}

int socket::getsockopt(int level, int option) const {
  socket_impl& s = live("getsockopt");
  detail::check_open(s, "getsockopt");
  int v = 0;
  socklen_t len = sizeof v;
  if (sys::getsockopt_fd(s.fd, level, option, &v, &len) != 0) {
    detail::fail_errno(sys::last_error(), "stackless::net::getsockopt(level " +
                                              std::to_string(level) + ", option " +
                                              std::to_string(option) + ")");
  }
  return v;
}

address socket::getsockname() const {
  socket_impl& s = live("getsockname");
  detail::check_open(s, "getsockname");
  int err;
  address a = detail::name_of(s.fd, sys::getsockname_fd, err);
  if (err) detail::fail_errno(err, "stackless::net::getsockname");
  return a;
}

address socket::getpeername() const {
  socket_impl& s = live("getpeername");
  detail::check_open(s, "getpeername");
  int err;
  address a = detail::name_of(s.fd, sys::getpeername_fd, err);
  if (err) detail::fail_errno(err, "stackless::net::getpeername");  // ENOTCONN
  return a;
}

int socket::fileno() const noexcept {
  return impl_ ? impl_->fd : -1;
}
int socket::family() const noexcept {
  return impl_ ? impl_->family : 0;
}
int socket::type() const noexcept {
  return impl_ ? impl_->type : 0;
}

socket create_connection(const address& addr, std::optional<double> timeout) {
  socket s(addr.family(), sock_stream);
  s.settimeout(timeout);
  s.connect(addr);
  return s;
}

socket create_server(const address& addr, int backlog, bool reuse_port) {
  socket s(addr.family(), sock_stream);
#ifdef _WIN32
  // As Python on Windows: no SO_REUSEADDR (there it lets another socket take the port), and no
  // SO_REUSEPORT at all.
  if (reuse_port)
    throw std::invalid_argument(
        "stackless::net::create_server: reuse_port is not supported on "
        "Windows");
#else
  if (addr.family() != AF_UNIX) {
    s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    if (reuse_port) s.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
  }
#endif
  s.bind(addr);
  s.listen(backlog);
  return s;
}

}  // namespace stackless::net
