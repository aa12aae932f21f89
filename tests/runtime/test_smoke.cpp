// Smoke tests of the runtime: FIFO start order and run() returning when the queue empties.
#include "fixture.hpp"

#include <string>

using namespace stackless;

BOOST_FIXTURE_TEST_SUITE(smoke, clean_scheduler)

BOOST_AUTO_TEST_CASE(fifo_start_order) {
  std::string log;
  for (char c : std::string("abc")) tasklet([&log, c] { log += c; })();
  BOOST_TEST(getruncount() == 4);
  run();
  BOOST_TEST(log == "abc");
}

BOOST_AUTO_TEST_SUITE_END()
