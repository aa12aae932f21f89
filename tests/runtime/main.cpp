#define BOOST_TEST_MODULE stackless_runtime
#include <boost/test/unit_test.hpp>
