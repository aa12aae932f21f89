// Soak test: many tasklets exchange many messages over channels while a killer tasklet kills
// random ones (immediately or pending) and respawns them. Checks, exactly:
//   - every message is accounted for: each one is received exactly once or destroyed while its
//     holder was being killed (unwinding), never dropped silently and never duplicated:
//       sent = received + lost_to_kill;
//   - memory is flat after warm-up: no new stacks are mapped and RSS grows by a bounded amount;
//   - file I/O between messages (pwrite/pread through stackless::io, which blocks only the
//     calling tasklet) always reads back what it wrote, kills landing on I/O waits included;
//   - everything is clean at the end: no tasklet alive, no stack in use, no token alive (and
//     LeakSanitizer, under the asan preset, sees no leak at exit).
//
// Usage: soak [messages=1000000] [tasklets=10000] [seed=42]
// The kill schedule comes from a seeded PRNG and scheduling is deterministic; only the timing of
// file I/O completions is not, so the counts vary slightly from run to run (the checks do not).
#include <stackless/channel.hpp>
#include <stackless/io/file.hpp>
#include <stackless/runtime/errors.hpp>
#include <stackless/runtime/tasklet.hpp>

#ifdef _WIN32
#include <windows.h>
// after windows.h
#include <psapi.h>
#else
#include <unistd.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace {

using stackless::channel;
using stackless::tasklet;

// ---- the ledger: one entry per message ------------------------------------------------------
enum fate : std::uint8_t { in_flight, received, lost };

struct ledger_t {
  std::vector<fate> fates;
  std::uint64_t created = 0, got = 0, lost_to_kill = 0;
  std::uint64_t lost_silently = 0;  // destroyed without a kill unwinding it: a dropped message
  std::uint64_t twice = 0;          // a second fate for one message: a duplicated message
  std::int64_t live_tokens = 0;
  std::uint64_t sends_returned = 0;  // send() returned to its sender

  void settle(std::uint32_t id, fate f) {
    if (fates[id] != in_flight) {
      ++twice;
      return;
    }
    fates[id] = f;
    (f == received ? got : lost_to_kill) += 1;
  }
};
ledger_t ledger;

// token: a message. Move-only; the one live copy carries the id. A live token destroyed while
// an exception is unwinding (a kill) is lost to the kill; destroyed otherwise, it was dropped.
class token {
 public:
  explicit token(std::uint32_t id) : id_(id), live_(true) {
    ++ledger.created;
    ++ledger.live_tokens;
  }
  token(token&& o) noexcept : id_(o.id_), live_(std::exchange(o.live_, false)) {}
  token& operator=(token&&) = delete;
  ~token() {
    if (!live_) return;
    --ledger.live_tokens;
    if (std::uncaught_exceptions() > 0) {
      ledger.settle(id_, lost);
    } else {
      ++ledger.lost_silently;
      ledger.settle(id_, lost);
    }
  }
  void consume() {
    live_ = false;
    --ledger.live_tokens;
    ledger.settle(id_, received);
  }

 private:
  std::uint32_t id_;
  bool live_;
};

// ---- configuration and shared state ---------------------------------------------------------
struct config {
  std::uint64_t messages = 1000000;
  std::size_t tasklets = 10000;
  std::uint64_t seed = 42;
  std::size_t channels = 0;       // tasklets / 100, at least 1
  std::uint64_t kill_every = 0;   // messages between kills: about 1% of tasklets die per 1%
  std::uint64_t io_every = 1000;  // messages between file I/O calls (hook below)
};
config cfg;

std::vector<channel<token>> chans;
std::vector<tasklet> slots;  // workers: even slots produce, odd slots consume
std::uint64_t next_msg = 0;
std::uint64_t kills = 0, pending_kills = 0;

std::size_t channel_of(std::size_t slot) {
  return (slot / 2) % chans.size();
}

