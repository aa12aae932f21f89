// echo: an echo server and its clients in one program, over loopback: the server is one tasklet
// per connection written as plain sequential code (accept, then recv/sendall until EOF), as in
// the Stackless socket examples; every blocking call blocks only its tasklet.
//
// Usage: echo [--clients N] [--messages M] [--quiet]
// Exits non-zero unless every client got back exactly what it sent.
#include <stackless/stackless.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace stackless;

int main(int argc, char** argv) {
  int clients = 10, messages = 100;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
      clients = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--messages") == 0 && i + 1 < argc) {
      messages = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else {
      std::fprintf(stderr, "usage: %s [--clients N] [--messages M] [--quiet]\n", argv[0]);
      return 2;
    }
  }

  net::socket server = net::create_server(net::address("127.0.0.1", 0));
  const net::address addr = server.getsockname();
  if (!quiet) std::printf("echo server on %s\n", addr.str().c_str());

  // The server: one tasklet per connection.
  tasklet acceptor([&] {
    for (int i = 0; i < clients; ++i) {
      auto [conn, peer] = server.accept();
      tasklet([c = std::move(conn)]() mutable {
        for (std::string data; !(data = c.recv(4096)).empty();) c.sendall(data);
      }).setup();
    }
  });
  acceptor();

  int ok = 0;
  for (int i = 0; i < clients; ++i) {
    tasklet([&, i] {
      net::socket c = net::create_connection(addr);
      for (int m = 0; m < messages; ++m) {
        const std::string msg =
            "client " + std::to_string(i) + " message " + std::to_string(m) + "\n";
        c.sendall(msg);
        std::string back;
        while (back.size() < msg.size()) {
          std::string d = c.recv(msg.size() - back.size());
          if (d.empty()) break;
          back += d;
        }
        if (back != msg) {
          std::fprintf(stderr, "client %d: sent %s got %s\n", i, msg.c_str(), back.c_str());
          return;
        }
      }
      c.shutdown(net::shut_wr);
      if (c.recv(1).empty()) ++ok;  // the server saw our EOF and closed its side
    }).setup();
  }
  run();
  if (!quiet) std::printf("%d of %d clients echoed %d messages each\n", ok, clients, messages);
  return ok == clients ? 0 : 1;
}
