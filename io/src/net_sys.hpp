// Internal to stackless::net: the system calls a socket makes outside the poller, with one
// signature on POSIX and Windows (Winsock). A socket is an int on both: on Windows the SOCKET's
// value (net.hpp's fileno()), INVALID_SOCKET being -1. Errors are errno values on both: Winsock's
// codes are translated (wsa_errno), so callers, messages and std::errc comparisons are the same.
#pragma once

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "stackless/net.hpp"

#include <string>
#include <system_error>

#ifdef _WIN32
// clang-format off
#include <winsock2.h>  // before windows.h
#include <mswsock.h>   // SIO_UDP_CONNRESET
#include <ws2tcpip.h>
// clang-format on
#else
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#ifdef _WIN32
// net.hpp's copies of Winsock's values (it does not include Winsock).
static_assert(stackless::net::af_inet == AF_INET && stackless::net::af_inet6 == AF_INET6 &&
              stackless::net::af_unix == AF_UNIX && stackless::net::af_unspec == AF_UNSPEC);
static_assert(stackless::net::sock_stream == SOCK_STREAM &&
              stackless::net::sock_dgram == SOCK_DGRAM);
static_assert(stackless::net::shut_rd == SD_RECEIVE && stackless::net::shut_wr == SD_SEND &&
              stackless::net::shut_rdwr == SD_BOTH);
static_assert(stackless::net::ipproto_tcp == IPPROTO_TCP &&
              stackless::net::ipproto_udp == IPPROTO_UDP);
static_assert(stackless::net::ai_passive == AI_PASSIVE &&
              stackless::net::ai_canonname == AI_CANONNAME &&
              stackless::net::ai_numerichost == AI_NUMERICHOST &&
              stackless::net::ai_numericserv == AI_NUMERICSERV &&
              stackless::net::ai_v4mapped == AI_V4MAPPED && stackless::net::ai_all == AI_ALL &&
              stackless::net::ai_addrconfig == AI_ADDRCONFIG);
static_assert(std::is_same_v<stackless::net::native_socklen_t, socklen_t>);
static_assert(sizeof(sockaddr_storage) == 128 && alignof(sockaddr_storage) <= 8);
#endif

