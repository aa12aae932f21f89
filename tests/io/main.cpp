// The io suite's module: a scratch directory under /tmp, and the skip rule for the uring run.
#define BOOST_TEST_MODULE stackless_io
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "io_helpers.hpp"

namespace iot {
std::filesystem::path g_dir;
}

struct io_global {
  io_global() {
    // The fallback test re-runs this binary under a seccomp filter that refuses io_uring_setup
    // with EPERM, as Docker's default profile does.
    if (std::getenv("STACKLESS_IO_TEST_SECCOMP")) iot::deny_io_uring();
    // The uring run has nothing to test when io_uring cannot be set up: skip, saying why.
    const char* want = std::getenv("STACKLESS_IO_BACKEND");
    if (want && std::string(want) == "uring") {
      if (auto ec = stackless::io::uring_probe()) {
        std::printf("SKIP: io_uring unavailable (%s)\n", ec.message().c_str());
        std::fflush(stdout);
        std::_Exit(77);
      }
      if (stackless::io::backend_name() != "io_uring") std::_Exit(1);
    }
    char tmpl[] = "/tmp/stackless-io-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    iot::g_dir = tmpl;
    std::printf("io backend: %s, scratch dir %s\n", std::string(stackless::io::backend_name()).c_str(),
                tmpl);
  }
  ~io_global() {
    std::error_code ec;
    std::filesystem::remove_all(iot::g_dir, ec);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(io_global);
