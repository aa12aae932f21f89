// pingpong: a port of Grant Olson's pingpong_stackless.py ("Introduction to Concurrent
// Programming with Stackless Python", 2006; grant-olson/why_stackless code/).
//
// Two tasklets bat a message back and forth over two channels. The recursive version
// (pingpong.py) overflows the stack; with tasklets the game runs at constant memory. The
// original runs forever; this port stops after --rounds rounds: pong then sends an empty
// message, which ends ping's `while (ping_channel.receive())` loop as Python's '' would.
//
// Usage: pingpong [--rounds N] [--quiet]
// Prints PING/PONG per round and a summary; exits non-zero if the rounds were not all played.
#include <stackless/stackless.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

stackless::channel<std::string> ping_channel;
stackless::channel<std::string> pong_channel;
int rounds = 10;
bool quiet = false;
int pings = 0, pongs = 0;

void ping() {
  while (!ping_channel.receive().empty()) {  // blocks here
    ++pings;
    if (!quiet) std::printf("PING\n");
    pong_channel.send("from ping");
  }
}

void pong() {
  while (!pong_channel.receive().empty()) {
    ++pongs;
    if (!quiet) std::printf("PONG\n");
    // Not in the original, which never stops: after the last round, send '' to end ping.
    ping_channel.send(pongs < rounds ? "from pong" : "");
    if (pongs == rounds) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--quiet") == 0)
      quiet = true;
    else {
      std::fprintf(stderr, "usage: %s [--rounds N] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  if (rounds < 1) rounds = 1;

  // stackless.tasklet(ping)(): braces, because `stackless::tasklet(ping)();` would declare a
  // function named ping (C++'s most vexing parse).
  stackless::tasklet{ping}();
  stackless::tasklet{pong}();

  // we need to 'prime' the game by sending a start message
  // if not, both tasklets will block
  stackless::tasklet([] { ping_channel.send("startup"); })();

  stackless::run();

  std::printf("%d rounds: %d PING, %d PONG\n", rounds, pings, pongs);
  return pings == rounds && pongs == rounds && stackless::alive_tasklets() == 0 ? 0 : 1;
}
