// libFuzzer target: random programs of tasklet and channel operations, run on the real library
// and on a small reference model of Stackless's rules (docs/semantics.md §1.2-1.10), compared
// after every top-level operation.
//
// The input describes a closed world, so the model can be exact:
//   - up to 5 tasklets (agents 1..NT) and 3 channels of int; agent 0 is the main tasklet;
//   - every tasklet runs a *script*: a short fixed list of steps decoded from the input, executed
//     by an interpreter that logs every step's outcome; a script either catches exceptions (logs
//     them and goes on) or lets them escape (the tasklet dies, the error goes to main, §1.9);
//     a catching script may run its next step inside the exception handler, where switches
//     must not disturb the exception being handled;
//   - main executes the rest of the input, one step at a time, with the same vocabulary:
//     send, receive, send_exception, schedule, schedule_remove, run, kill/throw (immediate or
//     pending), insert, remove, t.run(), t.switch(), close, open, preference, schedule_all,
//     setup (new scheduled tasklet) and bind (new paused tasklet with arguments), and select
//     (two cases, sends and receives on any channels, with or without on_default).
// Targets of tasklet operations are never main (main is the only watchdog, as only main calls
// run(): that keeps the watchdog stack of §1.9/§1.10 at depth <= 1 and the model small).
//
// The model is an independent simulation: a ring (vector, front = current), a FIFO per channel
// and, per agent, its state, program counter, pending bomb and the result its suspended operation
// will return. After each main step we compare the execution log (every step of every agent,
// with its value or exception, in execution order), runcount, the run ring in order, every
// channel's queue in order, balance and closing, and each tasklet's alive/paused/blocked/
// scheduled. At the end of an input every leftover tasklet is killed (liveness: they must all
// die within a bounded number of rounds) and the scheduler must be back to main alone, with no
// stack in use, so that inputs are independent.
#include <stackless/channel.hpp>
#include <stackless/runtime/errors.hpp>
#include <stackless/runtime/tasklet.hpp>
#include <stackless/select.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace {

using stackless::channel;
using stackless::tasklet;

// ---- the program: decoded from the input, shared by the real run and the model --------------

enum Op : std::uint8_t {
  SEND,
  RECV,
  SEND_EXC,
  SCHEDULE,
  KILL,
  THROW,
  INSERT,
  REMOVE,
  RUN_T,
  SWITCH,
  CLOSE,
  OPEN,
  PREF,
  SCHEDALL,
  SETUP,
  BIND,
  RUN,
  SCHED_REMOVE,
  SELECT,
  kOps
};
const char* const kOpName[kOps] = {"send",  "recv",   "sendexc", "sched",    "kill",
                                   "throw", "insert", "remove",  "run_t",    "switch",
                                   "close", "open",   "pref",    "schedall", "setup",
                                   "bind",  "run",    "schedrm", "select"};

struct Step {
  Op op = SEND;
  int c = 0;  // channel
  int t = 1;  // target tasklet (1..NT)
  bool pending = false;
  int pref = -1;
  bool flag = false;
  // SELECT: cases (c, d1) and (c2, d2), d = +1 send / -1 receive; `flag`: with on_default.
  int c2 = 0, d1 = -1, d2 = -1;
};

struct Program {
  int nt = 1, nc = 1;
  std::vector<std::vector<Step>> scripts;  // [0] unused (main runs `main_steps`)
  std::vector<bool> catches;
  std::vector<bool> nested;  // a caught exception's handler runs the next step (see interp)
  std::vector<Step> main_steps;
};

constexpr int kMaxTasklets = 5, kMaxChannels = 3, kMaxScript = 6, kMaxMainSteps = 64;

struct reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t next() {
    if (!n) return 0;
    --n;
    return *p++;
  }
};

Step decode_step(reader& r, const Program& pg, bool is_main) {
  Step s;
  std::uint8_t o = r.next(), x = r.next();
  s.op = static_cast<Op>(o % kOps);
  // Only main calls run(): a tasklet's RUN is a schedule_remove (see the file comment).
  if (!is_main && s.op == RUN) s.op = SCHED_REMOVE;
  s.c = x % pg.nc;
  s.t = 1 + x % pg.nt;
  s.pending = (x >> 4) & 1;
  s.flag = (x >> 4) & 1;
  s.pref = (x >> 4) % 3 - 1;
  if (s.op == SELECT) {
    const std::uint8_t y = r.next();
    s.c2 = y % pg.nc;
    s.d1 = (y >> 2) & 1 ? +1 : -1;
    s.d2 = (y >> 3) & 1 ? +1 : -1;
    s.flag = (y >> 4) & 1;
  }
  return s;
}

