// Port of the channel callback tests:
//   Stackless/unittests/test_chan_cb.py (ChannelCallbackTestCase.test0)
//   pypy lib_pypy/pypy_test/test_stackless.py (test_channel_callback)
// plus the "Recursive channel call due to callbacks!" rule of channelobject.c (NOTIFY_CHANNEL).
// The callback is called before every send/receive as cb(channel, tasklet, sending, will_block).
#include "fixture.hpp"
#include "helpers.hpp"

#include <string>
#include <vector>

using namespace stackless;
using namespace chtest;

namespace {

struct record {
  channel_base ch;
  tasklet t;
  bool sending;
  bool will_block;
};

// ChannelMonitor of test_chan_cb.py. Python's monitor also records tasklet.tempval (the value
// being sent); C++ tasklets have no tempval, so the callback cannot see the value.
struct channel_monitor {
  std::vector<record> history;
  void operator()(const channel_base& ch, const tasklet& t, bool sending, bool will_block) {
    history.push_back({ch, t, sending, will_block});
  }
};

bool same(const record& r, const channel_base& ch, const tasklet& t, bool sending, bool block) {
  return r.ch == ch && r.t == t && r.sending == sending && r.will_block == block;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(ChannelCallbackTestCase, clean_scheduler)

// test_chan_cb.py test0: "Simple monitored channel send from main tasklet."
BOOST_AUTO_TEST_CASE(test0) {
  channel<int> chan;
  tasklet main = getmain();  // implicit sender
  int got = 0;
  tasklet receiver = tasklet([&](channel<int> ch) { got = ch.receive(); })(chan);

  channel_monitor mon;
  auto* monp = &mon;
  set_channel_callback(
      [monp](const channel_base& ch, const tasklet& t, bool s, bool b) { (*monp)(ch, t, s, b); });
  const int val = 42;
  chan.send(val);
  set_channel_callback(nullptr);

  BOOST_TEST(got == val);
  BOOST_REQUIRE(mon.history.size() == 2u);
  // main sends first; the receiver is runnable but not waiting yet, so main will block
  BOOST_TEST(same(mon.history[0], chan, main, true, true));
  // then the receiver takes main's value without blocking
  BOOST_TEST(same(mon.history[1], chan, receiver, false, false));
  BOOST_TEST(!receiver.alive());
}

// pypy test_stackless.py test_channel_callback: the exact sequence of callback arguments.
BOOST_AUTO_TEST_CASE(test_channel_callback) {
  std::vector<std::string> res;
  std::vector<record> cb;
  set_channel_callback([&](const channel_base& ch, const tasklet& t, bool sending, bool block) {
    cb.push_back({ch, t, sending, block});
  });
  channel<std::string> chan;
  tasklet task = tasklet([&] {
    chan.send("hello");
    res.push_back(chan.receive());
  })();
  res.push_back(chan.receive());
  chan.send("world");
  BOOST_TEST(res == (std::vector<std::string>{"hello", "world"}));
  tasklet maintask = getmain();
  BOOST_REQUIRE(cb.size() == 4u);
  BOOST_TEST(same(cb[0], chan, maintask, false, true));
  BOOST_TEST(same(cb[1], chan, task, true, false));
  BOOST_TEST(same(cb[2], chan, maintask, true, true));
  BOOST_TEST(same(cb[3], chan, task, false, false));
  set_channel_callback(nullptr);
  BOOST_TEST(!task.alive());
}

// set_channel_callback returns the previous callback; get_channel_callback reads it.
BOOST_AUTO_TEST_CASE(set_returns_previous) {
  BOOST_TEST(!get_channel_callback());
  int which = 0;
  channel_callback a = [&](const channel_base&, const tasklet&, bool, bool) { which = 1; };
  channel_callback b = [&](const channel_base&, const tasklet&, bool, bool) { which = 2; };
  BOOST_TEST(!set_channel_callback(a));
  channel_callback prev = set_channel_callback(b);
  BOOST_REQUIRE(prev);
  prev(channel<int>(), getcurrent(), true, true);
  BOOST_TEST(which == 1);
  BOOST_TEST(static_cast<bool>(get_channel_callback()));
  channel_callback cur = set_channel_callback(nullptr);
  BOOST_REQUIRE(cur);
  cur(channel<int>(), getcurrent(), true, true);
  BOOST_TEST(which == 2);
  BOOST_TEST(!get_channel_callback());
}

// The callback runs *before* the operation: it sees the balance as it was, and it is called
// even when the operation then fails (block_trap, closed channel, deadlock).
BOOST_AUTO_TEST_CASE(called_before_operation) {
  channel<int> c;
  std::vector<int> balances;
  std::vector<bool> blocks;
  set_channel_callback([&](const channel_base& ch, const tasklet&, bool, bool block) {
    balances.push_back(ch.balance());
    blocks.push_back(block);
  });
  BOOST_CHECK_EXCEPTION(c.receive(), deadlock_error, what_is(kDeadlock));
  {
    block_trap_guard trap;
    BOOST_CHECK_EXCEPTION(c.send(1), block_trap_error, what_is(kBlockTrap));
  }
  c.close();
  BOOST_CHECK_EXCEPTION(c.send(1), channel_closed, what_is(kClosed));
  c.open();
  tasklet([&] { c.send(5); })();
  run();                // the sender blocks: callback with balance 0, will_block
  int v = c.receive();  // balance 1, no block
  set_channel_callback(nullptr);
  run();
  BOOST_TEST(v == 5);
  BOOST_TEST(balances == (std::vector<int>{0, 0, 0, 0, 1}));
  BOOST_TEST(blocks == (std::vector<bool>{true, true, true, true, false}));
}

// Every kind of operation is reported: send_exception, send_sequence, iteration, channel<void>.
BOOST_AUTO_TEST_CASE(all_operations_reported) {
  std::vector<std::string> ops;
  set_channel_callback([&](const channel_base&, const tasklet& t, bool sending, bool block) {
    ops.push_back(std::string(t.is_main() ? "main" : "t") + (sending ? ".send" : ".recv") +
                  (block ? "!" : ""));
  });
  channel<int> c;
  tasklet([&] {
    c.send_sequence(std::vector<int>{1, 2});
    c.send_exception<stop_iteration>();
  })();
  int sum = 0;
  for (int v : c) sum += v;
  channel<void> s;
  tasklet([&] { s.receive(); })();
  s.send();
  run();
  set_channel_callback(nullptr);
  BOOST_TEST(sum == 3);
  event_log expected;
  // main receives (blocks); t sends 1 to it (main preferred, runs at once); main receives again
  // and blocks; t sends 2; main blocks again; t sends the stop_iteration; main's loop ends.
  for (const char* e : {"main.recv!", "t.send", "main.recv!", "t.send", "main.recv!", "t.send",
                        "main.send!", "t.recv"})
    expected(e);
  event_log got;
  for (auto& o : ops) got(o);
  BOOST_TEST(got.str() == expected.str());
}

// channelobject.c NOTIFY_CHANNEL: a channel operation from inside the callback raises
// RuntimeError("Recursive channel call due to callbacks!"); the outer operation is unaffected.
BOOST_AUTO_TEST_CASE(recursive_channel_call) {
  channel<int> c, other;
  std::vector<std::string> errors;
  int calls = 0;
  set_channel_callback([&](const channel_base&, const tasklet&, bool, bool) {
    ++calls;
    try {
      other.send(1);
    } catch (const error& e) {
      errors.push_back(e.what());
    }
    try {
      c.receive();
    } catch (const error& e) {
      errors.push_back(e.what());
    }
  });
  tasklet([&] { c.send(9); })();
  int v = c.receive();
  set_channel_callback(nullptr);
  run();
  BOOST_TEST(v == 9);
  BOOST_TEST(calls == 2);
  BOOST_TEST(errors == (std::vector<std::string>(4, kRecursive)));
  BOOST_TEST(other.balance() == 0);
  BOOST_TEST(c.balance() == 0);
}

// An exception escaping the callback aborts the operation before anything changed (our
// documented behaviour; Python would leave the error set and go on).
BOOST_AUTO_TEST_CASE(callback_exception_aborts_operation) {
  channel<int> c;
  tasklet r = tasklet([&] { c.receive(); })();
  run();
  set_channel_callback(
      [](const channel_base&, const tasklet&, bool, bool) { throw index_error(); });
  BOOST_CHECK_THROW(c.send(1), index_error);
  set_channel_callback(nullptr);
  BOOST_TEST(c.balance() == -1);
  BOOST_TEST(r.blocked());
  // and the flag is reset: channel operations work again, also from a new callback
  int calls = 0;
  set_channel_callback([&](const channel_base&, const tasklet&, bool, bool) { ++calls; });
  c.send(2);
  set_channel_callback(nullptr);
  BOOST_TEST(calls == 1);  // main's send only: r's receive was reported when it blocked
  BOOST_TEST(!r.alive());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ChannelCallbackLifetime, clean_scheduler)

// A one-shot monitor that uninstalls itself from inside the call must not destroy the running
// callback (Stackless owns a reference to the hook while calling it: NOTIFY_CHANNEL's
// Py_INCREF). The captured state is used after set_channel_callback(nullptr).
BOOST_AUTO_TEST_CASE(callback_uninstalls_itself) {
  std::vector<std::string> log;
  std::string tag(100, 'x');  // heap-allocated capture: a use after free shows under ASan
  set_channel_callback([&log, tag](const channel_base&, const tasklet&, bool sending, bool) {
    set_channel_callback(nullptr);
    log.push_back(tag + (sending ? ":send" : ":recv"));
  });
  channel<int> c;
  tasklet([&] { c.send(1); })();
  BOOST_TEST(c.receive() == 1);
  run();
  BOOST_REQUIRE(log.size() == 1u);  // only the first operation was seen
  BOOST_TEST(log[0] == tag + ":recv");
  BOOST_TEST(!get_channel_callback());
}

// A callback that replaces itself with another: the new one sees the next operation.
BOOST_AUTO_TEST_CASE(callback_replaces_itself) {
  std::vector<std::string> log;
  std::string first(64, 'a'), second(64, 'b');
  channel_callback next = [&log, second](const channel_base&, const tasklet&, bool, bool) {
    log.push_back(second);
  };
  set_channel_callback([&log, first, next](const channel_base&, const tasklet&, bool, bool) {
    set_channel_callback(next);
    log.push_back(first);
  });
  channel<int> c;
  tasklet([&] { c.send(1); })();
  c.receive();
  run();
  set_channel_callback(nullptr);
  BOOST_TEST(log == (std::vector<std::string>{first, second}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ScheduleCallbackOnChannelSwitch, clean_scheduler)

// The switch a channel hand-off makes calls the schedule callback; a one-shot callback that
// uninstalls itself there must not destroy itself while it runs (same rule as the channel
// callback; Stackless holds a reference to the hook during the call).
BOOST_AUTO_TEST_CASE(schedule_callback_uninstalls_itself) {
  std::vector<std::string> log;
  std::string tag(100, 's');
  set_schedule_callback([&log, tag](const tasklet&, const tasklet& next) {
    set_schedule_callback(nullptr);
    log.push_back(tag + (next.is_main() ? ":main" : ":tasklet"));
  });
  channel<int> c;
  tasklet([&] { c.send(1); })();
  BOOST_TEST(c.receive() == 1);  // main blocks: the first switch goes to the sender
  run();
  BOOST_REQUIRE(log.size() == 1u);
  BOOST_TEST(log[0] == tag + ":tasklet");
  BOOST_TEST(!get_schedule_callback());
}

BOOST_AUTO_TEST_SUITE_END()
