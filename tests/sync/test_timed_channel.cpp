// Timed channel operations (issue 16): receive_for/receive_until/send_for/send_until and the
// throwing forms. Each timed-out operation leaves the balance exactly as before; a served one
// behaves as the untimed one; a kill while waiting still propagates.
#include <optional>
#include <string>

#include "fixture.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(TestTimedChannel, clean_scheduler)

// stacklesslib testutil channel_wait: a receive that times out; balance restored.
BOOST_AUTO_TEST_CASE(test_receive_timeout_balance) {
  channel<int> ch;
  std::optional<int> r = 7;
  tasklet([&] { r = receive_for(ch, 2ms); })();
  tasklet([&] { ch.receive(); })();  // an untimed receiver behind it
  run();
  BOOST_TEST(!r.has_value());
  BOOST_TEST(ch.balance() == -1);  // only the untimed one left
  ch.send(5);
  BOOST_TEST(ch.balance() == 0);
  BOOST_TEST(!receive_for(ch, 0ms).has_value());
  BOOST_CHECK_THROW(receive_or_throw(ch, 1ms), timeout_error);
  BOOST_TEST(ch.balance() == 0);
}

// A receive served before the deadline returns the value; the timer is gone afterwards.
BOOST_AUTO_TEST_CASE(test_receive_served) {
  channel<std::string> ch;
  std::optional<std::string> r;
  tasklet([&] { r = receive_for(ch, std::chrono::hours(1)); })();
  tasklet([&] { ch.send("hi"); })();
  run();
  BOOST_TEST(r.value() == "hi");
  tasklet([&] { ch.send("there"); })();
  run();
  BOOST_TEST(ch.balance() == 1);
  BOOST_TEST(receive_for(ch, 0ms).value() == "there");  // a waiting sender: zero timeout works
  BOOST_TEST(!receive_until(ch, std::chrono::system_clock::now() - 1s).has_value());
}

// send_for: false and balance restored on timeout; true when a receiver comes.
BOOST_AUTO_TEST_CASE(test_send_timeout) {
  channel<int> ch;
  bool sent = true;
  tasklet([&] { sent = send_for(ch, 1, 2ms); })();
  run();
  BOOST_TEST(!sent);
  BOOST_TEST(ch.balance() == 0);
  BOOST_TEST(!send_for(ch, 2, 0ms));
  BOOST_CHECK_THROW(send_or_throw(ch, 3, 1ms), timeout_error);
  std::optional<int> got;
  tasklet([&] { got = ch.receive(); })();
  run();
  BOOST_TEST(send_for(ch, 4, 0ms));  // a waiting receiver
  run();
  BOOST_TEST(got.value() == 4);
  // (run() would not return while the one-hour timer is pending: the receiver is a tasklet.)
  sent = false;
  got.reset();
  tasklet([&] { sent = send_until(ch, 9, std::chrono::steady_clock::now() + 1h); })();
  tasklet([&] {
    BOOST_TEST(ch.balance() == 1);
    got = ch.receive();
  })();
  run();
  BOOST_TEST(got.value() == 9);
  BOOST_TEST(sent);
}

// A kill or send_exception reaching a timed receive propagates as for receive().
BOOST_AUTO_TEST_CASE(test_kill_and_exception) {
  channel<int> ch;
  bool caught = false;
  tasklet t([&] {
    try {
      receive_for(ch, 1h);
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "sent";
    }
  });
  t();
  tasklet([&] { ch.send_exception<std::runtime_error>("sent"); })();
  run();
  BOOST_TEST(caught);
  tasklet k([&] { receive_for(ch, 1h); });
  k();
  tasklet([&] {
    BOOST_TEST(ch.balance() == -1);
    k.kill();
    BOOST_TEST(ch.balance() == 0);
  })();
  run();
  BOOST_TEST(ch.balance() == 0);
}

// Across threads: a sender of another thread against timed receivers here; each value arrives
// exactly once whichever side wins each race, and the balance ends at 0.
BOOST_AUTO_TEST_CASE(test_timed_receive_across_threads) {
  channel<int> ch;
  long sum = 0;
  int received = 0;
  stackless::thread sender([&] {
    for (int i = 1; i <= 200; ++i) ch.send(i);
  });
  tasklet([&] {
    while (received < 200) {
      if (auto v = receive_for(ch, 30us)) {
        sum += *v;
        ++received;
      }
    }
  })();
  run(thread_block);
  sender.join();
  BOOST_TEST(sum == 20100);
  BOOST_TEST(ch.balance() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
