#define BOOST_TEST_MODULE stackless_threads
#include <boost/test/unit_test.hpp>
