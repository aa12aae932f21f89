// chat: a chat server in the style of the Stackless examples (one tasklet per connection, a
// channel per room). A connection's tasklet reads lines: "/join ROOM" moves it to a room (made
// on first use, with a tasklet that receives the room's channel and hands each message to every
// member's writer channel), "/quit" leaves, any other line is said in the room. Each member has a
// writer tasklet receiving its own channel and sending to its socket, so a slow client holds up
// nobody but itself once its channel's message is taken.
//
// A line longer than 1 KiB disconnects its client (a peer cannot make the server allocate
// without bound). The program runs --clients clients over loopback: each joins "lobby", waits
// until all have joined, says --lines lines, and checks that it heard every line of everyone,
// in the order the room said them.
//
// Usage: chat [--clients N] [--lines M] [--quiet]
#include <stackless/stackless.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace stackless;

namespace {

constexpr std::size_t kMaxLine = 1024;

// line_reader: lines from a socket, at most kMaxLine bytes each (makefile's readline, whose
// max_line caps what one line may make the server hold).
class line_reader {
 public:
  explicit line_reader(net::socket& s) : f_(s.makefile("r", -1, kMaxLine + 1)) {}
  // next(): the next line without its '\n'; nullopt at EOF (a last line without '\n' is
  // dropped); throws length_error past the limit.
  std::optional<std::string> next() {
    std::string line = f_.readline();
    if (line.empty() || line.back() != '\n') {
      if (line.size() > kMaxLine) throw std::length_error("line too long");
      return std::nullopt;
    }
    line.pop_back();
    return line;
  }

 private:
  net::socket_file f_;
};

struct member {
  std::string name;
  channel<std::string> out;  // what its writer tasklet sends to the socket
};

struct room {
  std::string name;
  channel<std::string> said;  // everything said in the room
  std::set<member*> members;
  tasklet speaker;  // receives `said`, hands each message to every member
};

std::map<std::string, std::unique_ptr<room> > g_rooms;

room& get_room(const std::string& name) {
  auto& r = g_rooms[name];
  if (!r) {
    r = std::make_unique<room>();
    r->name = name;
    room* rp = r.get();
    // The room's tasklet: one channel in, every member's channel out.
    r->speaker = tasklet([rp] {
      for (;;) {
        const std::string msg = rp->said.receive();
        const std::set<member*> now = rp->members;
        for (member* m : now)
          if (rp->members.count(m)) m->out.send(msg);  // it may have left meanwhile
      }
    });
    r->speaker.set_name("room " + name).setup();
  }
  return *r;
}

void handle(net::socket conn, int id) {
  member me;
  me.name = "user" + std::to_string(id);
  room* in = nullptr;
  tasklet writer([&] {
    for (;;) conn.sendall(me.out.receive() + "\n");
  });
  writer();
  try {
    line_reader lines(conn);
    while (auto line = lines.next()) {
      if (line->rfind("/join ", 0) == 0) {
        if (in) in->members.erase(&me);
        in = &get_room(line->substr(6));
        in->members.insert(&me);
        me.out.send("* " + me.name + " is in " + in->name + " with " +
                    std::to_string(in->members.size() - 1) + " others");
      } else if (*line == "/quit") {
        break;
      } else if (in) {
        in->said.send(me.name + ": " + *line);
      } else {
        me.out.send("* /join a room first");
      }
    }
  } catch (const std::exception&) {
    // a reset, or a line over the limit: drop the client
  }
  if (in) in->members.erase(&me);
  writer.kill();
  // The room may be blocked sending to us: take what it holds before `me` goes away.
  while (me.out.balance() > 0) me.out.receive();
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 5, lines = 20;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
      clients = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
      lines = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else {
      std::fprintf(stderr, "usage: %s [--clients N] [--lines M] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  net::socket server = net::create_server(net::address("127.0.0.1", 0));
  const net::address addr = server.getsockname();
  if (!quiet) std::printf("chat server on %s\n", addr.str().c_str());
  tasklet acceptor([&] {
    try {
      for (int id = 0;; ++id) {
        auto [conn, peer] = server.accept();
        tasklet([c = std::move(conn), id]() mutable { handle(std::move(c), id); }).setup();
      }
    } catch (const std::system_error&) {
      // EBADF: the server socket was closed (below): the server is done
    }
  });
  acceptor();

  barrier joined(static_cast<std::size_t>(clients));
  barrier heard_all(static_cast<std::size_t>(clients));
  std::vector<std::vector<std::string> > heard(static_cast<std::size_t>(clients));
  int done = 0, finished = 0;
  bool long_line_dropped = false;
  for (int i = 0; i < clients; ++i) {
    tasklet([&, i] {
      net::socket c = net::create_connection(addr);
      line_reader in(c);
      c.sendall("/join lobby\n");
      in.next();  // "* userN is in lobby with K others"
      joined.wait();
      for (int l = 0; l < lines; ++l) c.sendall("line " + std::to_string(l) + "\n");
      auto& mine = heard[static_cast<std::size_t>(i)];
      while (mine.size() < static_cast<std::size_t>(clients * lines)) {
        auto l = in.next();
        if (!l) break;
        mine.push_back(*l);
      }
      heard_all.wait();  // nobody quits before everyone heard everything
      c.sendall("/quit\n");
      if (!in.next()) ++done;                     // the server closed our connection
      if (++finished == clients) server.close();  // the last one out shuts the server down
    }).setup();
  }
  tasklet hostile([&] {
    net::socket c = net::create_connection(addr);
    try {
      c.sendall(std::string(4 * kMaxLine, 'x'));  // no newline: over the limit
      long_line_dropped = c.recv(1).empty();
    } catch (const std::system_error&) {
      long_line_dropped = true;  // reset: dropped with unread data
    }
  });
  hostile();
  run();  // returns when only the rooms' tasklets are left, blocked on their channels
  for (auto& [name, r] : g_rooms) r->speaker.kill();
  g_rooms.clear();

  bool ok = done == clients && long_line_dropped;
  // Everyone heard the same sequence, and each speaker's lines in order.
  for (int i = 0; i < clients; ++i) {
    const auto& h = heard[static_cast<std::size_t>(i)];
    if (h != heard[0] || h.size() != static_cast<std::size_t>(clients * lines)) ok = false;
  }
  for (int i = 0; i < clients; ++i) {
    int next = 0;
    for (const std::string& l : heard[0])
      if (l.rfind("user" + std::to_string(i) + ": ", 0) == 0 &&
          l == "user" + std::to_string(i) + ": line " + std::to_string(next))
        ++next;
    if (next != lines) ok = false;
  }
  if (!quiet)
    std::printf("%d clients heard %zu lines each, in one order: %s; long line dropped: %s\n", done,
                heard[0].size(), ok ? "ok" : "FAILED", long_line_dropped ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