Program decode(const std::uint8_t* data, std::size_t size) {
  reader r{data, size};
  Program pg;
  std::uint8_t b = r.next();
  pg.nt = 1 + b % kMaxTasklets;
  pg.nc = 1 + (b / kMaxTasklets) % kMaxChannels;
  pg.scripts.resize(pg.nt + 1);
  pg.catches.resize(pg.nt + 1);
  pg.nested.resize(pg.nt + 1);
  for (int a = 1; a <= pg.nt; ++a) {
    std::uint8_t h = r.next();
    int len = h % (kMaxScript + 1);
    pg.catches[a] = (h >> 3) & 1;
    pg.nested[a] = (h >> 4) & 1;
    for (int i = 0; i < len; ++i) pg.scripts[a].push_back(decode_step(r, pg, false));
  }
  while (r.n >= 2 && pg.main_steps.size() < kMaxMainSteps)
    pg.main_steps.push_back(decode_step(r, pg, true));
  return pg;
}

int send_value(int agent, int pc) {
  return agent * 1000 + pc;
}

std::string step_text(int agent, const Step& s) {
  std::string r = std::to_string(agent) + ":" + kOpName[s.op];
  switch (s.op) {
    case SEND:
    case RECV:
    case SEND_EXC:
    case CLOSE:
    case OPEN:
      r += " c" + std::to_string(s.c);
      break;
    case PREF:
      r += " c" + std::to_string(s.c) + "=" + std::to_string(s.pref);
      break;
    case SCHEDALL:
      r += " c" + std::to_string(s.c) + "=" + std::to_string(s.flag);
      break;
    case SELECT:
      r += std::string(s.d1 > 0 ? " send" : " recv") + " c" + std::to_string(s.c) +
           (s.d2 > 0 ? " send" : " recv") + " c" + std::to_string(s.c2) +
           (s.flag ? " default" : "");
      break;
    case KILL:
    case THROW:
      r += " t" + std::to_string(s.t) + (s.pending ? " pending" : "");
      break;
    case INSERT:
    case REMOVE:
    case RUN_T:
    case SWITCH:
    case SETUP:
    case BIND:
      r += " t" + std::to_string(s.t);
      break;
    default:
      break;
  }
  return r;
}

// Exception kinds as both sides spell them.
std::string thrown_kind(int agent, int pc) {
  return "thr" + std::to_string(agent) + "." + std::to_string(pc);
}
std::string sent_kind(int value) {
  return "sent" + std::to_string(value);
}
const char* const kExit = "exit";

[[noreturn]] void fail(const std::string& what, const std::vector<std::string>& real,
                       const std::vector<std::string>& model) {
  std::fprintf(stderr, "\n*** MODEL MISMATCH: %s\n--- real log ---\n", what.c_str());
  for (const auto& l : real) std::fprintf(stderr, "  %s\n", l.c_str());
  std::fprintf(stderr, "--- model log ---\n");
  for (const auto& l : model) std::fprintf(stderr, "  %s\n", l.c_str());
  std::abort();
}

// ---- the real run ----------------------------------------------------------------------------

struct fuzz_error {  // what THROW raises (not a std::exception, like Python's custom errors)
  int from, pc;
};
struct sent_error {  // what SEND_EXC delivers
  int value;
};

struct Real {
  const Program* pg = nullptr;
  std::vector<tasklet> handles;  // [0] = main
  std::vector<bool> born;
  std::vector<channel<int>> chans;
  std::vector<std::string> log;
};
Real* g_real = nullptr;

std::string classify(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const fuzz_error& f) {
    return thrown_kind(f.from, f.pc);
  } catch (const sent_error& s) {
    return sent_kind(s.value);
  } catch (const stackless::channel_closed&) {
    return "closed";
  } catch (const stackless::deadlock_error& d) {
    const std::string m = d.what();
    if (m == "Deadlock: the last runnable tasklet cannot be blocked.") return "deadlock";
    if (m == "the main tasklet is receiving without a sender available.") return "mainrecv";
    if (m == "the main tasklet is sending without a receiver available.") return "mainsend";
    return "deadlock?" + m;
  } catch (const stackless::tasklet_error&) {
    return "terr";
  } catch (const std::exception& x) {
    return std::string("other:") + x.what();
  } catch (...) {
    return "unknown";
  }
}

