// getaddrinfo against Python's socket.getaddrinfo: localhost, numeric hosts, service names,
// failures (a gaierror naming the host), and the resolver threads: a lookup blocks only its
// tasklet, and a tasklet killed mid-lookup leaves at once while the thread finishes into memory
// it owns. Runs offline: nothing here needs a DNS server.
#ifndef _WIN32
#include <netdb.h>
#include <sys/socket.h>
#endif

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "net_helpers.hpp"
#include "resolver.hpp"

using namespace stackless;
using namespace std::chrono_literals;

namespace {

// gai_names(host): a predicate for a gaierror whose message names host.
auto gai_names(std::string host) {
  return [host](const net::gaierror& e) {
    BOOST_TEST_MESSAGE("got: " << e.what());
    return &e.code().category() == &net::gai_category() &&
           std::string(e.what()).find(host) != std::string::npos;
  };
}

bool has(const std::vector<net::addrinfo_entry>& v, const std::string& host, int port) {
  for (const auto& e : v)
    if (e.addr.host() == host && e.addr.port() == port) return true;
  return false;
}

// blocker: holds every lookup on its resolver thread until released.
struct blocker {
  std::atomic<int> entered{0};
  std::atomic<bool> released{false};
  blocker() {
    net::detail::set_resolver_hook([this] {
      ++entered;
      while (!released.load()) std::this_thread::sleep_for(1ms);
    });
  }
  ~blocker() {
    released = true;
    net::detail::set_resolver_hook({});
    BOOST_TEST(nett::wait_until([] { return net::detail::resolver_in_flight() == 0; }));
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Resolve, nett::net_clean)

BOOST_AUTO_TEST_CASE(localhost_resolves_to_a_loopback_address) {
  std::vector<net::addrinfo_entry> r;
  tasklet t([&] { r = net::getaddrinfo("localhost", 8080, net::af_unspec, net::sock_stream); });
  t();
  run();
  BOOST_REQUIRE(!r.empty());
  for (const auto& e : r) {
    BOOST_TEST_MESSAGE("localhost: " << e.addr);
    BOOST_TEST((e.addr.host() == "127.0.0.1" || e.addr.host() == "::1"));
    BOOST_TEST(e.addr.port() == 8080);
    BOOST_TEST(e.type == net::sock_stream);
    BOOST_TEST(e.family == e.addr.family());
  }
}

BOOST_AUTO_TEST_CASE(numeric_hosts_and_families) {
  auto v4 = net::getaddrinfo("127.0.0.1", 80, net::af_unspec, net::sock_stream);
  BOOST_REQUIRE(v4.size() == 1u);
  BOOST_TEST(v4[0].family == net::af_inet);
  BOOST_TEST(v4[0].addr == net::address("127.0.0.1", 80));
#ifdef _WIN32
  // Windows' resolver (and Wine's) leaves the protocol 0 when the hints give none.
  BOOST_TEST((v4[0].proto == net::ipproto_tcp || v4[0].proto == 0));
#else
  BOOST_TEST(v4[0].proto == net::ipproto_tcp);
#endif

  auto v6 = net::getaddrinfo("::1", 443, net::af_inet6, net::sock_dgram);
  BOOST_REQUIRE(v6.size() == 1u);
  BOOST_TEST(v6[0].addr == net::address("::1", 443));
  BOOST_TEST(v6[0].type == net::sock_dgram);

  // type 0: one entry per socket type (stream, datagram, raw), as Python lists them on POSIX;
  // Windows' resolver gives one entry of type 0 (so does Python there).
  auto any = net::getaddrinfo("127.0.0.1", 7);
#ifdef _WIN32
  BOOST_TEST(any.size() >= 1u);
#else
  BOOST_TEST(any.size() >= 2u);
#endif
  BOOST_TEST(has(any, "127.0.0.1", 7));

  // A v4 address asked as v6 only: EAI_ADDRFAMILY or EAI_NONAME depending on the libc.
  BOOST_CHECK_EXCEPTION(net::getaddrinfo("127.0.0.1", 80, net::af_inet6, 0, 0, net::ai_numerichost),
                        net::gaierror, gai_names("127.0.0.1"));
}

BOOST_AUTO_TEST_CASE(none_host_is_loopback_or_any_with_passive) {
  auto lo = net::getaddrinfo("", 9000, net::af_inet, net::sock_stream);
  BOOST_REQUIRE(!lo.empty());
  BOOST_TEST(lo[0].addr == net::address("127.0.0.1", 9000));
  auto any = net::getaddrinfo("", 9000, net::af_inet, net::sock_stream, 0, net::ai_passive);
  BOOST_REQUIRE(!any.empty());
  BOOST_TEST(any[0].addr == net::address("0.0.0.0", 9000));
  // Python's getaddrinfo(None, None) is an error (EAI_NONAME).
  BOOST_CHECK_EXCEPTION(net::getaddrinfo("", ""), net::gaierror, gai_names("None, None"));
}

BOOST_AUTO_TEST_CASE(port_as_a_service_name) {
  if (!::getservbyname("http", "tcp")) {
    BOOST_TEST_MESSAGE("no 'http' in the services database here: skipped");
    return;
  }
  auto r = net::getaddrinfo("127.0.0.1", "http", net::af_inet, net::sock_stream);
  BOOST_REQUIRE(r.size() == 1u);
  BOOST_TEST(r[0].addr.port() == 80);
  BOOST_TEST(net::getaddrinfo("127.0.0.1", "8081", net::af_inet, net::sock_stream)[0].addr.port() ==
             8081);
  BOOST_CHECK_EXCEPTION(
      net::getaddrinfo("127.0.0.1", "no-such-service-x", net::af_inet, net::sock_stream),
      net::gaierror, gai_names("no-such-service-x"));
}

BOOST_AUTO_TEST_CASE(invalid_names_raise_gaierror_naming_the_host) {
  // Deterministic offline: a name where only numeric hosts are allowed.
  BOOST_CHECK_EXCEPTION(
      net::getaddrinfo("nonexistent.invalid", 80, net::af_unspec, 0, 0, net::ai_numerichost),
      net::gaierror, gai_names("getaddrinfo(nonexistent.invalid, 80)"));
  // Through the real resolver: NONAME with a DNS server, AGAIN/FAIL without one; any of them is
  // a gaierror naming the host and saying why (gai_strerror).
  try {
    net::getaddrinfo("nonexistent.invalid", 80);
    BOOST_FAIL("nonexistent.invalid resolved");
  } catch (const net::gaierror& e) {
    BOOST_TEST_MESSAGE("got: " << e.what());
    BOOST_TEST(std::string(e.what()).find("nonexistent.invalid") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find(::gai_strerror(e.code().value())) != std::string::npos);
  }
  // A hostile length: refused, and the message stays short.
  try {
    net::getaddrinfo(std::string(100000, 'h'), 80, net::af_unspec, 0, 0, net::ai_numerichost);
    BOOST_FAIL("a 100,000-byte host resolved");
  } catch (const net::gaierror& e) {
    BOOST_TEST(std::string(e.what()).size() < 400u);
    BOOST_TEST(std::string(e.what()).find("(100000 bytes)") != std::string::npos);
  }
  BOOST_CHECK_THROW(net::getaddrinfo(std::string_view("a\0b", 3), 80), std::invalid_argument);
  BOOST_CHECK_THROW(net::getaddrinfo("localhost", std::string_view("8\0", 2)),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(create_connection_by_name) {
  net::socket srv = net::create_server(net::address("127.0.0.1", 0));
  const std::uint16_t port = srv.getsockname().port();
  std::string got;
  tasklet server([&] {
    auto [conn, peer] = srv.accept();
    got = conn.recv(100);
  });
  tasklet client([&] {
    // "localhost" may list ::1 first, where nobody listens: the next address is tried.
    net::socket c = net::create_connection("localhost", port, 5.0);
    BOOST_TEST(c.gettimeout().value_or(0) == 5.0);
    c.sendall("by name");
  });
  server();
  client();
  run();
  BOOST_TEST(got == "by name");
  // Every address refused: the last error, naming its address.
  net::socket closed = net::create_server(net::address("127.0.0.1", 0));
  const std::uint16_t dead = closed.getsockname().port();
  closed.close();
  BOOST_CHECK_EXCEPTION(net::create_connection("127.0.0.1", dead), std::system_error,
                        nett::errno_is(ECONNREFUSED, "127.0.0.1:" + std::to_string(dead)));
  BOOST_CHECK_EXCEPTION(net::create_connection("nonexistent.invalid", 80), net::gaierror,
                        gai_names("nonexistent.invalid"));
}

BOOST_AUTO_TEST_CASE(a_lookup_blocks_only_its_tasklet) {
  blocker b;
  bool resolved = false;
  int ticks = 0;
  tasklet looker([&] {
    auto r = net::getaddrinfo("127.0.0.1", 80, net::af_inet, net::sock_stream);
    resolved = r.size() == 1u;
  });
  tasklet other([&] {
    while (b.entered.load() == 0 || ticks < 20) {
      ++ticks;
      stackless::sleep(1ms);
    }
    b.released = true;  // only now may the lookup finish
  });
  looker();
  other();
  run();
  BOOST_TEST(resolved);
  BOOST_TEST(ticks >= 20);
}

BOOST_AUTO_TEST_CASE(many_lookups_at_once_all_complete) {
  // More than the resolver's thread limit (8): the rest queue.
  constexpr int kN = 40;
  int ok = 0;
  std::vector<tasklet> ts;
  for (int i = 0; i < kN; ++i) {
    ts.emplace_back([&ok, i] {
      auto r = net::getaddrinfo("127.0.0." + std::to_string(i + 1), static_cast<std::uint16_t>(i),
                                net::af_inet, net::sock_stream);
      if (r.size() == 1u && r[0].addr.port() == i) ++ok;
    });
    ts.back()();
  }
  run();
  BOOST_TEST(ok == kN);
}

BOOST_AUTO_TEST_CASE(killed_mid_lookup_leaves_at_once_and_frees_nothing_in_use) {
  // Under ASan this is the use-after-free check: the resolver thread writes its results after
  // the killed tasklet's frame is gone.
  // Lookups of earlier tests (their threads finish on their own) must not count here.
  BOOST_REQUIRE(nett::wait_until([] { return net::detail::resolver_in_flight() == 0; }));
  blocker b;
  bool killed = false;
  bool returned = false;
  tasklet looker([&] {
    try {
      net::getaddrinfo("localhost", "http");
      returned = true;
    } catch (const tasklet_exit&) {
      killed = true;
      throw;
    }
  });
  looker();
  BOOST_REQUIRE(nett::wait_until([&] { return b.entered.load() == 1; }));
  BOOST_TEST(looker.alive());
  looker.kill();
  // It ends once its recv on the notification socket is cancelled (the poll tasklet reports
  // that), while the resolver thread is still inside the hook: it does not wait for the lookup.
  BOOST_REQUIRE(nett::wait_until([&] { return !looker.alive(); }));
  BOOST_TEST(b.released.load() == false);
  BOOST_TEST(killed);
  BOOST_TEST(!returned);
  BOOST_TEST(net::detail::resolver_in_flight() == 1u);
  // ~blocker releases the thread and waits until it has dropped the lookup.
}

BOOST_AUTO_TEST_CASE(thrown_into_mid_lookup_then_a_new_lookup_works) {
  blocker b;
  std::string caught;
  tasklet looker([&] {
    try {
      net::getaddrinfo("127.0.0.1", 1);
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
    b.released = true;
    auto r = net::getaddrinfo("127.0.0.1", 2, net::af_inet, net::sock_stream);
    BOOST_TEST(r.at(0).addr.port() == 2);
  });
  looker();
  BOOST_REQUIRE(nett::wait_until([&] { return b.entered.load() == 1; }));
  looker.throw_exception(std::make_exception_ptr(std::runtime_error("stop looking")));
  run();
  BOOST_TEST(caught == "stop looking");
  BOOST_TEST(!looker.alive());
}

BOOST_AUTO_TEST_SUITE_END()
