// socket::makefile against Python's socket.makefile: readline with a limit (a hostile peer's
// endless line is returned in limit-sized pieces), read(n), write buffering, and the rules: a
// timeout bounds the whole call (a slow loris is cut off), and a timeout or a kill loses nothing.
#ifndef _WIN32
#include <sys/socket.h>
#endif

#include <chrono>
#include <string>
#include <thread>

#include "net_helpers.hpp"

using namespace stackless;
using namespace std::chrono_literals;
using nett::errno_is;

namespace {

// peer_has(s): bytes waiting on s right now ("" if none), without blocking.
std::string peer_has(net::socket& s) {
  s.setblocking(false);
  std::string got;
  try {
    for (std::string d; !(d = s.recv(65536)).empty();) got += d;
  } catch (const std::system_error& e) {
    BOOST_REQUIRE(e.code().value() == EAGAIN);
  }
  s.setblocking(true);
  return got;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Makefile, nett::net_clean)

BOOST_AUTO_TEST_CASE(readline_splits_lines_whatever_the_segments) {
  auto [c, s] = nett::tcp_pair();
  net::socket_file f = s.makefile("rb");
  std::vector<std::string> lines;
  tasklet reader([&] {
    for (std::string l; !(l = f.readline()).empty();) lines.push_back(l);
  });
  reader();
  for (const char* part : {"one\ntw", "o\n", "", "three", "\nfour\nlast"}) {
    c.sendall(part);
    stackless::schedule();
  }
  c.shutdown(net::shut_wr);
  run();
  const std::vector<std::string> want = {"one\n", "two\n", "three\n", "four\n", "last"};
  BOOST_TEST(lines == want, boost::test_tools::per_element());
  BOOST_TEST(f.readline() == "");  // EOF stays EOF
}

BOOST_AUTO_TEST_CASE(readline_limit_is_pythons) {
  auto [c, s] = nett::tcp_pair();
  net::socket_file f = s.makefile("r");
  c.sendall("abcdef\nxy\n");
  BOOST_TEST(f.readline(3) == "abc");
  BOOST_TEST(f.readline(3) == "def");
  BOOST_TEST(f.readline(3) == "\n");
  BOOST_TEST(f.readline(0) == "");
  BOOST_TEST(f.readline(100) == "xy\n");
}

BOOST_AUTO_TEST_CASE(a_hostile_endless_line_is_capped_by_max_line) {
  auto [c, s] = nett::tcp_pair();
  net::socket_file f = s.makefile("r", -1, 1024);
  BOOST_TEST(f.max_line() == 1024u);
  std::size_t total = 0;
  bool capped = true;
  tasklet flood([&, &c = c] {
    const std::string chunk(64 * 1024, 'A');
    for (int i = 0; i < 16; ++i) c.sendall(chunk);  // 1 MiB, no newline
    c.sendall("\n");
    c.shutdown(net::shut_wr);
  });
  tasklet reader([&] {
    for (std::string l; !(l = f.readline()).empty();) {
      capped = capped && l.size() <= 1024;
      total += l.size();
    }
  });
  flood();
  reader();
  run();
  BOOST_TEST(capped);
  BOOST_TEST(total == 16u * 64 * 1024 + 1);
}

BOOST_AUTO_TEST_CASE(read_n_waits_for_n_bytes_or_eof) {
  auto [c, s] = nett::tcp_pair();
  net::socket_file f = s.makefile("r", 4);
  std::string a, b;
  tasklet reader([&] {
    a = f.read(10);
    b = f.read(10);
  });
  reader();
  c.sendall("0123");
  stackless::schedule();
  c.sendall("456789ab");
  c.shutdown(net::shut_wr);
  run();
  BOOST_TEST(a == "0123456789");
  BOOST_TEST(b == "ab");
  BOOST_TEST(f.read(0) == "");
  BOOST_TEST(f.read(5) == "");
}

BOOST_AUTO_TEST_CASE(write_buffering_full_line_and_unbuffered) {
  auto [c, s] = nett::tcp_pair();
  {
    net::socket_file f = s.makefile("w", 8);
    BOOST_TEST(f.write("abc") == 3u);
    BOOST_TEST(peer_has(c) == "");  // buffered
    f.write("defgh");               // 8 bytes: the buffer is full
    BOOST_TEST(peer_has(c) == "abcdefgh");
    f.write("i");
    f.flush();
    BOOST_TEST(peer_has(c) == "i");
    f.write("j");
  }  // ~socket_file flushes
  BOOST_TEST(peer_has(c) == "j");
  net::socket_file line = s.makefile("w", 1);
  line.write("no newline");
  BOOST_TEST(peer_has(c) == "");
  line.write(" yet\n");
  BOOST_TEST(peer_has(c) == "no newline yet\n");
  net::socket_file raw = s.makefile("wb", 0);
  raw.write("x");
  BOOST_TEST(peer_has(c) == "x");
  line.close();
  BOOST_TEST(line.closed());
}

BOOST_AUTO_TEST_CASE(unbuffered_readline_leaves_the_rest_in_the_socket) {
  auto [c, s] = nett::tcp_pair();
  c.sendall("HEAD\nbody bytes");
  net::socket_file f = s.makefile("r", 0);
  BOOST_TEST(f.readline() == "HEAD\n");
  BOOST_TEST(nett::recv_exactly(s, 10) == "body bytes");
}

BOOST_AUTO_TEST_CASE(bad_arguments_and_wrong_mode) {
  auto [c, s] = nett::tcp_pair();
  for (const char* mode : {"", "a", "rr", "r+", "bb", "b", "rwx"})
    BOOST_CHECK_THROW(s.makefile(mode), std::invalid_argument);
  BOOST_CHECK_THROW(s.makefile("r", -1, 0), std::invalid_argument);
  net::socket_file r = s.makefile("r");
  net::socket_file w = s.makefile("w");
  BOOST_CHECK_EXCEPTION(r.write("x"), std::system_error,
                        errno_is(EBADF, "write: file not open for writing"));
  BOOST_CHECK_EXCEPTION(w.readline(), std::system_error,
                        errno_is(EBADF, "readline: file not open for reading"));
  r.close();
  r.close();
  BOOST_CHECK_EXCEPTION(r.readline(), std::system_error, errno_is(EBADF, "file is closed"));
  net::socket_file none;
  BOOST_TEST(none.closed());
  BOOST_CHECK_EXCEPTION(none.read(1), std::system_error, errno_is(EBADF, "file is closed"));
  s.close();
  BOOST_CHECK_EXCEPTION(s.makefile(), std::system_error, errno_is(EBADF, "socket is closed"));
  BOOST_CHECK_EXCEPTION(w.write("x"), std::system_error, errno_is(EBADF, "socket is closed"));
}

BOOST_AUTO_TEST_CASE(the_socket_destroyed_first_leaves_a_file_that_says_so) {
  auto [c, s] = nett::tcp_pair();
  net::socket_file f = s.makefile("rw");
  f.write("unsent");
  { net::socket gone(std::move(s)); }
  BOOST_CHECK_EXCEPTION(f.readline(), std::system_error, errno_is(EBADF, "socket is closed"));
  BOOST_CHECK_EXCEPTION(f.close(), std::system_error, errno_is(EBADF, "socket is closed"));
  BOOST_TEST(f.closed());
}

BOOST_AUTO_TEST_CASE(a_timeout_bounds_the_whole_readline_and_loses_nothing) {
  auto [c, s] = nett::tcp_pair();
  s.settimeout(0.3);
  net::socket_file f = s.makefile("r");
  int sent = 0;
  bool timed_out = false;
  std::string line;
  tasklet reader([&, &s = s] {
    try {
      f.readline();
    } catch (const timeout_error& e) {
      BOOST_TEST_MESSAGE("got: " << e.what());
      timed_out = true;
    }
    s.settimeout(std::nullopt);
    line = f.readline();  // the bytes the timed-out call had received are still there
  });
  tasklet trickle([&, &c = c] {
    // Every byte arrives well within 0.3 s of the last: a per-recv timeout would never fire.
    while (!timed_out && sent < 200) {
      c.sendall("x");
      ++sent;
      stackless::sleep(20ms);
    }
    c.sendall("\n");
  });
  reader();
  trickle();
  run();
  BOOST_TEST(timed_out);
  BOOST_TEST(sent < 100);
  BOOST_TEST(line == std::string(static_cast<std::size_t>(sent), 'x') + "\n");
}

BOOST_AUTO_TEST_CASE(slow_loris_on_readline_is_cut_off_by_the_server_timeout) {
  net::socket srv = nett::listener();
  bool cut_off = false, client_saw_close = false;
  int sent = 0;
  tasklet server([&] {
    auto [conn, peer] = srv.accept();
    conn.settimeout(0.3);  // the whole request line, however it trickles in
    net::socket_file f = conn.makefile("rw", -1, 8192);
    try {
      f.readline();
    } catch (const timeout_error&) {
      cut_off = true;
    }
  });  // conn closes
  tasklet client([&] {
    net::socket c = net::create_connection(srv.getsockname());
    try {
      for (; sent < 500; ++sent) {
        c.sendall("G");
        stackless::sleep(20ms);
      }
    } catch (const std::system_error& e) {
      client_saw_close = e.code().value() == EPIPE || e.code().value() == ECONNRESET;
    }
  });
  server();
  client();
  run();
  BOOST_TEST(cut_off);
  BOOST_TEST(client_saw_close);
  BOOST_TEST(sent < 100);
}

BOOST_AUTO_TEST_CASE(a_killed_readline_loses_nothing) {
  auto [c, s] = nett::tcp_pair();
  net::socket_file f = s.makefile("r", 4);
  tasklet victim([&] { f.readline(); });
  victim();
  c.sendall("part");  // received into the file's buffer (no newline yet), or still in flight
  for (int i = 0; i < 20; ++i) {
    stackless::schedule();
    std::this_thread::sleep_for(1ms);
  }
  victim.kill();  // either way, nothing is lost
  BOOST_REQUIRE(nett::wait_until([&] { return !victim.alive(); }));
  c.sendall("ial line\nnext\n");
  BOOST_TEST(f.readline() == "partial line\n");
  BOOST_TEST(f.readline() == "next\n");
}

BOOST_AUTO_TEST_CASE(the_file_handle_destroyed_while_a_call_waits) {
  auto [c, s] = nett::tcp_pair();
  auto f = std::make_unique<net::socket_file>(s.makefile("r"));
  std::string got;
  tasklet reader([&, fp = f.get()] { got = fp->readline(); });
  reader();
  stackless::schedule();
  net::socket_file moved = std::move(*f);
  f.reset();
  moved = net::socket_file();  // the last handle: the call in progress keeps the state
  c.sendall("still here\n");
  run();
  BOOST_TEST(got == "still here\n");
}

BOOST_AUTO_TEST_CASE(another_thread_is_refused_and_its_destructor_sends_nothing) {
  auto [c, s] = nett::tcp_pair();
  net::socket_file f = s.makefile("rw");
  f.write("buffered");
  int refused = 0;
  std::thread other([&] {
    // Boost.Test is not thread-safe: counted here, checked on the main thread.
    try {
      f.readline();
    } catch (const wrong_thread_error&) {
      ++refused;
    }
    try {
      f.flush();
    } catch (const wrong_thread_error&) {
      ++refused;
    }
    try {
      f.close();
    } catch (const wrong_thread_error&) {
      ++refused;
    }
    net::socket_file gone(std::move(f));  // destroyed here: drops its bytes, says so on stderr
  });
  other.join();
  BOOST_TEST(refused == 3);
  BOOST_TEST(peer_has(c) == "");
}

BOOST_AUTO_TEST_SUITE_END()
