// MinGW builds (tests/CMakeLists.txt): the implementation of the header-only Boost.Test, compiled
// once and linked into every suite; each suite's main.cpp defines its module as usual.
#include <boost/test/included/unit_test.hpp>
