// The net suite's module: a scratch directory for Unix sockets, and the skip rule for the uring
// run (as tests/io). On Windows (IOCP, under Wine) the POSIX-only cases are left out where they
// are.
#define BOOST_TEST_MODULE stackless_net
#include <boost/test/unit_test.hpp>

#ifdef _WIN32
#include <windows.h>
#include <winsock2.h>  // before windows.h
#endif

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
#ifdef _WIN32
    // No Unix sockets on Windows: the directory only has to exist.
    nett::g_dir = std::filesystem::temp_directory_path() /
                  ("stackless-net-" + std::to_string(::GetCurrentProcessId()));
    std::filesystem::create_directories(nett::g_dir);
#else
    char tmpl[] = "/tmp/stackless-net-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    nett::g_dir = tmpl;
#endif
    std::printf("io backend: %s, scratch dir %s\n",
                std::string(stackless::io::backend_name()).c_str(), nett::g_dir.string().c_str());
  }
  ~net_global() {
    std::error_code ec;
    std::filesystem::remove_all(nett::g_dir, ec);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(net_global);