void interp(int a);

// select's random poll order, replayed by the model: one draw per enabled case (a small LCG,
// restarted for every input).
struct select_rng {
  std::uint32_t x = 1;
  std::uint32_t next() noexcept {
    x = x * 1664525u + 1013904223u;
    return x >> 8;
  }
};
select_rng g_real_rng;
std::uint32_t real_select_random() noexcept {
  return g_real_rng.next();
}
const char* const kMixedDirs =
    "stackless::select: the same channel is both sent to and received from";

// A select's value for case k (so the receiver's log says which case sent it).
int select_value(int agent, int pc, int k) {
  return send_value(agent, pc) + 500 * k;
}

std::string real_select(int a, int pc, const Step& s) {
  Real& R = *g_real;
  channel<int>& c1 = R.chans[s.c];
  channel<int>& c2 = R.chans[s.c2];
  int got = 0;
  auto recv = [&](channel<int>& c) { return stackless::on_receive(c, [&got](int v) { got = v; }); };
  auto send = [&](channel<int>& c, int k) { return stackless::on_send(c, select_value(a, pc, k)); };
  auto two = [&](auto&& x, auto&& y) -> std::size_t {
    if (s.flag) return stackless::select(x, y, stackless::on_default());
    return stackless::select(x, y);
  };
  std::size_t i;
  if (s.d1 < 0 && s.d2 < 0)
    i = two(recv(c1), recv(c2));
  else if (s.d1 < 0)
    i = two(recv(c1), send(c2, 1));
  else if (s.d2 < 0)
    i = two(send(c1, 0), recv(c2));
  else
    i = two(send(c1, 0), send(c2, 1));
  std::string r = "i" + std::to_string(i);
  if (i < 2 && (i == 0 ? s.d1 : s.d2) < 0) r += " v" + std::to_string(got);
  return r;
}

// real_exec(a, pc, s): performs one step in agent a (the current tasklet). Returns the result
// text ("ok", "v<value>"); exceptions propagate to the caller, which logs them.
std::string real_exec(int a, int pc, const Step& s) {
  Real& R = *g_real;
  tasklet& t = R.handles[static_cast<std::size_t>(s.t)];
  switch (s.op) {
    case SEND:
      R.chans[s.c].send(send_value(a, pc));
      return "ok";
    case RECV:
      return "v" + std::to_string(R.chans[s.c].receive());
    case SEND_EXC:
      R.chans[s.c].send_exception<sent_error>(sent_error{send_value(a, pc)});
      return "ok";
    case SCHEDULE:
      stackless::schedule();
      return "ok";
    case SCHED_REMOVE:
      stackless::schedule_remove();
      return "ok";
    case RUN:
      stackless::run();
      return "ok";
    case KILL:
      t.kill(s.pending);
      return "ok";
    case THROW:
      t.throw_exception(std::make_exception_ptr(fuzz_error{a, pc}), s.pending);
      return "ok";
    case INSERT:
      t.insert();
      return "ok";
    case REMOVE:
      t.remove();
      return "ok";
    case RUN_T:
      t.run();
      return "ok";
    case SWITCH:
      t.switch_to();
      return "ok";
    case CLOSE:
      R.chans[s.c].close();
      return "ok";
    case OPEN:
      R.chans[s.c].open();
      return "ok";
    case PREF:
      R.chans[s.c].set_preference(s.pref);
      return "ok";
    case SCHEDALL:
      R.chans[s.c].set_schedule_all(s.flag);
      return "ok";
    case SETUP:
      // The slot holds a bound, never-run tasklet until it is born; afterwards setup() must be
      // refused ("tasklet is alive" or "not bound" once finished).
      R.born[s.t] = true;
      t.setup();
      return "ok";
    case BIND:
      if (!R.born[s.t]) {
        R.born[s.t] = true;
        const int idx = s.t;
        t = tasklet([](int i) { interp(i); }, idx);  // alive and paused, never run
      }
      return "ok";
    case SELECT:
      return real_select(a, pc, s);
    case kOps:
      break;
  }
  return "?";
}

