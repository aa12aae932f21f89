// stackless::net: sockets on the poll tasklet, reading like Python's socket module (and
// Stackless's stacklesssocket): every blocking call blocks only the calling tasklet, so a server
// is one tasklet per connection written as plain sequential code.
//
//   net::socket srv = net::create_server(net::address("127.0.0.1", 0));
//   auto [conn, peer] = srv.accept();            // blocks this tasklet only
//   for (std::string d; !(d = conn.recv(4096)).empty();) conn.sendall(d);   // "" is EOF
//
// Linux: io_uring, or the thread-pool backend's epoll readiness path; Windows: IOCP (AcceptEx,
// ConnectEx, WSARecv/WSASend, WSARecvFrom/WSASendTo). See docs/net.md. On Windows this header
// does not include Winsock (whose <windows.h> defines macros such as `far`, `min` and `max`):
// the constants below have Winsock's values, checked against it in net.cpp; include
// <winsock2.h> for SOL_SOCKET, TCP_NODELAY, MSG_PEEK and the like. The library needs ws2_32.
//
// Errors: std::system_error whose code is the errno (ECONNREFUSED, ECONNRESET, EPIPE, ...) and
// whose message names the call and the address (the peer's for connect/recv/send, the local one
// for bind/listen/accept), e.g. "stackless::net::connect to 127.0.0.1:1: Connection refused".
// On Windows too the value is an errno (Winsock's code translated) but the category is the
// library's own: compare with std::errc (e.code() == std::errc::connection_refused).
// A call on a closed or moved-from socket is EBADF "socket is closed". A socket with a timeout
// raises stackless::timeout_error (<stackless/sync.hpp>); a non-blocking socket (timeout 0)
// raises system_error EAGAIN (Python's BlockingIOError) when the call would block; EOF is an
// empty recv(). A socket belongs to the thread that made it: every call from another thread
// throws stackless::wrong_thread_error.
//
// Rules (the same as io::file's, docs/io.md): a kill or a timeout cancels an operation exactly:
// it is either not performed at all, or performed and its result kept: bytes a killed or timed
// out recv took are returned by the next recv, a datagram by the next recvfrom, a connection by
// the next accept. Closing or destroying a socket cancels what other tasklets have in flight on
// it and wakes each of them with EBADF "socket is closed"; no kernel operation writes into
// freed memory. Calls of one kind are served one at a time in FIFO order per socket (receives:
// recv, recv_into, recvfrom, accept; sends: send, sendall, sendto, connect), so two tasklets
// may receive from and send to one socket concurrently and sendall()s never interleave.
#pragma once

#ifndef _WIN32
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "stackless/sync.hpp"  // timeout_error

#ifdef _WIN32
struct sockaddr;  // Winsock's, declared where a program includes <winsock2.h>
#endif

namespace stackless::net {

#ifdef _WIN32
// Winsock's values (net.cpp static_asserts them).
using native_socklen_t = int;  // Winsock's socklen_t
inline constexpr int af_inet = 2;
inline constexpr int af_inet6 = 23;
inline constexpr int af_unix = 1;
inline constexpr int af_unspec = 0;
inline constexpr int sock_stream = 1;
inline constexpr int sock_dgram = 2;
inline constexpr int shut_rd = 0;    // SD_RECEIVE
inline constexpr int shut_wr = 1;    // SD_SEND
inline constexpr int shut_rdwr = 2;  // SD_BOTH
inline constexpr int ipproto_tcp = 6;
inline constexpr int ipproto_udp = 17;
inline constexpr int ai_passive = 0x1;
inline constexpr int ai_canonname = 0x2;
inline constexpr int ai_numerichost = 0x4;
inline constexpr int ai_numericserv = 0x8;
inline constexpr int ai_v4mapped = 0x800;
inline constexpr int ai_all = 0x100;
inline constexpr int ai_addrconfig = 0x400;
#else
using native_socklen_t = socklen_t;
// Python's constants (socket.AF_INET, ...), as the platform's values.
inline constexpr int af_inet = AF_INET;
inline constexpr int af_inet6 = AF_INET6;
inline constexpr int af_unix = AF_UNIX;
inline constexpr int af_unspec = AF_UNSPEC;
inline constexpr int sock_stream = SOCK_STREAM;
inline constexpr int sock_dgram = SOCK_DGRAM;
inline constexpr int shut_rd = SHUT_RD;
inline constexpr int shut_wr = SHUT_WR;
inline constexpr int shut_rdwr = SHUT_RDWR;
inline constexpr int ipproto_tcp = IPPROTO_TCP;
inline constexpr int ipproto_udp = IPPROTO_UDP;
// getaddrinfo() flags (socket.AI_*).
inline constexpr int ai_passive = AI_PASSIVE;
inline constexpr int ai_canonname = AI_CANONNAME;
inline constexpr int ai_numerichost = AI_NUMERICHOST;
inline constexpr int ai_numericserv = AI_NUMERICSERV;
inline constexpr int ai_v4mapped = AI_V4MAPPED;
inline constexpr int ai_all = AI_ALL;
inline constexpr int ai_addrconfig = AI_ADDRCONFIG;
#endif

// address: a socket address, Python's (host, port) tuple or a Unix socket path.
class address {
 public:
  // address(): empty (family 0): what recvfrom() reports on a connected stream socket.
  address() noexcept = default;
  // address(host, port): an IPv4 or IPv6 address. host is numeric ("127.0.0.1", "::1",
  // "fe80::1%2" is refused), "" (IPv4 any address, as Python's ''), "localhost" (127.0.0.1) or
  // "::" . No name resolution (see getaddrinfo()): any other name throws
  // std::invalid_argument naming it.
  address(std::string_view host, std::uint16_t port);
  // unix_path(path): a Unix socket path; a leading '@' names an abstract socket (Linux). Throws
  // std::invalid_argument when the path does not fit sun_path (107 bytes) or holds a NUL. On
  // Windows always std::invalid_argument (Unix sockets are not supported there; docs/net.md).
  static address unix_path(std::string_view path);
  // from_native(sa, len): wraps a sockaddr the kernel returned.
  static address from_native(const sockaddr* sa, native_socklen_t len);

