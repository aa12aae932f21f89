#define BOOST_TEST_MODULE stackless_channel
#include <boost/test/unit_test.hpp>
