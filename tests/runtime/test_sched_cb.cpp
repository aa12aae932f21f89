// Ports of Stackless/unittests/test_sched_cb.py: the schedule callback sees every switch as
// (prev, next), in order; set_schedule_callback returns the previous callback.
#include <stackless/stackless.hpp>

#include <utility>
#include <vector>

#include "helpers.hpp"

using namespace stackless;

namespace {
using pair_t = std::pair<tasklet, tasklet>;
}

BOOST_AUTO_TEST_SUITE(TestScheduleCallback)

// test_sched_cb.py test_schedule_callback: two tasklets that schedule once under run(): five
// switches, (main,t1) (t1,t2) (t2,t1) (t1,t2) (t2,main); a finishing tasklet is `prev`.
BOOST_FIXTURE_TEST_CASE(test_schedule_callback, clean_scheduler) {
  std::vector<pair_t> cb;
  rt::log res;
  auto prev =
      set_schedule_callback([&](const tasklet& p, const tasklet& n) { cb.emplace_back(p, n); });
  BOOST_TEST(!prev);
  BOOST_TEST(static_cast<bool>(get_schedule_callback()));
  auto f = [&](int i) {
    res("A_" + std::to_string(i));
    schedule();
    res("B_" + std::to_string(i));
  };
  tasklet t1 = tasklet(f)(1);
  tasklet t2 = tasklet(f)(2);
  tasklet maintask = getmain();
  run();
  set_schedule_callback(nullptr);
  BOOST_TEST(res.str() == "A_1 A_2 B_1 B_2");
  BOOST_REQUIRE_EQUAL(cb.size(), 5u);
  BOOST_TEST((cb[0] == pair_t(maintask, t1)));
  BOOST_TEST((cb[1] == pair_t(t1, t2)));
  BOOST_TEST((cb[2] == pair_t(t2, t1)));
  BOOST_TEST((cb[3] == pair_t(t1, t2)));
  BOOST_TEST((cb[4] == pair_t(t2, maintask)));
  BOOST_TEST(!get_schedule_callback());
}

// test_sched_cb.py: set_schedule_callback returns the previously installed callback, which can
// be re-installed.
BOOST_FIXTURE_TEST_CASE(test_set_returns_previous, clean_scheduler) {
  int a = 0, b = 0;
  set_schedule_callback([&](const tasklet&, const tasklet&) { ++a; });
  auto old = set_schedule_callback([&](const tasklet&, const tasklet&) { ++b; });
  tasklet([] {})();
  run();
  BOOST_TEST(a == 0);
  BOOST_TEST(b == 2);
  set_schedule_callback(old);
  tasklet([] {})();
  run();
  BOOST_TEST(a == 2);
  set_schedule_callback(nullptr);
}

// test_sched_cb.py: channel hand-offs and kills are switches too; no call when nothing switches.
BOOST_FIXTURE_TEST_CASE(test_callback_channel_and_kill, clean_scheduler) {
  std::vector<pair_t> cb;
  channel<int> c;
  tasklet r = tasklet([&] { c.receive(); })();
  tasklet main = getmain();
  set_schedule_callback([&](const tasklet& p, const tasklet& n) { cb.emplace_back(p, n); });
  schedule();  // main -> r (blocks) -> main
  BOOST_REQUIRE_EQUAL(cb.size(), 2u);
  BOOST_TEST((cb[0] == pair_t(main, r)));
  BOOST_TEST((cb[1] == pair_t(r, main)));
  schedule();  // alone: no switch, no call
  BOOST_TEST(cb.size() == 2u);
  r.kill();
  set_schedule_callback(nullptr);
  BOOST_REQUIRE_EQUAL(cb.size(), 4u);
  BOOST_TEST((cb[2] == pair_t(main, r)));
  BOOST_TEST((cb[3] == pair_t(r, main)));
}

BOOST_AUTO_TEST_SUITE_END()