// nested_step(a, pc): runs step pc inside the handler of a caught exception (a catching
// script), logging it like any step. It may switch tasklets, so other tasklets throw and catch
// meanwhile: the handler's exception must survive that (each tasklet has its own C++
// exception-handling state). The model needs nothing for this: the steps and their order are the
// same as when the step runs after the handler.
void nested_step(int a, std::size_t pc) {
  Real& R = *g_real;
  const Step& s = R.pg->scripts[static_cast<std::size_t>(a)][pc];
  const std::string outer = classify(std::current_exception());
  std::string res;
  try {
    res = real_exec(a, static_cast<int>(pc), s);
  } catch (const stackless::tasklet_exit&) {
    R.log.push_back(step_text(a, s) + " !" + kExit);
    throw;
  } catch (...) {
    res = "!" + classify(std::current_exception());
  }
  R.log.push_back(step_text(a, s) + " " + res);
  const std::string now = classify(std::current_exception());
  if (now != outer) {
    std::fprintf(stderr,
                 "\n*** tasklet %d: the exception being handled changed from %s to %s "
                 "across a switch inside its handler\n",
                 a, outer.c_str(), now.c_str());
    std::abort();
  }
}

void interp(int a) {
  Real& R = *g_real;
  R.log.push_back(std::to_string(a) + ":start");
  const auto& script = R.pg->scripts[static_cast<std::size_t>(a)];
  for (std::size_t pc = 0; pc < script.size(); ++pc) {
    const Step& s = script[pc];
    std::string res;
    try {
      res = real_exec(a, static_cast<int>(pc), s);
    } catch (const stackless::tasklet_exit&) {
      R.log.push_back(step_text(a, s) + " !" + kExit);
      throw;
    } catch (...) {
      R.log.push_back(step_text(a, s) + " !" + classify(std::current_exception()));
      if (!R.pg->catches[static_cast<std::size_t>(a)]) throw;
      if (R.pg->nested[static_cast<std::size_t>(a)] && pc + 1 < script.size()) nested_step(a, ++pc);
      continue;
    }
    R.log.push_back(step_text(a, s) + " " + res);
  }
  R.log.push_back(std::to_string(a) + ":end");
}

// ---- the model -------------------------------------------------------------------------------

enum class St { unborn, paused, ring, blocked, dead };

struct MAgent {
  St st = St::unborn;
  bool started = false;
  std::size_t pc = 0;               // next script step (tasklets)
  std::optional<std::string> bomb;  // exception kind raised when it next resumes
  // The operation it is suspended in and what that operation returns when it resumes:
  // "ok", "v<value>" or "!<kind>".
  std::string pend_text, pend_res;
  // While blocked: channel, direction, and (a sender) what it offers.
  int ch = -1, dir = 0, value = 0;
  bool value_is_exc = false;
  // While blocked in a select: its two cases (channel, direction, value to send).
  bool in_select = false;
  int sc[2] = {0, 0}, sd[2] = {0, 0}, sv[2] = {0, 0};
};

// A channel queue entry: a blocked agent, and for a select the case (-1: a plain send/receive).
struct MEntry {
  int agent;
  int cs;
  bool operator==(const MEntry&) const = default;
};

struct MChan {
  std::deque<MEntry> q;  // blocked agents and select cases, one direction only
  int dir = 0;           // +1 senders wait, -1 receivers wait (when q is not empty)
  bool closing = false;
  int pref = -1;
  bool schedall = false;
  int balance() const { return static_cast<int>(q.size()) * dir; }
};

struct Model {
  const Program* pg;
  std::vector<MAgent> ag;
  std::vector<MChan> ch;
  std::vector<int> ring;  // ring[0] is current
  std::vector<std::string> log;
  select_rng rng;

  explicit Model(const Program& p) : pg(&p), ag(p.nt + 1), ch(p.nc), ring{0} {
    ag[0].st = St::ring;
    ag[0].started = true;
  }

  bool alive(int t) const {
    St s = ag[t].st;
    return s == St::paused || s == St::ring || s == St::blocked;
  }
  bool in_ring(int t) const { return ag[t].st == St::ring; }
  int cur() const { return ring.front(); }
  void ring_erase(int t) { ring.erase(std::find(ring.begin(), ring.end(), t)); }
  void push_back(int t) {  // append to the end of the run queue (just before current)
    ring.push_back(t);
    ag[t].st = St::ring;
  }
  void insert_after_cur(int t) {
    ring.insert(ring.begin() + 1, t);
    ag[t].st = St::ring;
  }
  void rotate_to(int t) {
    std::rotate(ring.begin(), std::find(ring.begin(), ring.end(), t), ring.end());
  }
  void rotate1() { std::rotate(ring.begin(), ring.begin() + 1, ring.end()); }

