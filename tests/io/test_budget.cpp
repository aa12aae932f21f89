// Issue 13, item 6: every I/O call (file and socket operations, sleep) is a check point of
// run(run_budget{.checks = n}), reached before the operation starts: a budget spent there
// interrupts the caller with nothing started, and the call proceeds when the victim is resumed.
#include <chrono>

#include "io_helpers.hpp"

using namespace stackless;
using namespace std::chrono_literals;

BOOST_FIXTURE_TEST_SUITE(Budget, iot::io_clean)

BOOST_AUTO_TEST_CASE(a_write_is_a_check_point_before_it_starts) {
  const auto p = iot::path("budget-write.txt");
  io::file f = io::open(p, "w", 0);  // unbuffered: each write() is one operation
  bool wrote = false;
  tasklet w([&] {
    f.write(std::string("abc"));
    wrote = true;
  });
  w();  // scheduled (Stackless's tasklet(f)(): set up, not run)
  // Interrupted before anything reached the file.
  tasklet r = run(run_budget{.checks = 1, .total = true});
  BOOST_TEST((r == w));
  BOOST_TEST(!wrote);
  BOOST_TEST(iot::get(p).empty());
  r.insert();
  run();
  BOOST_TEST(wrote);
  BOOST_TEST(iot::get(p) == "abc");
}

BOOST_AUTO_TEST_CASE(sleep_is_a_check_point_before_it_waits) {
  bool slept = false;
  tasklet s([&] {
    stackless::sleep(1ms);
    slept = true;
  });
  s();
  tasklet r = run(run_budget{.checks = 1});
  BOOST_TEST((r == s));
  BOOST_TEST(io::pending_operations() == 0u);  // the sleep did not start
  r.insert();
  run();
  BOOST_TEST(slept);
}

BOOST_AUTO_TEST_SUITE_END()
