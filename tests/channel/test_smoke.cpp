// Smoke test of channels: the default-preference trace of docs/semantics.md §1.7.
#include "fixture.hpp"

#include <string>

using namespace stackless;

BOOST_FIXTURE_TEST_SUITE(smoke, clean_scheduler)

BOOST_AUTO_TEST_CASE(preference_minus_one_trace) {
  std::string log;
  channel<int> ch;
  tasklet([&](int n) {
    for (int i = 0; i < n; ++i) {
      log += "s" + std::to_string(i) + " ";
      ch.send(i);
    }
    ch.send(-1);
  })(4);
  tasklet([&] {
    for (int v = ch.receive(); v >= 0; v = ch.receive()) log += "r" + std::to_string(v) + " ";
  })();
  run();
  BOOST_TEST(log == "s0 r0 s1 r1 s2 r2 s3 r3 ");
}

BOOST_AUTO_TEST_SUITE_END()