  // unqueue(t): t leaves every channel queue (a select waits in several).
  void unqueue(int t) {
    for (MChan& c : ch)
      c.q.erase(
          std::remove_if(c.q.begin(), c.q.end(), [t](const MEntry& e) { return e.agent == t; }),
          c.q.end());
  }
  void cancel_block(int t) {
    unqueue(t);
    ag[t].ch = -1;
    ag[t].in_select = false;
    ag[t].st = St::paused;
  }
  // take_front(k): the partner at the head of k's queue leaves it (a select: all its queues).
  // Returns it; for a select, `sel_res` is the prefix of its result ("i<case>").
  MEntry take_front(MChan& k) {
    MEntry e = k.q.front();
    k.q.pop_front();
    if (e.cs >= 0) {
      unqueue(e.agent);
      ag[e.agent].in_select = false;
    }
    ag[e.agent].ch = -1;
    return e;
  }
  // The ring emptied: main (the only watchdog) runs again.
  void revive_main() {
    ring.assign(1, 0);
    ag[0].st = St::ring;
  }

  // Outcome of one step: done (the agent goes on with `res`) or switched away (res is stored in
  // pend_res and returned when the agent resumes).
  struct Outcome {
    bool switched;
    std::string res;
  };
  static Outcome done(std::string r) { return {false, std::move(r)}; }
  Outcome away(int a, std::string r = "ok") {
    ag[a].pend_res = std::move(r);
    return {true, {}};
  }

  // block(a, c, dir): §1.7 "no partner waiting" and §1.10.
  Outcome block(int a, int c, int dir, int value, bool exc) {
    if (ch[c].closing) return done("!closed");
    if (ring.size() == 1) {
      // The last runnable tasklet wants to block. Main is revived unless it is the one blocking
      // or is itself blocked; then the operation is refused (undone).
      if (a == 0 || ag[0].st == St::blocked) return done("!deadlock");
    }
    MChan& k = ch[c];
    k.q.push_back({a, -1});
    k.dir = dir;
    MAgent& m = ag[a];
    m.ch = c;
    m.dir = dir;
    m.value = value;
    m.value_is_exc = exc;
    ring.erase(ring.begin());
    m.st = St::blocked;
    if (ring.empty()) revive_main();
    return away(a);
  }

  // send/recv: `res` is what the caller's operation returns ("ok" / "" for plain ones, "i<k>"
  // for a select's case k).
  Outcome send(int a, int c, int value, bool exc, const std::string& res = "ok") {
    MChan& k = ch[c];
    if (k.q.empty() || k.dir != -1) return block(a, c, +1, value, exc);
    const MEntry e = take_front(k);
    const int p = e.agent;
    const std::string pre = e.cs >= 0 ? "i" + std::to_string(e.cs) + " " : "";
    ag[p].pend_res = exc ? "!" + sent_kind(value) : pre + "v" + std::to_string(value);
    if (k.schedall) {
      push_back(p);
      rotate1();
      return away(a, res);
    }
    if (k.pref == -1) {  // the receiver is preferred: it runs now, the sender is the tail
      insert_after_cur(p);
      rotate1();
      return away(a, res);
    }
    push_back(p);
    return done(res);
  }

  Outcome recv(int a, int c, const std::string& pre = "") {
    MChan& k = ch[c];
    if (k.q.empty() || k.dir != +1) return block(a, c, -1, 0, false);
    const MEntry e = take_front(k);
    const int p = e.agent;
    std::string got;
    if (e.cs >= 0) {
      ag[p].pend_res = "i" + std::to_string(e.cs);
      got = pre + "v" + std::to_string(ag[p].sv[e.cs]);
    } else {
      ag[p].pend_res = "ok";
      got = ag[p].value_is_exc ? "!" + sent_kind(ag[p].value)
                               : pre + "v" + std::to_string(ag[p].value);
    }
    if (k.schedall) {
      push_back(p);
      rotate1();
      return away(a, got);
    }
    if (k.pref == 1) {  // the sender is preferred
      insert_after_cur(p);
      rotate1();
      return away(a, got);
    }
    push_back(p);
    return done(got);
  }

