// C++-specific channel properties that Python gets from its object model: move-only values,
// channel<void>, values that are moved (never copied) and never leaked — also when the receiver
// is killed before it resumes — and the lifetime of the shared channel state (handles, blocked
// tasklets pinning it, handles seen by callbacks).
#include "fixture.hpp"
#include "helpers.hpp"

#include <algorithm>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

using namespace stackless;
using namespace chtest;

namespace {
struct counted_reset {
  counted_reset() { counted::reset(); }
  ~counted_reset() { BOOST_TEST(counted::live == 0); }
};
}  // namespace

BOOST_FIXTURE_TEST_SUITE(MoveOnly, clean_scheduler)

// std::unique_ptr<int> through a blocked receiver and a blocked sender, each preference.
BOOST_AUTO_TEST_CASE(unique_ptr_both_directions) {
  for (int pref : {-1, 0, 1}) {
    channel<std::unique_ptr<int>> c;
    c.set_preference(pref);
    std::unique_ptr<int> got;
    tasklet([&] { got = c.receive(); })();
    run();
    c.send(std::make_unique<int>(7));
    run();
    BOOST_REQUIRE(got);
    BOOST_TEST(*got == 7);

    tasklet([&](int v) { c.send(std::make_unique<int>(v)); })(8);
    run();
    BOOST_TEST(c.balance() == 1);
    std::unique_ptr<int> p = c.receive();
    run();
    BOOST_REQUIRE(p);
    BOOST_TEST(*p == 8);
  }
}

// send_sequence of an owning container passed as an rvalue moves its elements, so it works for
// move-only types and copies nothing; an lvalue container is copied from.
BOOST_AUTO_TEST_CASE(send_sequence_moves_rvalue_container) {
  channel<std::unique_ptr<int>> c;
  std::vector<int> got;
  tasklet t = tasklet([&] {
    while (true) got.push_back(*c.receive());
  })();
  std::vector<std::unique_ptr<int>> v;
  for (int i = 0; i < 3; ++i) v.push_back(std::make_unique<int>(i));
  BOOST_TEST(c.send_sequence(std::move(v)) == 3u);
  BOOST_TEST(got == (std::vector<int>{0, 1, 2}));
  t.kill();
}

BOOST_AUTO_TEST_CASE(send_sequence_copies_lvalue_moves_rvalue) {
  counted_reset guard;
  channel<counted> c;
  int sum = 0;
  tasklet t = tasklet([&] {
    while (true) sum += c.receive().v;
  })();
  std::vector<counted> v;
  v.reserve(3);
  for (int i = 1; i <= 3; ++i) v.emplace_back(i);
  c.send_sequence(v);
  BOOST_TEST(counted::copies == 3);  // one per element: the lvalue container keeps its values
  BOOST_TEST(v.size() == 3u);
  c.send_sequence(std::move(v));
  BOOST_TEST(counted::copies == 3);  // none more
  BOOST_TEST(sum == 12);
  t.kill();
  v.clear();
}

// A value travels by moves only, in both directions and with every setting.
BOOST_AUTO_TEST_CASE(values_are_moved_not_copied) {
  counted_reset guard;
  for (int setting : {-1, 0, 1, 2}) {
    channel<counted> c;
    if (setting == 2) {
      c.set_schedule_all(true);
    } else {
      c.set_preference(setting);
    }
    int got = 0;
    tasklet([&] { got = c.receive().v; })();
    run();
    c.send(counted(1));
    run();
    BOOST_TEST(got == 1);
    tasklet([&] { c.send(counted(2)); })();
    run();
    got = c.receive().v;
    run();
    BOOST_TEST(got == 2);
  }
  BOOST_TEST(counted::copies == 0);
}

// A channel is a C++20 input range (Python: a channel is an iterator), also for move-only T:
// std::ranges algorithms consume it until a stop_iteration or close.
static_assert(std::ranges::input_range<channel<int>>);
static_assert(std::ranges::input_range<channel<std::unique_ptr<int>>>);
static_assert(std::input_iterator<channel<std::unique_ptr<int>>::iterator>);

