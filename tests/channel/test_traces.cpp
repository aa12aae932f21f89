// Exact scheduling traces of channel operations:
//   pypy lib_pypy/pypy_test/test_stackless.py (test_with_channel per preference, the counters,
//     pipes, test_wait_two, balance and send_exception/send_sequence tests)
//   syncless test/stackless_test.py (testStackless's channel part with run-queue assertions,
//     testChannelReceiveLinkedList, testRunBlockedTasklet), run against real Stackless 2.6
//   docs/stackless-semantics.md §1.7: the verified preference / schedule_all tables.
#include "fixture.hpp"
#include "helpers.hpp"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace bdata = boost::unit_test::data;
using namespace stackless;
using namespace chtest;

namespace {

// A channel "setting": a preference (-1, 0, 1) or kScheduleAll.
constexpr int kScheduleAll = 2;

void apply_setting(channel_base& c, int setting) {
  if (setting == kScheduleAll) {
    c.set_schedule_all(true);
  } else {
    c.set_preference(setting);
  }
}

// pypy test_with_channel: f sends 0..n-1 (logging s<i> first) then -1; g logs r<v>.
std::string with_channel_trace(int setting, int n) {
  event_log rlist;
  channel<int> ch;
  apply_setting(ch, setting);
  tasklet([&] {
    for (int i = 0; i < n; ++i) {
      rlist("s" + std::to_string(i));
      ch.send(i);
    }
    ch.send(-1);
  })();
  tasklet([&] {
    while (true) {
      int val = ch.receive();
      if (val == -1) break;
      rlist("r" + std::to_string(val));
    }
  })();
  run();
  BOOST_TEST(rlist.items.size() == static_cast<std::size_t>(2 * n));
  return rlist.str();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Test_Stackless, clean_scheduler)

// pypy test_stackless.py test_with_channel: 10 items, preferences -1, 0, 1.
BOOST_DATA_TEST_CASE_F(clean_scheduler, test_with_channel, bdata::make({-1, 0, 1}), preference) {
  static const std::map<int, std::string> pref = {
      {-1, "s0 r0 s1 r1 s2 r2 s3 r3 s4 r4 s5 r5 s6 r6 s7 r7 s8 r8 s9 r9"},
      {0, "s0 r0 s1 s2 r1 r2 s3 s4 r3 r4 s5 s6 r5 r6 s7 s8 r7 r8 s9 r9"},
      {1, "s0 s1 r0 s2 r1 s3 r2 s4 r3 s5 r4 s6 r5 s7 r6 s8 r7 s9 r8 r9"},
  };
  BOOST_TEST(with_channel_trace(preference, 10) == pref.at(preference));
}

// docs §1.7 verified table (4 items), including schedule_all.
BOOST_DATA_TEST_CASE_F(clean_scheduler, preference_table, bdata::make({-1, 0, 1, kScheduleAll}),
                       setting) {
  static const std::map<int, std::string> table = {
      {-1, "s0 r0 s1 r1 s2 r2 s3 r3"},
      {0, "s0 r0 s1 s2 r1 r2 s3 r3"},
      {1, "s0 s1 r0 s2 r1 s3 r2 r3"},
      {kScheduleAll, "s0 s1 r0 s2 r1 s3 r2 r3"},
  };
  BOOST_TEST(with_channel_trace(setting, 4) == table.at(setting));
}

// docs §1.7 three-party table, left column: main sends to a blocked receiver R while X (created
// after R blocked) is runnable.
BOOST_DATA_TEST_CASE_F(clean_scheduler, three_party_send, bdata::make({-1, 0, 1, kScheduleAll}),
                       setting) {
  static const std::map<int, std::string> table = {
      {-1, "send R:1 X after-send"},
      {0, "send after-send X R:1"},
      {1, "send after-send X R:1"},
      {kScheduleAll, "send X R:1 after-send"},
  };
  event_log log;
  channel<int> ch;
  apply_setting(ch, setting);
  tasklet r = tasklet([&] { log("R:" + std::to_string(ch.receive())); })();
  run();
  BOOST_TEST(r.blocked());
  tasklet([&] { log("X"); })();
  log("send");
  ch.send(1);
  log("after-send");
  run();
  BOOST_TEST(log.str() == table.at(setting));
  BOOST_TEST(ch.balance() == 0);
}

// docs §1.7 three-party table, right column: main receives from a blocked sender S.
BOOST_DATA_TEST_CASE_F(clean_scheduler, three_party_receive, bdata::make({-1, 0, 1, kScheduleAll}),
                       setting) {
  static const std::map<int, std::string> table = {
      {-1, "recv:v after-recv X S-resumed"},
      {0, "recv:v after-recv X S-resumed"},
      {1, "S-resumed X recv:v after-recv"},
      {kScheduleAll, "X S-resumed recv:v after-recv"},
  };
  event_log log;
  channel<std::string> ch;
  apply_setting(ch, setting);
  tasklet s = tasklet([&] {
    ch.send("v");
    log("S-resumed");
  })();
  run();
  BOOST_TEST(s.blocked());
  tasklet([&] { log("X"); })();
  std::string v = ch.receive();
  log("recv:" + v);
  log("after-recv");
  run();
  BOOST_TEST(log.str() == table.at(setting));
}

// set_preference stores the sign (stackless-testsuite testAttr_preference; syncless
// `c.preference = 2  # same as c.preference = 1`).
BOOST_DATA_TEST_CASE_F(clean_scheduler, preference_stores_sign,
                       bdata::make({-7, -2, -1, 0, 1, 2, 42}), p) {
  channel<int> c;
  c.set_preference(p);
  BOOST_TEST(c.preference() == (p > 0 ? 1 : (p < 0 ? -1 : 0)));
}

// FIFO: receivers A, B, C blocked in that order get 0, 1, 2 (semantics §1.7 [V]).
BOOST_AUTO_TEST_CASE(fifo_receivers) {
  channel<int> c;
  std::map<std::string, int> got;
  for (const char* name : {"A", "B", "C"})
    tasklet([&](std::string n) { got[n] = c.receive(); })(name);
  run();
  BOOST_TEST(c.balance() == -3);
  for (int i = 0; i < 3; ++i) c.send(i);
  BOOST_TEST(got["A"] == 0);
  BOOST_TEST(got["B"] == 1);
  BOOST_TEST(got["C"] == 2);
}

// FIFO for senders too: the queue() walk shows the blocking order.
BOOST_AUTO_TEST_CASE(fifo_senders_queue_walk) {
  channel<int> c;
  std::vector<tasklet> ts;
  for (int i = 0; i < 3; ++i) ts.push_back(tasklet([&c](int v) { c.send(v); })(i));
  run();
  BOOST_TEST(c.balance() == 3);
  std::vector<tasklet> walk;
  for (tasklet t = c.queue(); t; t = t.next()) walk.push_back(t);
  BOOST_TEST((walk == ts));
  BOOST_TEST(!ts[0].prev());
  BOOST_TEST((ts[2].prev() == ts[1]));
  for (int i = 0; i < 3; ++i) BOOST_TEST(c.receive() == i);
  run();
}

// pypy test_send_counter: senders that schedule() n times block in order of n.
BOOST_AUTO_TEST_CASE(test_send_counter) {
  std::vector<int> numbers(20);
  for (int i = 0; i < 20; ++i) numbers[i] = i;
  std::shuffle(numbers.begin(), numbers.end(), std::mt19937(12345));
  channel<int> ch;
  for (int each : numbers) {
    tasklet([&ch](int n) {
      for (int i = 0; i < n; ++i) schedule();
      ch.send(n);
    })(each);
  }
  run();
  std::vector<int> rlist;
  while (ch.balance()) rlist.push_back(ch.receive());
  std::sort(numbers.begin(), numbers.end());
  BOOST_TEST(rlist == numbers);
  run();
}

// pypy test_receive_counter
BOOST_AUTO_TEST_CASE(test_receive_counter) {
  std::vector<int> numbers(20);
  for (int i = 0; i < 20; ++i) numbers[i] = i;
  std::shuffle(numbers.begin(), numbers.end(), std::mt19937(54321));
  std::vector<int> rlist;
  channel<int> ch;
  for (int each : numbers) {
    tasklet([&](int n) {
      for (int i = 0; i < n; ++i) schedule();
      ch.receive();
      rlist.push_back(n);
    })(each);
  }
  run();
  while (ch.balance()) ch.send(0);
  std::sort(numbers.begin(), numbers.end());
  BOOST_TEST(rlist == numbers);
}

// pypy test_simple_channel
BOOST_AUTO_TEST_CASE(test_simple_channel) {
  event_log output;
  channel<std::string> ch;
  tasklet([&] {
    output("sending");
    ch.send("foo");
  })();
  schedule();
  tasklet([&] {
    output("receiving");
    output(ch.receive());
  })();
  schedule();
  run();
  BOOST_TEST(output.str() == "sending receiving foo");
}

// pypy test_balance_zero, test_balance_send, test_balance_recv
BOOST_AUTO_TEST_CASE(test_balance) {
  channel<std::string> ch;
  BOOST_TEST(ch.balance() == 0);
  tasklet s = tasklet([&] { ch.send("foo"); })();
  run();
  BOOST_TEST(ch.balance() == 1);
  s.kill();
  channel<std::string> ch2;
  tasklet r = tasklet([&] { ch2.receive(); })();
  run();
  BOOST_TEST(ch2.balance() == -1);
  r.kill();
  BOOST_TEST(ch2.balance() == 0);
}

// pypy test_send_exception: send_exception(Exception, 'test')
BOOST_AUTO_TEST_CASE(test_send_exception) {
  channel<int> chan;
  std::string caught;
  tasklet([&] {
    try {
      chan.receive();
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
  })();
  tasklet([&] { chan.send_exception<std::runtime_error>("test"); })();
  run();
  BOOST_TEST(caught == "test");
}

// pypy test_send_sequence: main sends a 7-item sequence ending in None to a receiver.
BOOST_AUTO_TEST_CASE(test_send_sequence) {
  std::vector<int> res;
  std::vector<std::optional<int>> lst = {1, 2, 3, 4, 5, 6, std::nullopt};
  channel<std::optional<int>> chan;
  tasklet t = tasklet([&] {
    std::optional<int> r = chan.receive();
    while (r) {
      res.push_back(*r);
      r = chan.receive();
    }
  })();
  std::size_t n = chan.send_sequence(lst);
  BOOST_TEST(n == 7u);
  BOOST_TEST(res == (std::vector<int>{1, 2, 3, 4, 5, 6}));
  BOOST_TEST(!t.alive());
}

// pypy test_simple_pipe
BOOST_AUTO_TEST_CASE(test_simple_pipe) {
  channel<int> X, Y;
  tasklet([&] { Y.send(X.receive()); })();
  run();
  X.send(42);
  BOOST_TEST(Y.receive() == 42);
  run();  // the pipe was made runnable by the receive; let it end
}

// pypy test_nested_pipe
BOOST_AUTO_TEST_CASE(test_nested_pipe) {
  auto pipe = [](channel<int> X, channel<int> Y) { Y.send(X.receive()); };
  channel<int> X, Y;
  tasklet([&] {
    channel<int> X2, Y2;
    tasklet{pipe}(X2, Y2);
    int x_val = X.receive();
    X2.send(x_val);
    int y2_val = Y2.receive();
    Y.send(y2_val);
  })();
  X.send(13);
  BOOST_TEST(Y.receive() == 13);
  run();
}

// pypy test_wait_two: wait for whichever of two channels delivers first.
BOOST_AUTO_TEST_CASE(test_wait_two) {
  using msg = std::pair<channel<int>, int>;
  auto sleep = [](channel<int> X, channel<msg> Y) {
    int value = X.receive();
    Y.send(msg(X, value));
  };
  channel<int> X, Y;
  channel<std::pair<int, int>> ret_chan;
  std::vector<tasklet> sleepers;
  tasklet([&] {
    channel<msg> barrier;
    sleepers.push_back(tasklet(sleep)(X, barrier));
    sleepers.push_back(tasklet(sleep)(Y, barrier));
    msg ret = barrier.receive();
    if (ret.first == X) {
      ret_chan.send({1, ret.second});
    } else {
      ret_chan.send({2, ret.second});
    }
  })();
  Y.send(42);
  X.send(42);
  std::pair<int, int> value = ret_chan.receive();
  BOOST_TEST(value.first == 2);
  BOOST_TEST(value.second == 42);
  run();
  // The loser of the race is still blocked on the barrier, a channel only it can reach now (it
  // keeps it alive). Python's GC would collect the cycle; here it stays until killed.
  BOOST_TEST(alive_tasklets() == 1u);
  BOOST_TEST(!sleepers[1].alive());  // Y's sleeper won
  BOOST_TEST(sleepers[0].blocked());
  sleepers[0].kill();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(StacklessTest, clean_scheduler)

// syncless test/stackless_test.py testStackless, the channel part (up to the Cooperative
// tasklets, which are the runtime's business): four workers on one channel, sends with each
// preference, and the exact run-queue ring after each step.
BOOST_AUTO_TEST_CASE(testStackless) {
  event_log events;
  channel<std::string> c;
  auto worker = [&](std::string name) {
    while (true) {
      events(name + ".wait");
      events(name + "/" + c.receive());
    }
  };
  auto single = [&](std::string name) { events(name + ".single"); };
  auto Run = [&] {
    while (true) {
      events("schedule");
      std::size_t i = events.items.size();
      schedule();
      if (i == events.items.size()) break;
    }
    events("done");
  };
  auto cur = [] { return getcurrent(); };

  BOOST_TEST(getcurrent().is_main());
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST((cur() == cur().next()));
  BOOST_TEST((cur() == cur().prev()));
  tasklet ta = tasklet(worker)("A");
  tasklet tb = tasklet(worker)("B");
  tasklet tc = tasklet(worker)("C");
  tasklet td = tasklet(worker)("D");
  BOOST_TEST(getruncount() == 5);
  BOOST_TEST((td == cur().prev()));
  BOOST_TEST((ta == cur().next()));
  BOOST_TEST((td.next() == cur()));
  BOOST_TEST((td.prev() == tc));

  BOOST_TEST(c.preference() == -1);
  BOOST_TEST(c.balance() == 0);
  events.clear();
  events("send");
  BOOST_TEST(getruncount() == 5);
  c.send("msg");
  BOOST_TEST(getruncount() == 1);
  Run();
  BOOST_TEST(events.str() == "send A.wait A/msg A.wait B.wait C.wait D.wait schedule done");

  BOOST_TEST(c.preference() == -1);
  BOOST_TEST(c.balance() == -4);
  events.clear();
  events("send");
  c.set_preference(0);  // same as c.preference = 1
  BOOST_TEST(getruncount() == 1);
  c.send("msg");
  BOOST_TEST(getruncount() == 2);
  Run();
  BOOST_TEST(events.str() == "send schedule A/msg A.wait schedule done");

  BOOST_TEST(c.preference() == 0);
  BOOST_TEST(c.balance() == -4);
  events.clear();
  c.set_preference(1);
  events("send");
  BOOST_TEST(getruncount() == 1);
  c.send("msg");
  BOOST_TEST(getruncount() == 2);
  Run();
  BOOST_TEST(events.str() == "send schedule B/msg B.wait schedule done");

  BOOST_TEST(c.preference() == 1);
  events.clear();
  c.set_preference(2);  // same as c.preference = 1
  events("send");
  BOOST_TEST(getruncount() == 1);
  c.send("msg");
  c.send("msg");
  BOOST_TEST(getruncount() == 3);
  Run();
  BOOST_TEST(events.str() == "send schedule C/msg C.wait D/msg D.wait schedule done");

  BOOST_TEST(c.balance() == -4);
  events.clear();
  c.set_preference(5);
  events("send");
  BOOST_TEST(c.balance() == -4);
  BOOST_TEST(getruncount() == 1);
  tasklet t(single);
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST((t == t("T")));
  BOOST_TEST(getruncount() == 2);
  t.remove();
  BOOST_TEST(getruncount() == 1);
  t.insert();
  BOOST_TEST(getruncount() == 2);
  c.send("msg1");
  BOOST_TEST(c.balance() == -3);
  c.send("msg2");
  c.send("msg3");
  c.send("msg4");
  BOOST_TEST(getruncount() == 6);
  events("a4");
  BOOST_TEST(c.balance() == 0);
  c.send("msg5");
  BOOST_TEST(getruncount() == 5);
  events("a5");
  c.send("msg6");
  BOOST_TEST(getruncount() == 5);
  Run();
  BOOST_TEST(events.str() ==
             "send a4 T.single A/msg1 A.wait a5 B/msg2 B.wait schedule C/msg3 C.wait D/msg4 "
             "D.wait A/msg5 A.wait B/msg6 B.wait schedule done");

  BOOST_TEST((cur() == cur().next()));
  BOOST_TEST((cur() == cur().prev()));

  events.clear();
  BOOST_TEST(c.balance() == -4);
  c.set_preference(42);
  c.send("msg1");
  BOOST_TEST(c.balance() == -3);
  BOOST_TEST((tc == cur().next()));
  BOOST_TEST((tc == cur().prev()));
  BOOST_TEST((tc.prev() == cur()));
  BOOST_TEST((tc.next() == cur()));
  c.send("msg2");
  BOOST_TEST(c.balance() == -2);
  BOOST_TEST((tc == cur().next()));
  BOOST_TEST((td == cur().prev()));
  BOOST_TEST((td.next() == cur()));
  BOOST_TEST((td.prev() == tc));
  c.send("msg3");
  BOOST_TEST(c.balance() == -1);
  BOOST_TEST((tc == cur().next()));
  BOOST_TEST((ta == cur().prev()));
  BOOST_TEST((ta.next() == cur()));
  BOOST_TEST((ta.prev() == td));
  BOOST_TEST(events.str() == "");
  BOOST_TEST(getruncount() == 4);
  t = tasklet(single)("T");
  BOOST_TEST((t == cur().prev()));
  BOOST_TEST((ta == t.prev()));
  BOOST_TEST(t.alive());
  BOOST_TEST(getruncount() == 5);
  t.remove();
  BOOST_TEST(!t.next());
  BOOST_TEST((ta == cur().prev()));
  BOOST_TEST(t.alive());
  BOOST_TEST(getruncount() == 4);
  t.run();
  BOOST_TEST(getruncount() == 4);
  BOOST_TEST(!t.alive());
  BOOST_TEST(events.str() == "T.single");
  events.clear();
  td.run();
  BOOST_TEST(events.str() == "D/msg2 D.wait A/msg3 A.wait");
  events.clear();
  BOOST_TEST(c.balance() == -3);
  BOOST_TEST((tc == cur().next()));
  BOOST_TEST((tc == cur().prev()));
  BOOST_TEST((tc.prev() == cur()));
  BOOST_TEST((tc.next() == cur()));
  tc.run();
  BOOST_TEST(events.str() == "C/msg1 C.wait");
  events.clear();
  BOOST_TEST(c.balance() == -4);
  BOOST_TEST((cur() == cur().next()));
  BOOST_TEST((cur() == cur().prev()));

  // Killing the blocked workers takes them off the channel one by one.
  BOOST_TEST(-4 == c.balance());
  ta.kill();
  BOOST_TEST(-3 == c.balance());
  td.kill();
  BOOST_TEST(-2 == c.balance());
  tc.kill();
  BOOST_TEST(-1 == c.balance());
  tb.kill();
  BOOST_TEST(0 == c.balance());

  // SendBomb: a bomb sent as a value explodes in the receiver; send_throw is our analogue.
  std::exception_ptr bomb;
  try {
    throw zero_division_error("integer division or modulo by zero");
  } catch (...) {
    bomb = std::current_exception();
  }
  c.set_preference(1);
  for (int round = 0; round < 2; ++round) {
    tasklet([&] { c.send_throw(bomb); })();
    bool caught = false;
    try {
      c.receive();
    } catch (const zero_division_error& e) {
      caught = true;
      BOOST_TEST(std::string(e.what()) == "integer division or modulo by zero");
    }
    BOOST_TEST(caught);
    BOOST_TEST(0 == c.balance());
  }

  // SendException: send_exception(ValueError, 43)
  tasklet([&] { c.send_exception<value_error>(43); })();
  bool caught = false;
  try {
    c.receive();
  } catch (const value_error& e) {
    caught = true;
    BOOST_TEST(e.args == std::vector<int>{43});
  }
  BOOST_TEST(caught);
  run();
}

// syncless testChannelReceiveLinkedList: how next/prev link the tasklets blocked on a channel.
BOOST_AUTO_TEST_CASE(testChannelReceiveLinkedList) {
  channel<int> channel_obj;
  auto recv = [&] { channel_obj.receive(); };
  tasklet tasklet1 = tasklet(recv)();
  BOOST_TEST((tasklet1.next() == getcurrent()));

  schedule();
  BOOST_TEST(!tasklet1.next());
  BOOST_TEST(!tasklet1.prev());

  tasklet tasklet2 = tasklet(recv)();
  schedule();
  BOOST_TEST((tasklet1.next() == tasklet2));
  BOOST_TEST(!tasklet1.prev());

  tasklet tasklet3 = tasklet(recv)();
  schedule();
  BOOST_TEST((tasklet1.next() == tasklet2));
  BOOST_TEST((tasklet2.next() == tasklet3));
  BOOST_TEST(!tasklet3.next());
  BOOST_TEST(!tasklet1.prev());
  BOOST_TEST((tasklet2.prev() == tasklet1));
  BOOST_TEST((tasklet3.prev() == tasklet2));
  BOOST_TEST((channel_obj.queue() == tasklet1));

  // killing the middle one relinks its neighbours
  tasklet2.kill();
  BOOST_TEST((tasklet1.next() == tasklet3));
  BOOST_TEST((tasklet3.prev() == tasklet1));
  BOOST_TEST(channel_obj.balance() == -2);
  tasklet1.kill();
  BOOST_TEST((channel_obj.queue() == tasklet3));
  BOOST_TEST(!tasklet3.prev());
  tasklet3.kill();
  BOOST_TEST(!channel_obj.queue());
}

// syncless testRunBlockedTasklet: a blocked tasklet cannot be inserted, run or removed.
BOOST_AUTO_TEST_CASE(testRunBlockedTasklet) {
  channel<int> channel_obj;
  tasklet tasklet1 = tasklet([&] { channel_obj.receive(); })();
  BOOST_TEST(!tasklet1.blocked());
  schedule();
  BOOST_TEST(tasklet1.blocked());
  BOOST_CHECK_EXCEPTION(tasklet1.insert(), tasklet_error,
                        what_is("You cannot run a blocked tasklet"));
  BOOST_CHECK_EXCEPTION(tasklet1.run(), tasklet_error, what_is("You cannot run a blocked tasklet"));
  BOOST_CHECK_EXCEPTION(tasklet1.remove(), tasklet_error,
                        what_is("You cannot remove a blocked tasklet."));
  BOOST_TEST(tasklet1.blocked());
  BOOST_TEST(channel_obj.balance() == -1);
  tasklet1.kill();
}

// SYNC: main blocking in send while workers are runnable is normal; with preference 0 the
// sender continues and the receiver is appended (runcount grows by one).
BOOST_AUTO_TEST_CASE(main_blocks_while_others_runnable) {
  channel<int> c;
  int sum = 0;
  for (int i = 0; i < 4; ++i) tasklet([&] { sum += c.receive(); })();
  c.send(1);  // main blocks; worker 1 takes it; the others block after it
  BOOST_TEST(getruncount() == 1);
  BOOST_TEST(c.balance() == -3);
  c.set_preference(0);
  c.send(2);
  BOOST_TEST(getruncount() == 2);
  BOOST_TEST(sum == 1);
  run();
  BOOST_TEST(sum == 3);
  c.set_preference(-1);
  c.send(3);
  c.send(4);
  BOOST_TEST(sum == 10);
}

BOOST_AUTO_TEST_SUITE_END()