  // select (docs/semantics.md, select): the cases are polled in the order the same random draws
  // give the library; the first with a waiting partner completes as a plain operation would
  // (the caller's result is prefixed with "i<case>"); else the default; else the select waits
  // in both queues (closing and deadlock refuse it as they refuse a plain wait).
  Outcome select(int a, std::size_t pc, const Step& s) {
    const int c[2] = {s.c, s.c2}, d[2] = {s.d1, s.d2};
    const int v[2] = {select_value(a, static_cast<int>(pc), 0),
                      select_value(a, static_cast<int>(pc), 1)};
    int order[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      if (i == 1 && c[1] == c[0] && d[1] != d[0]) return done(std::string("!other:") + kMixedDirs);
      const std::uint32_t k = rng.next() % static_cast<std::uint32_t>(i + 1);
      order[i] = order[k];
      order[k] = i;
    }
    for (int i : order) {
      MChan& k = ch[c[i]];
      if (k.q.empty() || k.dir != -d[i]) continue;
      const std::string pre = "i" + std::to_string(i);
      if (d[i] > 0) return send(a, c[i], v[i], false, pre);
      return recv(a, c[i], pre + " ");
    }
    if (s.flag) return done("i2");
    if (ch[c[0]].closing || ch[c[1]].closing) return done("!closed");
    if (ring.size() == 1 && (a == 0 || ag[0].st == St::blocked)) return done("!deadlock");
    MAgent& m = ag[a];
    for (int i : {0, 1}) {
      MChan& k = ch[c[i]];
      k.q.push_back({a, i});
      k.dir = d[i];
      m.sc[i] = c[i];
      m.sd[i] = d[i];
      m.sv[i] = v[i];
    }
    m.in_select = true;
    m.ch = c[0];
    m.dir = -1;  // the runtime parks a select as receiving (main's deadlock message)
    ring.erase(ring.begin());
    m.st = St::blocked;
    if (ring.empty()) revive_main();
    return away(a);
  }

  // §1.8
  Outcome throw_to(int a, int t, bool pending, const std::string& kind) {
    if (t == a) return done("!" + kind);
    if (!alive(t)) return done(kind == kExit ? "ok" : "!terr");
    ag[t].bomb = kind;
    if (ag[t].st == St::blocked) cancel_block(t);
    if (!in_ring(t)) push_back(t);
    if (pending) return done("ok");
    rotate_to(t);
    return away(a);
  }

  Outcome exec(int a, std::size_t pc, const Step& s) {
    const int t = s.t;
    switch (s.op) {
      case SEND:
        return send(a, s.c, send_value(a, static_cast<int>(pc)), false);
      case SEND_EXC:
        return send(a, s.c, send_value(a, static_cast<int>(pc)), true);
      case RECV:
        return recv(a, s.c);
      case SCHEDULE:
        if (ring.size() == 1) return done("ok");
        rotate1();
        return away(a);
      case SCHED_REMOVE:
        if (ring.size() == 1) {
          if (a == 0) return done("ok");
          if (ag[0].st == St::blocked) return done("!deadlock");
          ag[a].st = St::paused;
          revive_main();
          return away(a);
        }
        ring.erase(ring.begin());
        ag[a].st = St::paused;
        return away(a);
      case RUN:  // main only
        if (ring.size() == 1) return done("ok");
        ring.erase(ring.begin());
        ag[a].st = St::paused;
        return away(a);
      case KILL:
        return throw_to(a, t, s.pending, kExit);
      case THROW:
        return throw_to(a, t, s.pending, thrown_kind(a, static_cast<int>(pc)));
      case INSERT:
        if (ag[t].st == St::blocked || !alive(t)) return done("!terr");
        if (!in_ring(t)) push_back(t);
        return done("ok");
      case REMOVE:
        if (ag[t].st == St::blocked) return done("!terr");
        if (!in_ring(t)) return done("ok");
        if (t == a) return done("!terr");
        ring_erase(t);
        ag[t].st = St::paused;
        return done("ok");
      case RUN_T:
        if (t == a) return done("ok");
        if (ag[t].st == St::blocked || !alive(t)) return done("!terr");
        if (!in_ring(t)) push_back(t);
        rotate_to(t);
        return away(a);
      case SWITCH:
        if (t == a) return done("ok");
        if (ag[t].st == St::blocked || !alive(t)) return done("!terr");
        if (!in_ring(t)) insert_after_cur(t);
        ring.erase(ring.begin());
        ag[a].st = St::paused;
        rotate_to(t);
        return away(a);
      case CLOSE:
        ch[s.c].closing = true;
        return done("ok");
      case OPEN:
        ch[s.c].closing = false;
        return done("ok");
      case PREF:
        ch[s.c].pref = s.pref;
        return done("ok");
      case SCHEDALL:
        ch[s.c].schedall = s.flag;
        return done("ok");
      case SELECT:
        return select(a, pc, s);
      case SETUP:
        if (ag[t].st != St::unborn) return done("!terr");
        push_back(t);
        return done("ok");
      case BIND:
        if (ag[t].st == St::unborn) ag[t].st = St::paused;
        return done("ok");
      case kOps:
        break;
    }
    return done("?");
  }