BOOST_AUTO_TEST_CASE(channel_is_an_input_range) {
  channel<std::unique_ptr<int>> c;
  tasklet([&] {
    for (int i = 0; i < 3; ++i) c.send(std::make_unique<int>(i));
    c.send_exception<stop_iteration>();
  })();
  std::vector<std::unique_ptr<int>> got;
  std::ranges::move(c, std::back_inserter(got));
  BOOST_REQUIRE(got.size() == 3u);
  for (int i = 0; i < 3; ++i) BOOST_TEST(*got[i] == i);
  run();

  channel<int> d;
  for (int v : {5, 6, 7}) tasklet([&d](int x) { d.send(x); })(v);
  run();  // three blocked senders
  d.close();
  std::vector<int> ints;
  std::ranges::copy(d, std::back_inserter(ints));  // ends when closing and no sender waits
  BOOST_TEST(ints == (std::vector<int>{5, 6, 7}));
  BOOST_TEST(d.closed());
  run();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(VoidChannel, clean_scheduler)

// channel<void>: pure signals with the same balance, preference and exception rules.
BOOST_AUTO_TEST_CASE(signals) {
  channel<void> s;
  event_log log;
  tasklet([&] {
    s.receive();
    log("woken");
  })();
  run();
  BOOST_TEST(s.balance() == -1);
  s.send();  // preference -1: the receiver runs now
  log("after");
  BOOST_TEST(log.str() == "woken after");
  tasklet t = tasklet([&] {
    s.send();
    log("sent");
  })();
  run();
  BOOST_TEST(s.balance() == 1);
  BOOST_TEST((s.queue() == t));
  s.receive();
  BOOST_TEST(t.scheduled());
  run();
  BOOST_TEST(log.str() == "woken after sent");
  BOOST_CHECK_EXCEPTION(s.receive(), deadlock_error, what_is(kDeadlock));
  s.close();
  BOOST_CHECK_EXCEPTION(s.send(), channel_closed, what_is(kClosed));
  BOOST_TEST(s.closed());
}

BOOST_AUTO_TEST_CASE(void_exceptions_and_kill) {
  channel<void> s;
  int caught = 0;
  auto body = [&] {
    try {
      s.receive();
    } catch (const index_error&) {
      ++caught;
    }
  };
  tasklet{body}();
  run();
  s.send_exception<index_error>();
  tasklet t = tasklet([&] { s.send_throw(std::make_exception_ptr(index_error())); })();
  run();
  BOOST_TEST(s.balance() == 1);
  BOOST_CHECK_THROW(s.receive(), index_error);
  run();
  BOOST_TEST(caught == 1);
  tasklet{body}();
  run();
  s.send_exception(std::make_exception_ptr(index_error()));
  BOOST_TEST(caught == 2);
  tasklet k = tasklet([&] { s.send(); })();
  run();
  k.kill();
  BOOST_TEST(s.balance() == 0);
  BOOST_TEST(!k.alive());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(NoLeaks, clean_scheduler)

// A value handed to a receiver that is only made runnable (preference 1 favours the sender) and
// is then killed before it resumes is destroyed, never leaked.
BOOST_AUTO_TEST_CASE(value_to_killed_receiver_destroyed) {
  for (bool pending : {false, true}) {
    counted_reset guard;
    channel<counted> c;
    c.set_preference(1);
    bool resumed = false;
    tasklet r = tasklet([&] {
      counted v = c.receive();
      resumed = true;
    })();
    run();
    BOOST_TEST(r.blocked());
    c.send(counted(5));
    BOOST_TEST(!r.blocked());
    BOOST_TEST(r.scheduled());
    BOOST_TEST(counted::live == 1);  // waiting in the receiver's slot
    r.kill(pending);
    if (pending) run();
    BOOST_TEST(!r.alive());
    BOOST_TEST(!resumed);
    BOOST_TEST(counted::live == 0);
    BOOST_TEST(counted::copies == 0);
  }
}

// The same with preference 0 and with throw_exception instead of kill.
BOOST_AUTO_TEST_CASE(value_to_thrown_receiver_destroyed) {
  counted_reset guard;
  channel<counted> c;
  c.set_preference(0);
  bool caught = false;
  tasklet r = tasklet([&] {
    try {
      counted v = c.receive();
    } catch (const index_error&) {
      caught = true;
    }
  })();
  run();
  c.send(counted(6));
  BOOST_TEST(counted::live == 1);
  r.throw_exception(std::make_exception_ptr(index_error()));
  BOOST_TEST(caught);
  BOOST_TEST(counted::live == 0);
}

// A receiver that got a value but was removed from the run queue (paused) before it resumed,
// and whose last handle is then dropped, is killed (tasklet.hpp); the value is destroyed.
BOOST_AUTO_TEST_CASE(value_to_dropped_paused_receiver_destroyed) {
  counted_reset guard;
  channel<counted> c;
  c.set_preference(1);
  bool resumed = false;
  {
    tasklet r = tasklet([&] {
      counted v = c.receive();
      resumed = true;
    })();
    run();
    c.send(counted(4));
    r.remove();
    BOOST_TEST(r.paused());
    BOOST_TEST(counted::live == 1);
  }  // last handle gone
  BOOST_TEST(!resumed);
  BOOST_TEST(counted::live == 0);
  BOOST_TEST(alive_tasklets() == 0u);
}

// A blocked sender that is killed destroys the value it was offering.
BOOST_AUTO_TEST_CASE(value_of_killed_sender_destroyed) {
  counted_reset guard;
  channel<counted> c;
  tasklet s = tasklet([&] { c.send(counted(3)); })();
  run();
  BOOST_TEST(counted::live == 1);
  s.kill();
  BOOST_TEST(counted::live == 0);
  BOOST_TEST(c.balance() == 0);
}

// A receiver that holds a value and whose last handle is dropped still runs and gets the value
// (the scheduler owns runnable and blocked tasklets).
BOOST_AUTO_TEST_CASE(unreferenced_tasklets_still_complete) {
  counted_reset guard;
  channel<counted> c;
  int got = 0;
  tasklet([&] { got = c.receive().v; })();  // no handle kept
  run();
  BOOST_TEST(c.queue());
  c.set_preference(1);
  c.send(counted(9));
  BOOST_TEST(got == 0);
  run();
  BOOST_TEST(got == 9);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(HandleLifetime, clean_scheduler)

// Handles are shared references: copies name the same channel.
BOOST_AUTO_TEST_CASE(copies_share_state) {
  channel<int> a;
  channel<int> b = a;
  BOOST_TEST((a == b));
  BOOST_TEST(!(a == channel<int>()));
  tasklet([&] { b.send(4); })();
  BOOST_TEST(a.receive() == 4);
  run();
  b.close();
  BOOST_TEST(a.closing());
  channel<int> c;
  c = a;
  channel<int>& alias = c;
  c = alias;  // self-assignment keeps the channel
  BOOST_TEST((c == a));
  BOOST_TEST(c.closing());
}

// A tasklet blocked on a channel keeps the channel alive after every handle is gone; killing it
// then unlinks it from that channel safely, and the channel is freed afterwards (ASan/LSan).
BOOST_AUTO_TEST_CASE(blocked_tasklet_keeps_channel_alive) {
  auto* ch = new channel<int>;
  channel<int>* raw = ch;
  tasklet r = tasklet([raw] { raw->receive(); })();
  tasklet s = tasklet([raw] { raw->send(1); })();
  run();  // r blocks; s hands its value over (receiver preferred) and ends
  BOOST_TEST(!s.alive());
  BOOST_TEST(!r.alive());
  r = tasklet([raw] { raw->receive(); })();
  run();
  BOOST_TEST(r.blocked());
  delete ch;  // the last handle; r's pin keeps the state
  BOOST_TEST(r.blocked());
  r.kill();
  BOOST_TEST(!r.alive());
}

// The same for a blocked sender whose value is then lost with it.
BOOST_AUTO_TEST_CASE(blocked_sender_keeps_channel_alive) {
  counted_reset guard;
  std::optional<channel<counted>> ch(std::in_place);
  channel<counted>* raw = &*ch;
  tasklet s = tasklet([raw] { raw->send(counted(1)); })();
  run();
  BOOST_TEST(s.blocked());
  ch.reset();
  s.kill();
  BOOST_TEST(counted::live == 0);
}

// test_defects.py Channel.testTemporaryChannel: a tasklet blocks on a temporary channel (only its
// own frame can name it); run() returns, and the tasklet can still be killed cleanly.
BOOST_AUTO_TEST_CASE(testTemporaryChannel) {
  tasklet t = tasklet([] { channel<int>().receive(); })();
  run();
  BOOST_TEST(t.blocked());
  BOOST_TEST(getruncount() == 1);
  t.kill();
  BOOST_TEST(!t.alive());
}

// test_defects.py Channel.testTemporaryChannel2: the same with a second, ordinary tasklet.
BOOST_AUTO_TEST_CASE(testTemporaryChannel2) {
  bool f2_ran = false;
  tasklet t = tasklet([] { channel<int>().receive(); })();
  tasklet([&] { f2_ran = true; })();
  run();
  BOOST_TEST(f2_ran);
  BOOST_TEST(t.blocked());
  t.kill();
}

// A channel_base handle (as a callback sees it) may outlive the typed handle it came from.
BOOST_AUTO_TEST_CASE(callback_handle_outlives_channel) {
  std::vector<channel_base> seen;  // (std::optional here trips GCC 12's -Wmaybe-uninitialized)
  {
    channel<int> c;
    set_channel_callback(
        [&](const channel_base& ch, const tasklet&, bool, bool) { seen.push_back(ch); });
    tasklet([&] { c.send(1); })();
    run();
    set_channel_callback(nullptr);
    BOOST_REQUIRE(seen.size() == 1u);
    BOOST_TEST((seen[0] == c));
    BOOST_TEST(seen[0].balance() == 1);
    BOOST_TEST(c.receive() == 1);
    run();
    c.close();
  }
  BOOST_TEST(seen[0].balance() == 0);
  BOOST_TEST(seen[0].closed());
  seen.clear();
}

// A channel local to a tasklet that ends while its partner was only made runnable.
BOOST_AUTO_TEST_CASE(channel_dies_with_its_tasklet) {
  int got = 0;
  tasklet([&] {
    channel<int> local;
    local.set_preference(1);
    tasklet([&got](channel<int> c) { got = c.receive(); })(local);
    schedule();     // the receiver blocks
    local.send(3);  // it is made runnable; we end first and drop our handle
  })();
  run();
  BOOST_TEST(got == 3);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ExceptionSafety, clean_scheduler)

namespace {
// throwing_move: its move constructor throws while `fail` is set (copies never throw).
struct throwing_move {
  static inline bool fail = false;
  int v;
  explicit throwing_move(int x) : v(x) {}
  throwing_move(const throwing_move&) = default;
  throwing_move(throwing_move&& o) : v(o.v) {
    if (fail) throw index_error();
  }
  throwing_move& operator=(const throwing_move&) = default;
};
}  // namespace

// A hand-off whose value cannot be moved fails before anything changed: the partner stays
// blocked and the balance is unchanged; a later attempt succeeds.
BOOST_AUTO_TEST_CASE(failed_move_leaves_partner_blocked) {
  channel<throwing_move> c;
  int got = 0;
  tasklet r = tasklet([&] { got = c.receive().v; })();
  run();
  const throwing_move value(5);
  throwing_move::fail = true;
  BOOST_CHECK_THROW(c.send(value), index_error);  // copied into send(), then the move throws
  throwing_move::fail = false;
  BOOST_TEST(r.blocked());
  BOOST_TEST(c.balance() == -1);
  c.send(value);
  BOOST_TEST(got == 5);
  BOOST_TEST(!r.alive());

  tasklet s = tasklet([&] { c.send(throwing_move(6)); })();
  run();
  BOOST_TEST(c.balance() == 1);
  throwing_move::fail = true;
  BOOST_CHECK_THROW(c.receive(), index_error);
  throwing_move::fail = false;
  BOOST_TEST(s.blocked());
  BOOST_TEST(c.balance() == 1);
  BOOST_TEST(c.receive().v == 6);
  run();
}

// Main blocked in send when the last tasklet dies with an exception: the send throws it, the
// balance is restored and main's value is destroyed.
BOOST_AUTO_TEST_CASE(main_blocked_send_gets_exception) {
  counted_reset guard;
  channel<counted> c;
  tasklet([] { throw index_error(); })();
  BOOST_CHECK_THROW(c.send(counted(1)), index_error);
  BOOST_TEST(c.balance() == 0);
  BOOST_TEST(counted::live == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ThreadExit)

// At thread exit the scheduler kills the tasklets still blocked on channels: their destructors
// run, the channel they alone kept alive is freed (LSan), and nothing is reported as leaked.
namespace {
struct on_unwind {
  int& n;
  ~on_unwind() { ++n; }
};
}  // namespace

BOOST_AUTO_TEST_CASE(blocked_tasklets_killed_at_thread_exit) {
  counted::reset();
  int unwound = 0;
  // What the thread saw before it ended; checked here (Boost.Test is not thread-safe).
  int balance = 0, other_balance = 0, live_before = 0, unwound_before = -1;
  std::size_t alive_before = 0;
  std::thread th([&] {
    {
      channel<counted> ch;
      tasklet([ch, &unwound]() mutable {
        on_unwind u{unwound};
        counted local(1);
        ch.receive();
      })();
      channel<counted> other;
      tasklet([other, &unwound]() mutable {
        on_unwind u{unwound};
        other.send(counted(3));
      })();
      run();
      balance = ch.balance();
      other_balance = other.balance();
    }  // the thread's handles are gone; the blocked tasklets keep both channels alive
    alive_before = alive_tasklets();
    live_before = counted::live;
    unwound_before = unwound;
  });
  th.join();
  BOOST_TEST(balance == -1);
  BOOST_TEST(other_balance == 1);
  BOOST_TEST(alive_before == 2u);
  BOOST_TEST(live_before == 2);
  BOOST_TEST(unwound_before == 0);
  BOOST_TEST(unwound == 2);
  BOOST_TEST(counted::live == 0);
}

BOOST_AUTO_TEST_SUITE_END()
