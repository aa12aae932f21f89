// http_hello: a minimal HTTP/1.1 server answering "hello" to every GET, one tasklet per
// connection, with keep-alive, and the limits a server facing hostile peers needs: a request
// head larger than 8 KiB is refused (431), and a client gets --header-timeout seconds in total
// to send its request head (a slow-loris client, trickling a byte at a time so that every single
// recv would succeed within a per-call timeout, is cut off).
//
// The program runs its own clients over loopback: --requests keep-alive requests on one
// connection, one "Connection: close" request, an oversized head, and a slow-loris client.
//
// Usage: http_hello [--requests N] [--header-timeout S] [--quiet]
// Exits non-zero unless every request got its answer and the slow-loris client was cut off.
#include <stackless/stackless.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

using namespace stackless;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxHead = 8192;

// read_head(c, buf, deadline): the next request head (up to and including "\r\n\r\n") from
// buf + the socket; nullopt at EOF. Throws timeout_error when the deadline passes first.
std::optional<std::string> read_head(net::socket& c, std::string& buf, steady::time_point deadline,
                                     bool& too_large) {
  for (;;) {
    if (auto end = buf.find("\r\n\r\n"); end != std::string::npos) {
      std::string head = buf.substr(0, end + 4);
      buf.erase(0, end + 4);
      return head;
    }
    if (buf.size() > kMaxHead) {
      too_large = true;
      return std::nullopt;
    }
    const std::chrono::duration<double> left = deadline - steady::now();
    c.settimeout(std::max(0.0, left.count()));  // the deadline covers the whole head
    if (left.count() <= 0) throw timeout_error("request head: timed out");
    std::string d = c.recv(4096);
    if (d.empty()) return std::nullopt;
    buf += d;
  }
}

void serve(net::socket c, double header_timeout, int& cut_off) {
  std::string buf;
  try {
    for (;;) {
      bool too_large = false;
      const auto deadline = steady::now() + std::chrono::duration_cast<steady::duration>(
                                                std::chrono::duration<double>(header_timeout));
      std::optional<std::string> head = read_head(c, buf, deadline, too_large);
      c.settimeout(std::nullopt);
      if (too_large) {
        c.sendall(
            "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n");
        return;
      }
      if (!head) return;  // EOF between requests
      const bool close = head->find("\r\nConnection: close\r\n") != std::string::npos;
      if (head->rfind("GET ", 0) != 0) {
        c.sendall("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
      } else {
        c.sendall(
            std::string("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n") +
            (close ? "Connection: close\r\n" : "") + "\r\nhello\n");
      }
      if (close) return;
    }
  } catch (const timeout_error&) {
    ++cut_off;  // slow loris: dropped (the socket closes as `c` goes)
  } catch (const std::system_error&) {
    // the peer reset the connection: nothing to answer
  }
}

// read_response(c, buf): one response (status line + body by Content-Length); "" at EOF.
std::string read_response(net::socket& c, std::string& buf) {
  for (;;) {
    auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t len = 0;
      if (auto p = buf.find("Content-Length: "); p != std::string::npos && p < end)
        len = std::strtoul(buf.c_str() + p + 16, nullptr, 10);
      if (buf.size() >= end + 4 + len) {
        std::string r = buf.substr(0, end + 4 + len);
        buf.erase(0, end + 4 + len);
        return r;
      }
    }
    std::string d = c.recv(4096);
    if (d.empty()) return {};
    buf += d;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int requests = 100;
  double header_timeout = 0.3;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--requests") == 0 && i + 1 < argc) {
      requests = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--header-timeout") == 0 && i + 1 < argc) {
      header_timeout = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else {
      std::fprintf(stderr, "usage: %s [--requests N] [--header-timeout S] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  net::socket server = net::create_server(net::address("127.0.0.1", 0));
  const net::address addr = server.getsockname();
  if (!quiet) std::printf("http_hello on http://%s/\n", addr.str().c_str());
  int cut_off = 0;
  constexpr int kConnections = 4;  // keep-alive, close, oversized, slow loris
  tasklet acceptor([&] {
    for (int i = 0; i < kConnections; ++i) {
      auto [conn, peer] = server.accept();
      tasklet([&, c = std::move(conn)]() mutable {
        serve(std::move(c), header_timeout, cut_off);
      }).setup();
    }
  });
  acceptor();

  int answered = 0;
  bool closed_ok = false, refused_large = false, loris_cut = false;
  tasklet keep_alive([&] {
    net::socket c = net::create_connection(addr);
    std::string buf;
    for (int i = 0; i < requests; ++i) {
      c.sendall("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
      const std::string r = read_response(c, buf);
      if (r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && r.ends_with("\r\n\r\nhello\n")) ++answered;
    }
  });
  tasklet closing([&] {
    net::socket c = net::create_connection(addr);
    std::string buf;
    c.sendall("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    closed_ok = read_response(c, buf).ends_with("hello\n") && c.recv(1).empty();
  });
  tasklet oversized([&] {
    net::socket c = net::create_connection(addr);
    std::string buf;
    // One byte past the limit: the server has read all of it when it refuses (closing with
    // unread data would reset the connection and lose the 431).
    const std::string start = "GET / HTTP/1.1\r\nX-Big: ";
    c.sendall(start + std::string(kMaxHead + 1 - start.size(), 'x'));
    refused_large = read_response(c, buf).rfind("HTTP/1.1 431", 0) == 0;
  });
  tasklet loris([&] {
    net::socket c = net::create_connection(addr);
    const auto t0 = steady::now();
    try {
      for (const char ch : std::string("GET / HTTP/1.1\r\nHost: localhost\r\n")) {
        c.sendall(std::string(1, ch));
        stackless::sleep(20ms);
      }
      // Still not cut off after the whole head trickled in: wait for the server's verdict.
      loris_cut = c.recv(1).empty();
    } catch (const std::system_error&) {
      loris_cut = true;  // EPIPE / ECONNRESET: the server closed on us
    }
    if (!quiet)
      std::printf("slow loris cut off after %.2f s\n",
                  std::chrono::duration<double>(steady::now() - t0).count());
  });
  keep_alive();
  closing();
  oversized();
  loris();
  run();
  if (!quiet) {
    std::printf(
        "%d of %d keep-alive requests answered; close: %s; oversized head refused: %s; "
        "slow loris cut off by the server: %s\n",
        answered, requests, closed_ok ? "ok" : "FAILED", refused_large ? "ok" : "FAILED",
        loris_cut && cut_off == 1 ? "ok" : "FAILED");
  }
  return answered == requests && closed_ok && refused_large && loris_cut && cut_off == 1 ? 0 : 1;
}
