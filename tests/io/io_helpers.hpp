// Helpers shared by the io tests: the clean fixture (no tasklet, stack or io op left behind),
// scratch files, and small file utilities that do not go through stackless::io.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fixture.hpp"

namespace iot {

extern std::filesystem::path g_dir;

// io_clean: clean_scheduler plus "no io op or timer in flight" on entry and exit.
struct io_clean : clean_scheduler {
  io_clean() { BOOST_CHECK_EQUAL(stackless::io::pending_operations(), 0u); }
  ~io_clean() { BOOST_CHECK_EQUAL(stackless::io::pending_operations(), 0u); }
};

// deny_io_uring(): installs a seccomp filter making io_uring_setup fail with EPERM.
void deny_io_uring();

inline std::filesystem::path path(const std::string& name) {
  return g_dir / name;
}

inline void put(const std::filesystem::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

inline std::string get(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// numbers(n): "0123...": Python's ''.join(str(x) for x in range(n)), the seed demo's content.
inline std::string numbers(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::to_string(i);
  return s;
}

// errc_is(code): a BOOST_CHECK_EXCEPTION predicate for filesystem_error with that errno (or,
// on Windows, a Win32 error of the system category equivalent to it).
inline auto errc_is(int code) {
  return [code](const std::filesystem::filesystem_error& e) {
    BOOST_TEST_MESSAGE("got: " << e.what());
    return e.code() == std::error_condition(code, std::generic_category());
  };
}

}  // namespace iot