  // finish(a, err): §1.9 / §1.10 for a tasklet that ends (err: the kind that escaped, if any).
  void finish(int a, const std::optional<std::string>& err) {
    ag[a].st = St::dead;
    ring.erase(ring.begin());
    if (err) {
      // Main (the only watchdog) gets the error and runs next, ahead of everyone else.
      ag[0].bomb = err;
      if (ag[0].st == St::blocked) cancel_block(0);
      if (ag[0].st == St::ring) ring_erase(0);
      ring.insert(ring.begin(), 0);
      ag[0].st = St::ring;
    } else if (ring.empty()) {
      if (ag[0].st == St::blocked) {
        const bool sending = ag[0].dir > 0;
        cancel_block(0);
        ag[0].bomb = sending ? "mainsend" : "mainrecv";
      }
      revive_main();
    }
  }

  // complete(a, text, res): logs a finished step of tasklet a and applies its exception, if any.
  // Returns false if the tasklet died.
  bool complete(int a, const std::string& text, const std::string& res) {
    log.push_back(text + " " + res);
    if (res.empty() || res[0] != '!') return true;
    std::string kind = res.substr(1);
    if (kind == kExit) {
      finish(a, std::nullopt);
      return false;
    }
    if (pg->catches[static_cast<std::size_t>(a)]) return true;
    finish(a, kind);
    return false;
  }

  std::string take_result(int a) {
    MAgent& m = ag[a];
    if (m.bomb) {
      std::string r = "!" + *m.bomb;
      m.bomb.reset();
      return r;
    }
    return m.pend_res;
  }

  // run_tasklet(a): a (a tasklet) has just become current; run it until it switches away.
  void run_tasklet(int a) {
    MAgent& m = ag[a];
    const auto& script = pg->scripts[static_cast<std::size_t>(a)];
    if (!m.started) {
      m.started = true;
      if (m.bomb) {  // killed or thrown into before it ever ran: dies without running its code
        std::string k = *m.bomb;
        m.bomb.reset();
        finish(a, k == kExit ? std::nullopt : std::optional<std::string>(k));
        return;
      }
      log.push_back(std::to_string(a) + ":start");
    } else {
      if (!complete(a, m.pend_text, take_result(a))) return;
    }
    while (m.pc < script.size()) {
      const Step& s = script[m.pc];
      std::size_t pc = m.pc++;
      Outcome o = exec(a, pc, s);
      if (o.switched) {
        m.pend_text = step_text(a, s);
        return;
      }
      if (!complete(a, step_text(a, s), o.res)) return;
    }
    log.push_back(std::to_string(a) + ":end");
    finish(a, std::nullopt);
  }

  void main_step(std::size_t pc, const Step& s) {
    Outcome o = exec(0, pc, s);
    if (!o.switched) {
      log.push_back(step_text(0, s) + " " + o.res);
      return;
    }
    // Bounded: every script step runs at most once, so the others run out of steps.
    while (cur() != 0) run_tasklet(cur());
    log.push_back(step_text(0, s) + " " + take_result(0));
  }
};

// ---- comparison ------------------------------------------------------------------------------

int agent_of(const Real& R, const tasklet& t) {
  for (std::size_t i = 0; i < R.handles.size(); ++i)
    if (R.handles[i] == t) return static_cast<int>(i);
  return -1;
}

std::string join(const std::vector<int>& v) {
  std::string r;
  for (int x : v) r += std::to_string(x) + " ";
  return r;
}

