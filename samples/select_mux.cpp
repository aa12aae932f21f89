// select_mux: a multiplexer built on stackless::select, with a timeout (issue 16).
//
// Two sources produce at different paces (a ticker sends numbers, a talker sends words); one
// multiplexer tasklet merges them into a single output channel read by a slow sink. The
// multiplexer's select mixes receives and a send: it receives from whichever source is ready,
// and, while it holds a merged item, also offers that item to the sink (on_send(...).only_if).
// A source that has finished is left out of the select (only_if(false), Go's nil channel).
// When nothing happened for --idle seconds the multiplexer gives up and reports.
//
// Usage: select_mux [--items N] [--idle S]
// Exits non-zero unless the sink got every item exactly once, each source's items in order, and
// the multiplexer ended by its timeout with every channel back at balance 0.
#include <stackless/stackless.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int items = 20;
  double idle = 0.05;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--items") && i + 1 < argc) {
      items = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--idle") && i + 1 < argc) {
      idle = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: select_mux [--items N] [--idle S]\n");
      return 2;
    }
  }
  if (items < 0 || !(idle > 0)) {
    std::fprintf(stderr, "select_mux: --items must be >= 0 and --idle > 0\n");
    return 2;
  }

  stackless::channel<int> ticks;
  stackless::channel<std::string> words;
  stackless::channel<std::string> out;
  stackless::channel<void> ticks_done, words_done;

  stackless::tasklet([&] {  // the ticker: fast
    for (int i = 0; i < items; ++i) {
      stackless::sleep(1ms);
      ticks.send(i);
    }
    ticks_done.send();
  })();
  stackless::tasklet([&] {  // the talker: slower
    for (int i = 0; i < items; ++i) {
      stackless::sleep(3ms);
      words.send("w" + std::to_string(i));
    }
    words_done.send();
  })();

  std::vector<std::string> got;
  bool sink_stop = false;
  stackless::tasklet([&] {  // the sink: slow, reads until told to stop
    while (!sink_stop) {
      if (auto v = stackless::receive_for(out, 20ms)) {
        got.push_back(*v);
        stackless::sleep(500us);
      }
    }
  })();

  int timeouts = 0;
  stackless::tasklet([&] {  // the multiplexer
    std::deque<std::string> pending;
    bool ticking = true, talking = true;
    const auto idle_for = std::chrono::duration<double>(idle);
    for (;;) {
      std::string head = pending.empty() ? std::string() : pending.front();
      const std::size_t i = stackless::select(
          stackless::on_receive(ticks, [&](int v) { pending.push_back("t" + std::to_string(v)); })
              .only_if(ticking),
          stackless::on_receive(words, [&](std::string w) { pending.push_back(std::move(w)); })
              .only_if(talking),
          stackless::on_receive(ticks_done, [&] { ticking = false; }).only_if(ticking),
          stackless::on_receive(words_done, [&] { talking = false; }).only_if(talking),
          stackless::on_send(out, std::move(head), [&] { pending.pop_front(); })
              .only_if(!pending.empty()),
          stackless::on_timeout(idle_for, [&] { ++timeouts; }));
      if (i == 5) break;
    }
    sink_stop = true;
  })();

  stackless::run();

  // Check: every item once, each source in order.
  bool ok = static_cast<int>(got.size()) == 2 * items && timeouts == 1;
  int next_t = 0, next_w = 0;
  for (const auto& s : got) {
    if (s[0] == 't')
      ok = ok && std::atoi(s.c_str() + 1) == next_t++;
    else
      ok = ok && std::atoi(s.c_str() + 1) == next_w++;
  }
  ok = ok && ticks.balance() == 0 && words.balance() == 0 && out.balance() == 0;
  std::printf("select_mux: %zu items merged (%d ticks, %d words), ended by a %.3f s timeout: %s\n",
              got.size(), next_t, next_w, idle, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