// ---- HOOK(io): file I/O between messages ----------------------------------------------------
// Every io_every-th message, its producer writes the message number to a shared file with
// pwrite() and reads it back with pread(): both block only the calling tasklet, so the killer
// also lands on tasklets waiting for I/O. Each call uses its own offset (message / io_every),
// so concurrent calls never overlap and every read must see exactly what its call wrote.
std::optional<stackless::io::file> io_file;
std::uint64_t io_calls = 0, io_mismatches = 0;
void io_between_messages(std::size_t /*slot*/, std::uint64_t msg) {
  ++io_calls;
  const std::uint64_t off = msg / cfg.io_every * sizeof msg;
  char out[sizeof msg], in[sizeof msg] = {};
  std::memcpy(out, &msg, sizeof msg);
  io_file->pwrite(std::string_view(out, sizeof out), off);
  const std::size_t n = io_file->pread(std::span<char>(in, sizeof in), off);
  if (n != sizeof in || std::memcmp(in, out, sizeof in) != 0) ++io_mismatches;
}

// ---- workers --------------------------------------------------------------------------------
void producer(std::size_t slot) {
  channel<token>& ch = chans[channel_of(slot)];
  while (next_msg < cfg.messages) {
    const auto id = static_cast<std::uint32_t>(next_msg++);
    ch.send(token(id));
    ++ledger.sends_returned;
    if (id % cfg.io_every == 0) io_between_messages(slot, id);
  }
}

void consumer(std::size_t slot) {
  channel<token>& ch = chans[channel_of(slot)];
  for (;;) ch.receive().consume();
}

tasklet spawn(std::size_t slot) {
  tasklet t;
  if (slot % 2 == 0)
    t = tasklet([slot] { producer(slot); });
  else
    t = tasklet([slot] { consumer(slot); });
  t.setup();
  return t;
}

// ---- memory ---------------------------------------------------------------------------------
std::size_t rss_bytes() {
#ifdef _WIN32
  PROCESS_MEMORY_COUNTERS pmc{};
  if (!::K32GetProcessMemoryInfo(::GetCurrentProcess(), &pmc, sizeof pmc)) return 0;
  return pmc.WorkingSetSize;
#else
  std::ifstream f("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
#endif
}
struct mem_sample {
  std::size_t rss = 0, mapped_stacks = 0;
};
mem_sample sample() {
  return {rss_bytes(), stackless::get_stack_stats().mapped};
}
mem_sample warm, peak, end_of_run;

// killer: kills a random worker every kill_every messages and respawns its slot; samples memory.
void killer() {
  std::mt19937_64 rng(cfg.seed);
  std::uint64_t last_kill = 0, next_sample = cfg.messages / 10;
  bool warmed = false;
  while (next_msg < cfg.messages) {
    // The killer runs once per pass over the run ring, which may be hundreds of messages: it
    // catches up with every kill owed since its last turn.
    while (next_msg - last_kill >= cfg.kill_every) {
      last_kill += cfg.kill_every;
      const std::size_t victim = rng() % slots.size();
      const bool pending = rng() % 2;
      tasklet t = slots[victim];
      slots[victim] = spawn(victim);
      t.kill(pending);  // immediate: it dies now; pending: when it next runs
      ++kills;
      pending_kills += pending;
    }
    if (next_msg >= next_sample) {
      mem_sample m = sample();
      if (!warmed) {
        warm = m;  // after 10% of the messages: every stack and buffer exists by now
        warmed = true;
      }
      peak.rss = std::max(peak.rss, m.rss);
      peak.mapped_stacks = std::max(peak.mapped_stacks, m.mapped_stacks);
      next_sample += cfg.messages / 20;
    }
    stackless::schedule();
  }
}

std::uint64_t arg(int argc, char** argv, int i, std::uint64_t dflt) {
  return argc > i ? std::strtoull(argv[i], nullptr, 10) : dflt;
}

}  // namespace