namespace stackless::net::detail::sys {

#ifdef _WIN32
inline SOCKET sock(int fd) noexcept {
  return static_cast<SOCKET>(static_cast<std::intptr_t>(fd));
}

// wsa_errno(e): the errno of a Winsock (or Win32) error code; unknown codes stay as they are
// (then they are reported in std::system_category, see fail_errno). The Win32 codes a socket
// call or its completion can give are translated too: unknown, a small Win32 code would read as
// the errno of the same value, and some of those are retried or waited on (4 is EINTR,
// ERROR_TOO_MANY_OPEN_FILES; 112 is MinGW's EINPROGRESS, ERROR_DISK_FULL).
inline int wsa_errno(int e) noexcept {
  switch (e) {
    case ERROR_TOO_MANY_OPEN_FILES:
      return EMFILE;
    case ERROR_ACCESS_DENIED:
      return EACCES;
    case ERROR_OUTOFMEMORY:
      return ENOMEM;
    case ERROR_INVALID_PARAMETER:
      return EINVAL;
    case ERROR_NOT_SUPPORTED:
      return EOPNOTSUPP;
    case ERROR_BROKEN_PIPE:
      return EPIPE;
    case ERROR_DISK_FULL:
      return ENOSPC;
    case ERROR_NOACCESS:
    case ERROR_INVALID_USER_BUFFER:
      return EFAULT;
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_NONPAGED_SYSTEM_RESOURCES:
      return ENOBUFS;
    case WSAEINTR:
      return EINTR;
    case WSAEBADF:
    case WSAENOTSOCK:
    case ERROR_INVALID_HANDLE:
      return EBADF;
    case WSAEACCES:
      return EACCES;
    case WSAEFAULT:
      return EFAULT;
    case WSAEINVAL:
      return EINVAL;
    case WSAEMFILE:
      return EMFILE;
    case WSAEWOULDBLOCK:
      return EAGAIN;
    case WSAEINPROGRESS:
      return EINPROGRESS;
    case WSAEALREADY:
      return EALREADY;
    case WSAEDESTADDRREQ:
      return EDESTADDRREQ;
    case WSAEMSGSIZE:
      return EMSGSIZE;
    case WSAEPROTOTYPE:
      return EPROTOTYPE;
    case WSAENOPROTOOPT:
      return ENOPROTOOPT;
    case WSAEPROTONOSUPPORT:
      return EPROTONOSUPPORT;
    case WSAESOCKTNOSUPPORT:
    case WSAEOPNOTSUPP:
      return EOPNOTSUPP;
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT:
      return EAFNOSUPPORT;
    case WSAEADDRINUSE:
      return EADDRINUSE;
    case WSAEADDRNOTAVAIL:
      return EADDRNOTAVAIL;
    case WSAENETDOWN:
      return ENETDOWN;
    case WSAENETUNREACH:
    case ERROR_NETWORK_UNREACHABLE:
      return ENETUNREACH;
    case WSAENETRESET:
      return ENETRESET;
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED:
      return ECONNABORTED;
    case WSAECONNRESET:
    case ERROR_NETNAME_DELETED:
      return ECONNRESET;
    case WSAENOBUFS:
      return ENOBUFS;
    case WSAEISCONN:
      return EISCONN;
    case WSAENOTCONN:
      return ENOTCONN;
    case WSAESHUTDOWN:
      return EPIPE;  // a send after shutdown(SD_SEND), as POSIX says
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT:
      return ETIMEDOUT;
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED:
    case ERROR_PORT_UNREACHABLE:
      return ECONNREFUSED;
    case WSAEHOSTUNREACH:
    case ERROR_HOST_UNREACHABLE:
      return EHOSTUNREACH;
    case WSA_OPERATION_ABORTED:
      return ECANCELED;
    case WSA_NOT_ENOUGH_MEMORY:
      return ENOMEM;
    default:
      return e;
  }
}
// last_error(): the failed call's error, as an errno.
inline int last_error() noexcept {
  return wsa_errno(::WSAGetLastError());
}
// result_errno(r): a negative backend result's errno.
inline int result_errno(long r) noexcept {
  return wsa_errno(static_cast<int>(-r));
}
// errno_category: the category of a socket error on Windows. Its values are errno values where
// wsa_errno knows the code (equivalent to std::generic_category()'s, so std::errc comparisons
// hold) and Winsock/Win32 codes otherwise (equivalent to std::system_category()'s). It exists for
// its messages: MinGW's strerror knows no socket errno ("Unknown error"), and GCC 12's
// system_category() formats no Win32 code.
class errno_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "stackless::net"; }
  std::error_condition default_error_condition(int ev) const noexcept override {
    if (ev >= 10000) return {ev, std::system_category()};
    return {ev, std::generic_category()};
  }
  std::string message(int ev) const override {
    switch (ev) {  // glibc's texts, for the errno values MinGW's strerror does not know
      case EADDRINUSE:
        return "Address already in use";
      case EADDRNOTAVAIL:
        return "Cannot assign requested address";
      case EAFNOSUPPORT:
        return "Address family not supported by protocol";
      case EALREADY:
        return "Operation already in progress";
      case ECANCELED:
        return "Operation canceled";
      case ECONNABORTED:
        return "Software caused connection abort";
      case ECONNREFUSED:
        return "Connection refused";
      case ECONNRESET:
        return "Connection reset by peer";
      case EDESTADDRREQ:
        return "Destination address required";
      case EHOSTUNREACH:
        return "No route to host";
      case EINPROGRESS:
        return "Operation now in progress";
      case EISCONN:
        return "Transport endpoint is already connected";
      case EMSGSIZE:
        return "Message too long";
      case ENETDOWN:
        return "Network is down";
      case ENETRESET:
        return "Network dropped connection on reset";
      case ENETUNREACH:
        return "Network is unreachable";
      case ENOBUFS:
        return "No buffer space available";
      case ENOPROTOOPT:
        return "Protocol not available";
      case ENOTCONN:
        return "Transport endpoint is not connected";
      case EOPNOTSUPP:
        return "Operation not supported";
      case EPROTONOSUPPORT:
        return "Protocol not supported";
      case EPROTOTYPE:
        return "Protocol wrong type for socket";
      case ETIMEDOUT:
        return "Connection timed out";
      default:
        break;
    }
    if (ev < 10000) return std::generic_category().message(ev);
    char buf[256] = {};
    const DWORD n = ::FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                                     nullptr, static_cast<DWORD>(ev), 0, buf, sizeof buf, nullptr);
    std::string m(buf, n);
    while (!m.empty() && (m.back() == '\n' || m.back() == '\r' || m.back() == ' ')) m.pop_back();
    if (m.empty()) m = "error " + std::to_string(ev);
    return m;
  }
};
// category_of(err): the category socket errors are thrown in.
inline const std::error_category& category_of(int) noexcept {
  static const errno_category c;
  return c;
}
// startup(): WSAStartup once per process (never undone: sockets may live until exit).
inline void startup() {
  static const int rc = [] {
    WSADATA d;
    return ::WSAStartup(MAKEWORD(2, 2), &d);
  }();
  if (rc != 0) throw std::system_error(rc, std::system_category(), "stackless::net: WSAStartup");
}
inline constexpr int msg_nosignal = 0;  // no SIGPIPE on Windows
inline constexpr int msg_dontwait = 0;  // non-blocking mode is the socket's (set_nonblocking)