  // family(): the address family (the sockaddr's first 16 bits on both systems).
  int family() const noexcept {
    if (!len_) return 0;
    std::uint16_t f;
    std::memcpy(&f, &ss_, sizeof f);
    return f;
  }
  // host(), port(): for IPv4/IPv6 ("" and 0 otherwise). path(): for Unix ("@name" if abstract).
  std::string host() const;
  std::uint16_t port() const noexcept;
  std::string path() const;
  // str(): "127.0.0.1:80", "[::1]:80", "/tmp/s", "@name", "" (empty), "(unnamed)".
  std::string str() const;

  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&ss_); }
  native_socklen_t native_size() const noexcept { return len_; }
  friend bool operator==(const address& a, const address& b) noexcept;
  friend std::ostream& operator<<(std::ostream& os, const address& a);  // writes str()

 private:
#ifdef _WIN32
  struct storage {  // sockaddr_storage's size and alignment (net.cpp checks them)
    alignas(8) unsigned char bytes[128];
  };
  storage ss_{};
#else
  sockaddr_storage ss_{};
#endif
  native_socklen_t len_ = 0;
};

namespace detail {
struct socket_impl;
struct socket_release {
  void operator()(socket_impl* s) const noexcept;
};
struct socket_file_state;
}  // namespace detail

class socket_file;

class socket {
 public:
  // socket(): a closed socket.
  socket() noexcept;
  // socket(family, type, proto): af_inet/af_inet6/af_unix, sock_stream/sock_dgram. Throws
  // system_error (EAFNOSUPPORT, EMFILE, ...) naming the family and type. Blocking (no timeout).
  explicit socket(int family, int type = sock_stream, int proto = 0);
  socket(socket&&) noexcept;
  socket& operator=(socket&&) noexcept;
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  // ~socket() closes it as close() does; never throws.
  ~socket();

  // bind(addr), listen(backlog): plain system calls (never block). backlog < 0 is 0; above
  // SOMAXCONN the kernel caps it.
  void bind(const address& addr);
  void listen(int backlog = 128);
  // accept(): the next connection and its peer's address. The new socket is blocking.
  std::pair<socket, address> accept();
  // connect(addr) raises on failure; connect_ex(addr) returns the errno instead (0: connected;
  // ETIMEDOUT when the socket's timeout passed; EINPROGRESS when non-blocking). After a failed
  // or timed-out connect the socket's state is unspecified: close it (as in Python).
  void connect(const address& addr);
  int connect_ex(const address& addr);

