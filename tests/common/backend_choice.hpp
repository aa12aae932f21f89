// exit_unless_backend_usable(): the uring run of an I/O suite (STACKLESS_IO_BACKEND=uring) has
// nothing to test when io_uring cannot be set up: exit 77 (CTest's skip), saying why; exit 1 if
// the process chose another backend although io_uring works. Called by a suite's global fixture.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stackless/io/io.hpp>
#include <string>

inline void exit_unless_backend_usable() {
  const char* want = std::getenv("STACKLESS_IO_BACKEND");
  if (want && std::string(want) == "uring") {
    if (auto ec = stackless::io::uring_probe()) {
      std::printf("SKIP: io_uring unavailable (%s)\n", ec.message().c_str());
      std::fflush(stdout);
      std::_Exit(77);
    }
    if (stackless::io::backend_name() != "io_uring") std::_Exit(1);
  }
}
