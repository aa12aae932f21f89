// Helpers shared by the net tests: the clean fixture, connected pairs over loopback, polling
// waits, and predicates for the errors the sockets raise.
#pragma once

#ifdef _WIN32
// clang-format off
#include <winsock2.h>  // SOL_SOCKET, MSG_PEEK, ... (net.hpp does not include Winsock)
#include <ws2tcpip.h>
// clang-format on
#endif

#include <stackless/net.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>

#include "fixture.hpp"
#include "wait.hpp"

namespace nett {

extern std::filesystem::path g_dir;

// net_clean: clean_scheduler plus "no io op or timer in flight" on entry and exit.
struct net_clean : clean_scheduler {
  net_clean() { BOOST_CHECK_EQUAL(stackless::io::pending_operations(), 0u); }
  ~net_clean() { BOOST_CHECK_EQUAL(stackless::io::pending_operations(), 0u); }
};

using testwait::wait_until;

#ifdef _WIN32
// under_wine(): Wine's ntdll exports wine_get_version (for the few places where Wine's sockets
// differ from Windows').
inline bool under_wine() {
  const HMODULE ntdll = ::GetModuleHandleA("ntdll.dll");
  return ntdll && ::GetProcAddress(ntdll, "wine_get_version");
}
#endif

// listener(): a TCP server socket on 127.0.0.1 and an ephemeral port.
inline stackless::net::socket listener() {
  return stackless::net::create_server(stackless::net::address("127.0.0.1", 0));
}

// tcp_pair(): a connected (client, server side) pair over loopback, made from main: the
// connect completes in the kernel's backlog before accept() runs.
inline std::pair<stackless::net::socket, stackless::net::socket> tcp_pair() {
  using namespace stackless;
  net::socket srv = listener();
  net::socket c = net::create_connection(srv.getsockname());
  auto [s, peer] = srv.accept();
  return {std::move(c), std::move(s)};
}

// errno_is(code, text): a BOOST_CHECK_EXCEPTION predicate for system_error with that errno
// whose message contains text (the operation and address).
inline auto errno_is(int code, std::string text = {}) {
  return [code, text](const std::system_error& e) {
    BOOST_TEST_MESSAGE("got: " << e.what());
    return e.code() == std::error_condition(code, std::generic_category()) &&
           std::string(e.what()).find(text) != std::string::npos;
  };
}

// recv_exactly(s, n): reads until n bytes or EOF.
inline std::string recv_exactly(stackless::net::socket& s, std::size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string d = s.recv(n - out.size());
    if (d.empty()) break;
    out += d;
  }
  return out;
}

// send_now(s, data) / sendto_now / connect_now: the call made without blocking the calling
// tasklet (non-blocking mode for the call), so that a test can complete another tasklet's
// operation without letting that tasklet run.
inline void send_now(stackless::net::socket& s, std::string_view data) {
  s.setblocking(false);
  BOOST_REQUIRE(s.send(data) == data.size());
  s.setblocking(true);
}
inline void sendto_now(stackless::net::socket& s, std::string_view data,
                       const stackless::net::address& to) {
  s.setblocking(false);
  BOOST_REQUIRE(s.sendto(data, to) == data.size());
  s.setblocking(true);
}
inline stackless::net::socket connect_now(const stackless::net::address& to) {
  stackless::net::socket c(to.family());
  c.setblocking(false);
  const int r = c.connect_ex(to);
  BOOST_REQUIRE((r == 0 || r == EINPROGRESS));
  c.setblocking(true);
  return c;
}

}  // namespace nett