  // recv(bufsize): up to bufsize bytes ("" at EOF, or when bufsize is 0). A datagram socket
  // returns one datagram, truncated to bufsize. At most 1 MiB per call whatever bufsize says
  // (memory grows with what arrives, not with bufsize).
  std::string recv(std::size_t bufsize, int flags = 0);
  // recv_into(buf): recv into buf; returns the bytes received (0 at EOF or for an empty buf).
  std::size_t recv_into(std::span<std::byte> buf, int flags = 0);
  std::size_t recv_into(std::span<char> buf, int flags = 0) {
    return recv_into(std::as_writable_bytes(buf), flags);
  }
  // recvfrom(bufsize): recv() and the sender's address (empty for a connected stream).
  std::pair<std::string, address> recvfrom(std::size_t bufsize, int flags = 0);
  // send(data): sends some of data (all of it for a datagram); returns how much. Never raises
  // SIGPIPE: a closed peer is system_error EPIPE. Empty data sends nothing on a stream (an
  // empty datagram on a datagram socket).
  std::size_t send(std::string_view data, int flags = 0);
  std::size_t send(std::span<const std::byte> data, int flags = 0);
  // sendall(data): sends all of data. The socket's timeout bounds the whole call (Python 3.5+);
  // a timeout or error says how many of the bytes were sent ("sent 65536 of 1048576 bytes").
  void sendall(std::string_view data, int flags = 0);
  // sendto(data, addr): one datagram to addr; returns its size.
  std::size_t sendto(std::string_view data, const address& addr, int flags = 0);
  // shutdown(how): shut_rd, shut_wr or shut_rdwr (the peer sees EOF after shut_wr).
  void shutdown(int how);
  // close(): cancels what other tasklets have in flight on the socket (they raise EBADF), waits
  // until the kernel is done with it, and closes the descriptor. Closing again does nothing.
  void close();
  bool closed() const noexcept;

  // settimeout(): nullopt blocks without limit (Python's None), 0 makes the socket
  // non-blocking, a positive value makes each call raise timeout_error after that long.
  // Negative or NaN seconds throw std::invalid_argument. Inherited by nothing (accept()
  // returns blocking sockets, as Python without a default timeout).
  void settimeout(std::optional<double> seconds);
  std::optional<double> gettimeout() const;
  // setblocking(true) = settimeout(nullopt); setblocking(false) = settimeout(0).
  void setblocking(bool flag);
  bool getblocking() const;

  // setsockopt/getsockopt with an int value (SO_REUSEADDR, TCP_NODELAY, SO_RCVBUF, ...).
  void setsockopt(int level, int option, int value);
  int getsockopt(int level, int option) const;
  address getsockname() const;
  address getpeername() const;
  // fileno(): the descriptor (-1 when closed); family(), type(): as given to the constructor.
  // On Windows the SOCKET's value, as Python's fileno() there (socket handles are kernel handles,
  // whose value fits 32 bits; (SOCKET)(intptr_t)fileno() is the SOCKET).
  int fileno() const noexcept;
  int family() const noexcept;
  int type() const noexcept;

  // makefile(mode, buffering, max_line): a buffered stream over this socket (Python's
  // socket.makefile), for readline(). mode: "r", "w" or "rw" (a 'b' is accepted and changes
  // nothing: the stream moves bytes); anything else throws std::invalid_argument. buffering:
  // negative the default (8 KiB), 0 unbuffered (writes go out at once; reads take one byte at a
  // time, so nothing past a line is consumed), 1 line-buffered writes, N > 1 a buffer of N
  // bytes. max_line (> 0, else std::invalid_argument) caps readline() without an argument: a
  // hostile peer cannot make it allocate more than about max_line + the buffer size.
  socket_file makefile(std::string_view mode = "r", int buffering = -1,
                       std::size_t max_line = 65536);

 private:
  friend class socket_file;
  explicit socket(std::unique_ptr<detail::socket_impl, detail::socket_release> p) noexcept;
  detail::socket_impl& live(const char* op) const;
  std::unique_ptr<detail::socket_impl, detail::socket_release> impl_;
};

// socket_file: what socket::makefile() returns. It refers to the socket without owning it:
// the socket must stay open while the file is used (a call after the socket was closed raises
// EBADF "socket is closed"), and closing the file flushes it but leaves the socket open.
//
// Timeouts: the socket's timeout bounds each whole call (as sendall() does), not each recv, so
// a server that sets one cuts off a slow-loris client that trickles a line a byte at a time.
// A timeout, a kill or an error loses nothing: bytes received stay buffered for the next read,
// and unsent buffered bytes stay buffered for the next flush (a write() whose flush fails
// throws that error with its data already buffered: call flush() to retry, not write()). Calls on
// one file are served one whole call at a time (FIFO). Errors are those of recv()/send()
// (system_error naming the address, timeout_error), EBADF "file is closed" after close(), and EBADF
// "file not open for reading/writing".
class socket_file {
 public:
  socket_file() noexcept;
  socket_file(socket_file&&) noexcept;
  socket_file& operator=(socket_file&&) noexcept;
  socket_file(const socket_file&) = delete;
  socket_file& operator=(const socket_file&) = delete;
  // ~socket_file() flushes what is buffered (errors go to stderr; nothing is flushed while an
  // exception unwinds, or on another thread: then the unsent bytes are dropped, and stderr
  // says how many).
  ~socket_file();

