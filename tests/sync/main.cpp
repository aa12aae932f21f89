#define BOOST_TEST_MODULE stackless_sync
#include <boost/test/unit_test.hpp>
