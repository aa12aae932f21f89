// stackless::net::address: socket addresses (IPv4, IPv6, Unix paths), parsed and printed as
// Python's socket module does. No I/O here; the sockets are in net.cpp.
#ifndef _WIN32
#include <arpa/inet.h>
#include <sys/un.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "net_sys.hpp"  // Winsock on Windows
#include "stackless/net.hpp"

namespace stackless::net {

address::address(std::string_view host, std::uint16_t port) {
  std::string h(host);
  if (h.empty()) h = "0.0.0.0";
  if (h == "localhost") h = "127.0.0.1";
  if (h.find('\0') == std::string::npos) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss_);
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(port);
      len_ = sizeof(sockaddr_in);
      return;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss_);
    if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(port);
      len_ = sizeof(sockaddr_in6);
      return;
    }
  }
  ss_ = {};
  throw std::invalid_argument("stackless::net::address: '" + std::string(host) +
                              "' is not a numeric IPv4 or IPv6 address (no name resolution)");
}

address address::unix_path(std::string_view path) {
#ifdef _WIN32
  throw std::invalid_argument("stackless::net::address::unix_path: '" + std::string(path) +
                              "': Unix sockets are not supported on Windows");
#else
  address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.ss_);
  const bool abstract = !path.empty() && path.front() == '@';
  if (path.size() >= sizeof un->sun_path || path.find('\0') != std::string_view::npos) {
    throw std::invalid_argument(
        "stackless::net::address::unix_path: '" + std::string(path) + "': " +
        (path.size() >= sizeof un->sun_path ? "longer than 107 bytes" : "embedded null byte"));
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  if (abstract) un->sun_path[0] = '\0';
  // An abstract name's length is exact; a path carries its terminating NUL.
  a.len_ =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return a;
#endif
}

address address::from_native(const sockaddr* sa, native_socklen_t len) {
  address a;
  len = std::min<socklen_t>(len, sizeof a.ss_);
  std::memcpy(&a.ss_, sa, len);
  a.len_ = len;
  return a;
}

std::string address::host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
  else if (family() == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf, sizeof buf);
  return buf;
}

std::uint16_t address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
  return 0;
}

std::string address::path() const {
#ifdef _WIN32
  return {};
#else
  if (family() != AF_UNIX) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(&ss_);
  const std::size_t n = len_ - offsetof(sockaddr_un, sun_path);
  if (n == 0) return {};
  if (un->sun_path[0] == '\0') {
    std::string abstract(1, '@');  // (not "@" + string: a GCC 12 -Wrestrict false positive)
    abstract.append(un->sun_path + 1, n - 1);
    return abstract;
  }
  return std::string(un->sun_path, strnlen(un->sun_path, n));
#endif
}

std::string address::str() const {
  switch (family()) {
    case AF_INET:
      return host() + ":" + std::to_string(port());
    case AF_INET6: {
      std::string s(1, '[');  // (not "[" + string: a GCC 12 -Wrestrict false positive)
      s += host();
      s += "]:";
      s += std::to_string(port());
      return s;
    }
    case AF_UNIX: {
      std::string p = path();
      return p.empty() ? "(unnamed)" : p;
    }
    default:
      return {};
  }
}

std::ostream& operator<<(std::ostream& os, const address& a) {
  return os << a.str();
}

bool operator==(const address& a, const address& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.ss_, &b.ss_, a.len_) == 0;
}
}  // namespace stackless::net