void compare(const Real& R, const Model& M, const std::string& when) {
  auto bad = [&](const std::string& what) { fail(when + ": " + what, R.log, M.log); };
  if (R.log != M.log) bad("execution logs differ");
  if (!stackless::getcurrent().is_main()) bad("main is not current");
  if (stackless::getruncount() != static_cast<int>(M.ring.size()))
    bad("runcount " + std::to_string(stackless::getruncount()) + " vs model " +
        std::to_string(M.ring.size()));
  std::vector<int> ring{0};
  for (tasklet t = stackless::getcurrent().next(); t && !t.is_main() && ring.size() < 16;
       t = t.next())
    ring.push_back(agent_of(R, t));
  if (ring != M.ring) bad("run ring [" + join(ring) + "] vs model [" + join(M.ring) + "]");
  for (int c = 0; c < R.pg->nc; ++c) {
    const auto& rc = R.chans[c];
    const MChan& mc = M.ch[c];
    if (rc.balance() != mc.balance())
      bad("balance of c" + std::to_string(c) + ": " + std::to_string(rc.balance()) + " vs model " +
          std::to_string(mc.balance()));
    if (rc.closing() != mc.closing) bad("closing of c" + std::to_string(c));
    std::vector<int> q;
    for (tasklet t = rc.queue(); t && q.size() < 16; t = t.next()) q.push_back(agent_of(R, t));
    std::vector<int> mq;  // queue() lists plain waiters only (a select's cases are not in it)
    for (const MEntry& e : mc.q)
      if (e.cs < 0) mq.push_back(e.agent);
    if (q != mq) bad("queue of c" + std::to_string(c) + " [" + join(q) + "]");
  }
  std::size_t alive = 0;
  for (int a = 1; a <= R.pg->nt; ++a) {
    const tasklet& t = R.handles[static_cast<std::size_t>(a)];
    const St s = M.ag[a].st;
    const bool m_alive = M.alive(a);
    alive += m_alive;
    if (t.alive() != m_alive || t.blocked() != (s == St::blocked) ||
        t.paused() != (s == St::paused) || t.scheduled() != (s == St::ring || s == St::blocked))
      bad("state of tasklet " + std::to_string(a));
  }
  if (stackless::alive_tasklets() != alive) bad("alive_tasklets()");
}

// Kills whatever is left: every input starts from a clean scheduler.
void cleanup(Real& R) {
  for (int round = 0; round < 50 && stackless::alive_tasklets() > 0; ++round) {
    for (int a = 1; a <= R.pg->nt; ++a) {
      try {
        R.handles[static_cast<std::size_t>(a)].kill();
      } catch (...) {
        // Errors escaping other tasklets while the victims die are routed to main: ignore.
      }
    }
  }
  if (stackless::alive_tasklets() != 0 || stackless::getruncount() != 1 ||
      !stackless::getcurrent().is_main() || stackless::get_stack_stats().in_use != 0) {
    std::fprintf(stderr,
                 "\n*** LIVENESS: %zu tasklet(s) survive 50 rounds of kill(), runcount %d\n",
                 stackless::alive_tasklets(), stackless::getruncount());
    std::abort();
  }
  for (int c = 0; c < R.pg->nc; ++c) {
    if (R.chans[c].balance() != 0) {
      std::fprintf(stderr, "\n*** channel %d keeps balance %d with no tasklet alive\n", c,
                   R.chans[c].balance());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Program pg = decode(data, size);
  Real R;
  R.pg = &pg;
  R.handles.push_back(stackless::getmain());
  for (int a = 1; a <= pg.nt; ++a) R.handles.push_back(tasklet([a] { interp(a); }));
  R.born.assign(pg.nt + 1, false);
  R.chans.resize(pg.nc);
  g_real = &R;
  g_real_rng = select_rng{};
  stackless::detail::set_select_random(&real_select_random);
  Model M(pg);

  for (std::size_t pc = 0; pc < pg.main_steps.size(); ++pc) {
    const Step& s = pg.main_steps[pc];
    std::string res;
    try {
      res = real_exec(0, static_cast<int>(pc), s);
    } catch (...) {
      res = "!" + classify(std::current_exception());
    }
    R.log.push_back(step_text(0, s) + " " + res);
    M.main_step(pc, s);
    compare(R, M, "after main step " + std::to_string(pc) + " (" + step_text(0, s) + ")");
  }
  // STACKLESS_FUZZ_TRACE=1 prints the execution log (to read what an input does).
  if (std::getenv("STACKLESS_FUZZ_TRACE")) {
    for (const auto& l : R.log) std::fprintf(stderr, "  %s\n", l.c_str());
    std::fprintf(stderr, "--\n");
  }
  cleanup(R);
  g_real = nullptr;
  return 0;
}