  // readline(limit): the next line including its '\n'; "" at EOF. At most limit bytes (default:
  // max_line): a longer line is returned in pieces of `limit` bytes, the last one ending in
  // '\n' (Python's readline(size)); a line cut by EOF is returned without it. limit 0: "".
  std::string readline(std::optional<std::size_t> limit = std::nullopt);
  // read(n): n bytes; fewer only at EOF ("" at EOF or for n = 0). Memory grows with the data.
  std::string read(std::size_t n);
  // write(data): buffers data (sending when the buffer is full, at a '\n' when line-buffered,
  // at once when unbuffered); returns data.size().
  std::size_t write(std::string_view data);
  // flush(): sends everything buffered.
  void flush();
  // close(): flushes, then closes the file (not the socket); closing again does nothing. The
  // file is closed even when the flush fails (that error is thrown; the bytes are dropped).
  void close();
  bool closed() const noexcept;
  std::size_t max_line() const noexcept;

 private:
  friend class socket;
  explicit socket_file(std::shared_ptr<detail::socket_file_state> st) noexcept;
  std::shared_ptr<detail::socket_file_state> st_;
};

// create_connection(addr, timeout): a connected TCP socket (the timeout applies to the connect
// and stays set on the socket, as in Python).
socket create_connection(const address& addr, std::optional<double> timeout = std::nullopt);
// create_connection(host, port, timeout): Python's create_connection((host, port), timeout):
// resolves host with getaddrinfo() (any family, stream sockets) and tries each address in
// order, each connect with the timeout, until one succeeds. Throws gaierror when the name does
// not resolve, otherwise the last address's error (each names its address).
socket create_connection(std::string_view host, std::uint16_t port,
                         std::optional<double> timeout = std::nullopt);
// create_server(addr, backlog, reuse_port): a bound, listening stream socket (SO_REUSEADDR on
// POSIX, as Python's create_server; SO_REUSEPORT when asked). Unix paths work too.
socket create_server(const address& addr, int backlog = 128, bool reuse_port = false);

// ---- name resolution ---------------------------------------------------------------------

// gai_category(): getaddrinfo's error codes (EAI_NONAME, EAI_AGAIN, ...; negative on glibc);
// message() is gai_strerror's text.
const std::error_category& gai_category() noexcept;

// gaierror: a failed lookup (Python's socket.gaierror). code() is in gai_category(); what()
// names the host and the service and ends with gai_strerror's text, e.g.
// "stackless::net::getaddrinfo(nonexistent.invalid, 80): Name or service not known".
// EAI_SYSTEM is reported as a plain std::system_error carrying the errno instead.
class gaierror : public std::system_error {
 public:
  using std::system_error::system_error;
};

// addrinfo_entry: one result of getaddrinfo(), Python's (family, type, proto, canonname,
// sockaddr) tuple. canonname is set on the first entry only, and only with ai_canonname.
struct addrinfo_entry {
  int family = 0;
  int type = 0;
  int proto = 0;
  std::string canonname;
  address addr;
};

// getaddrinfo(host, port, family, type, proto, flags): Python's socket.getaddrinfo. host is a
// name or a numeric address ("" is Python's None: the loopback address, or the any address
// with ai_passive); port is a number or a service name ("http"; "" is None: port 0). family
// af_unspec (0) means any; type 0 any (each address then comes once per socket type).
//
// The system's resolver blocks, so the lookup runs on a resolver thread (at most 8, started on
// demand, each ending after 2 s idle) and only the calling tasklet waits, on the poll tasklet
// (whichever io backend is active). A kill or throw wakes it at once: the lookup finishes on
// its thread into memory it shares with nobody, and the result is dropped. A NUL in host or
// port throws std::invalid_argument; a failed lookup gaierror. A tasklet that may not block
// (a block trap) gets block_trap_error as for any socket call.
std::vector<addrinfo_entry> getaddrinfo(std::string_view host, std::string_view port,
                                        int family = af_unspec, int type = 0, int proto = 0,
                                        int flags = 0);
std::vector<addrinfo_entry> getaddrinfo(std::string_view host, std::uint16_t port,
                                        int family = af_unspec, int type = 0, int proto = 0,
                                        int flags = 0);

}  // namespace stackless::net
