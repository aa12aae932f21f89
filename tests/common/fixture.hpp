// Shared test fixture: every test starts and ends with a clean scheduler, as Stackless's own
// unittests check in setUp/tearDown. A leaked tasklet or stack fails the test that leaked it.
#pragma once

#include <boost/test/unit_test.hpp>

#include <stackless/stackless.hpp>

struct clean_scheduler {
  clean_scheduler() { check("setup"); }
  ~clean_scheduler() {
    // Kill whatever a failing test left behind so later tests start clean.
    stackless::set_schedule_callback(nullptr);
    stackless::set_error_handler(nullptr);
    stackless::set_channel_callback(nullptr);
    check("teardown");
  }
  static void check(const char* when) {
    BOOST_TEST_INFO("scheduler state at " << when);
    BOOST_CHECK_EQUAL(stackless::getruncount(), 1);
    BOOST_CHECK(stackless::getcurrent().is_main());
    BOOST_CHECK_EQUAL(stackless::alive_tasklets(), 0u);
    BOOST_CHECK_EQUAL(stackless::get_stack_stats().in_use, 0u);
  }
};