// make_socket(family, type, proto): an overlapped, non-inheritable socket, or -1 (last_error()).
inline int make_socket(int family, int type, int proto) {
  startup();
  const SOCKET s = ::WSASocketW(family, type, proto, nullptr, 0,
                                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return -1;
  if (type == SOCK_DGRAM) {
    // Windows reports an ICMP "port unreachable" (from an earlier sendto, or forged) as
    // WSAECONNRESET on the next receive of an unconnected datagram socket, which POSIX never
    // does: a recvfrom loop would die of someone else's packet. Off, as Go and libuv do (best
    // effort: a provider that refuses keeps Windows' behaviour).
    BOOL report = FALSE;
    DWORD unused = 0;
    ::WSAIoctl(s, SIO_UDP_CONNRESET, &report, sizeof report, nullptr, 0, &unused, nullptr, nullptr);
  }
  return static_cast<int>(static_cast<std::intptr_t>(s));
}
inline int close_fd(int fd) noexcept {
  return ::closesocket(sock(fd));
}
// set_nonblocking(fd, on): FIONBIO. Only a socket in non-blocking mode (timeout 0) has it: the
// overlapped operations of the other modes do not depend on it.
inline bool set_nonblocking(int fd, bool on) noexcept {
  u_long v = on ? 1 : 0;
  return ::ioctlsocket(sock(fd), FIONBIO, &v) == 0;
}
// Winsock lengths are ints: a stream call moves at most INT_MAX bytes (a partial transfer, as
// POSIX allows); a datagram longer than that cannot be sent at all (EMSGSIZE, as on POSIX).
inline int clamp_len(std::size_t n) noexcept {
  return static_cast<int>(std::min<std::size_t>(n, INT_MAX));
}
inline long recv_now(int fd, void* p, std::size_t n, int flags) noexcept {
  return ::recv(sock(fd), static_cast<char*>(p), clamp_len(n), flags);
}
inline long send_now(int fd, const void* p, std::size_t n, int flags) noexcept {
  return ::send(sock(fd), static_cast<const char*>(p), clamp_len(n), flags);
}
// recvfrom_now: a datagram larger than n is truncated to n, as on POSIX (Winsock: WSAEMSGSIZE).
inline long recvfrom_now(int fd, void* p, std::size_t n, int flags, sockaddr* from,
                         socklen_t* fromlen) noexcept {
  const long r = ::recvfrom(sock(fd), static_cast<char*>(p), clamp_len(n), flags, from, fromlen);
  if (r < 0 && ::WSAGetLastError() == WSAEMSGSIZE) return static_cast<long>(n);
  return r;
}
inline long sendto_now(int fd, const void* p, std::size_t n, int flags, const sockaddr* to,
                       socklen_t tolen) noexcept {
  if (n > INT_MAX) {
    ::WSASetLastError(WSAEMSGSIZE);
    return -1;
  }
  return ::sendto(sock(fd), static_cast<const char*>(p), static_cast<int>(n), flags, to, tolen);
}
// accept_now(fd, sa, len): a non-blocking accept; the new socket is blocking (it inherits the
// listener's FIONBIO otherwise).
inline int accept_now(int fd, sockaddr* sa, socklen_t* len) noexcept {
  const SOCKET s = ::accept(sock(fd), sa, len);
  if (s == INVALID_SOCKET) return -1;
  // Not inherited by child processes, as every socket the library makes (accept() gives no
  // choice; Python clears the flag the same way).
  ::SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
  const int c = static_cast<int>(static_cast<std::intptr_t>(s));
  set_nonblocking(c, false);
  return c;
}
inline int connect_now(int fd, const sockaddr* sa, socklen_t len) noexcept {
  return ::connect(sock(fd), sa, len);
}
inline int bind_fd(int fd, const sockaddr* sa, socklen_t len) noexcept {
  return ::bind(sock(fd), sa, len);
}
inline int listen_fd(int fd, int backlog) noexcept {
  return ::listen(sock(fd), backlog);
}
inline int shutdown_fd(int fd, int how) noexcept {
  return ::shutdown(sock(fd), how);
}
inline int setsockopt_fd(int fd, int level, int opt, const void* v, socklen_t len) noexcept {
  return ::setsockopt(sock(fd), level, opt, static_cast<const char*>(v), len);
}
inline int getsockopt_fd(int fd, int level, int opt, void* v, socklen_t* len) noexcept {
  return ::getsockopt(sock(fd), level, opt, static_cast<char*>(v), len);
}
inline int getsockname_fd(int fd, sockaddr* sa, socklen_t* len) noexcept {
  return ::getsockname(sock(fd), sa, len);
}
inline int getpeername_fd(int fd, sockaddr* sa, socklen_t* len) noexcept {
  return ::getpeername(sock(fd), sa, len);
}
#else
inline int last_error() noexcept {
  return errno;
}
inline int result_errno(long r) noexcept {
  return static_cast<int>(-r);
}
inline const std::error_category& category_of(int) noexcept {
  return std::generic_category();
}
inline void startup() noexcept {}
inline constexpr int msg_nosignal = MSG_NOSIGNAL;
inline constexpr int msg_dontwait = MSG_DONTWAIT;

inline int make_socket(int family, int type, int proto) noexcept {
  return ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
}
inline int close_fd(int fd) noexcept {
  return ::close(fd);
}
inline bool set_nonblocking(int, bool) noexcept {
  return true;  // descriptors are O_NONBLOCK always; direct calls pass MSG_DONTWAIT
}
inline long recv_now(int fd, void* p, std::size_t n, int flags) noexcept {
  return ::recv(fd, p, n, flags | MSG_DONTWAIT);
}
inline long send_now(int fd, const void* p, std::size_t n, int flags) noexcept {
  return ::send(fd, p, n, flags | MSG_DONTWAIT);
}
inline int accept_now(int fd, sockaddr* sa, socklen_t* len) noexcept {
  return ::accept4(fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
inline int connect_now(int fd, const sockaddr* sa, socklen_t len) noexcept {
  return ::connect(fd, sa, len);
}
inline int bind_fd(int fd, const sockaddr* sa, socklen_t len) noexcept {
  return ::bind(fd, sa, len);
}
inline int listen_fd(int fd, int backlog) noexcept {
  return ::listen(fd, backlog);
}
inline int shutdown_fd(int fd, int how) noexcept {
  return ::shutdown(fd, how);
}
inline int setsockopt_fd(int fd, int level, int opt, const void* v, socklen_t len) noexcept {
  return ::setsockopt(fd, level, opt, v, len);
}
inline int getsockopt_fd(int fd, int level, int opt, void* v, socklen_t* len) noexcept {
  return ::getsockopt(fd, level, opt, v, len);
}
inline int getsockname_fd(int fd, sockaddr* sa, socklen_t* len) noexcept {
  return ::getsockname(fd, sa, len);
}
inline int getpeername_fd(int fd, sockaddr* sa, socklen_t* len) noexcept {
  return ::getpeername(fd, sa, len);
}
#endif

}  // namespace stackless::net::detail::sys
