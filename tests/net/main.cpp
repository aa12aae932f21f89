// The net suite's module: a scratch directory for Unix sockets, and the skip rule for the uring
// run (as tests/io). POSIX only: tests/CMakeLists.txt does not build it on Windows.
#define BOOST_TEST_MODULE stackless_net
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "backend_choice.hpp"
#include "net_helpers.hpp"

namespace nett {
std::filesystem::path g_dir;
}

struct net_global {
  net_global() {
    exit_unless_backend_usable();
    char tmpl[] = "/tmp/stackless-net-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    nett::g_dir = tmpl;
    std::printf("io backend: %s, scratch dir %s\n",
                std::string(stackless::io::backend_name()).c_str(), nett::g_dir.c_str());
  }
  ~net_global() {
    std::error_code ec;
    std::filesystem::remove_all(nett::g_dir, ec);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(net_global);