int main(int argc, char** argv) {
  cfg.messages = arg(argc, argv, 1, cfg.messages);
  cfg.tasklets = std::max<std::size_t>(4, arg(argc, argv, 2, cfg.tasklets));
  cfg.seed = arg(argc, argv, 3, cfg.seed);
  cfg.channels = std::max<std::size_t>(1, cfg.tasklets / 100);
  // About one kill per 100 messages: 1,000,000 messages -> 10,000 kills, a whole population.
  cfg.kill_every = std::max<std::uint64_t>(1, 100);
  ledger.fates.assign(cfg.messages, in_flight);

  const std::filesystem::path io_path =
      std::filesystem::temp_directory_path() / ("stackless-soak-" + std::to_string(::getpid()));
  const auto t0 = std::chrono::steady_clock::now();
  {
    io_file = stackless::io::open(io_path, "w+b", 0);
    chans.resize(cfg.channels);
    // Every hand-off rule of Stackless in use: with preference 1 and schedule_all a receiver is
    // made runnable holding its message, so a kill can land on a message in transit.
    for (std::size_t c = 0; c < chans.size(); ++c) {
      chans[c].set_preference(static_cast<int>(c % 3) - 1);
      chans[c].set_schedule_all(c % 7 == 6);
    }
    slots.reserve(cfg.tasklets);
    for (std::size_t i = 0; i < cfg.tasklets; ++i) slots.push_back(spawn(i));
    tasklet k([] { killer(); });
    k.set_name("killer")();
    // run() returns when nothing is runnable: the budget is spent, producers have ended and
    // consumers wait on their channels.
    stackless::run();
    end_of_run = sample();
    if (k.alive()) {
      std::fprintf(stderr, "soak: FAIL: the killer is still alive after run()\n");
      return 1;
    }
    // Kill whatever is left (the waiting consumers, producers blocked with a token).
    for (auto& t : slots) t.kill();
    slots.clear();
    chans.clear();
    io_file->close();
    io_file.reset();
    std::filesystem::remove(io_path);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  bool ok = true;
  auto check = [&](bool cond, const char* what) {
    if (!cond) {
      std::fprintf(stderr, "soak: FAIL: %s\n", what);
      ok = false;
    }
  };
  std::uint64_t unsettled = 0;
  for (fate f : ledger.fates) unsettled += (f == in_flight);
  check(ledger.created == cfg.messages, "not every message was sent");
  check(ledger.created == ledger.got + ledger.lost_to_kill, "sent != received + lost_to_kill");
  check(unsettled == 0, "messages with no fate");
  check(ledger.twice == 0, "messages with two fates (duplicated)");
  check(ledger.lost_silently == 0, "messages dropped without a kill");
  check(ledger.live_tokens == 0, "tokens still alive");
  check(io_mismatches == 0, "file I/O read back something else than it wrote");
  check(stackless::alive_tasklets() == 0, "tasklets alive at the end");
  check(stackless::get_stack_stats().in_use == 0, "stacks in use at the end");
  check(stackless::getruncount() == 1, "runcount != 1 at the end");
  // Flat memory: after warm-up no stack is mapped beyond a small slack (the respawn of a slot
  // whose victim has a pending kill briefly needs one more), and RSS grows by < 25% + 16 MiB.
  const std::size_t stack_slack = std::max<std::size_t>(128, cfg.tasklets / 20);
  check(end_of_run.mapped_stacks <= warm.mapped_stacks + stack_slack,
        "stacks keep being mapped after warm-up");
  check(end_of_run.rss <= warm.rss + warm.rss / 4 + (16u << 20), "RSS grows after warm-up");

  std::printf(
      "soak: %llu messages, %zu tasklets, %zu channels, seed %llu: received %llu + lost_to_kill "
      "%llu = sent %llu (send() returned %llu); kills %llu (%llu pending); file I/O calls %llu "
      "(%llu bad)\n",
      static_cast<unsigned long long>(cfg.messages), cfg.tasklets, cfg.channels,
      static_cast<unsigned long long>(cfg.seed), static_cast<unsigned long long>(ledger.got),
      static_cast<unsigned long long>(ledger.lost_to_kill),
      static_cast<unsigned long long>(ledger.created),
      static_cast<unsigned long long>(ledger.sends_returned),
      static_cast<unsigned long long>(kills), static_cast<unsigned long long>(pending_kills),
      static_cast<unsigned long long>(io_calls), static_cast<unsigned long long>(io_mismatches));
  std::printf(
      "soak: RSS after warm-up %.1f MiB, peak %.1f MiB, end %.1f MiB; stacks mapped "
      "%zu -> %zu; %.2f s (%.0f messages/s)\n",
      warm.rss / 1048576.0, std::max(peak.rss, end_of_run.rss) / 1048576.0,
      end_of_run.rss / 1048576.0, warm.mapped_stacks, end_of_run.mapped_stacks, secs,
      cfg.messages / secs);
  std::printf("soak: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
