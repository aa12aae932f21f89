// The io suite's module: a scratch directory under /tmp, and the skip rule for the uring run.
#define BOOST_TEST_MODULE stackless_io
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "backend_choice.hpp"
#include "io_helpers.hpp"

#ifdef _WIN32
#include <windows.h>
#endif

namespace iot {
std::filesystem::path g_dir;
}

struct io_global {
  io_global() {
    // The fallback test re-runs this binary under a seccomp filter that refuses io_uring_setup
    // with EPERM, as Docker's default profile does.
#ifndef _WIN32
    if (std::getenv("STACKLESS_IO_TEST_SECCOMP")) iot::deny_io_uring();
#endif
    // The uring run has nothing to test when io_uring cannot be set up: skip, saying why.
    exit_unless_backend_usable();
#ifdef _WIN32
    iot::g_dir = std::filesystem::temp_directory_path() /
                 ("stackless-io-" + std::to_string(::GetCurrentProcessId()));
    std::filesystem::create_directories(iot::g_dir);
#else
    char tmpl[] = "/tmp/stackless-io-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    iot::g_dir = tmpl;
#endif
    std::printf("io backend: %s, scratch dir %s\n",
                std::string(stackless::io::backend_name()).c_str(), iot::g_dir.string().c_str());
  }
  ~io_global() {
    std::error_code ec;
    std::filesystem::remove_all(iot::g_dir, ec);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(io_global);
