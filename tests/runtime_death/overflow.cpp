// Death test: a tasklet that overflows its stack must die by SIGSEGV on the guard page, after the
// runtime's overflow reporter (overflow_posix.cpp on_segv) has named the tasklet on stderr.
// Run by CTest through expect_overflow.cmake, which checks both.
#include <stackless/stackless.hpp>

#include <cstdio>

namespace {
volatile int g_limit = 1 << 30;  // never reached: 512 bytes x 2^30 frames is far beyond any stack
// recurse(n): unbounded recursion with a real frame per call (volatile buffer, result used after
// the call so it can't become a loop).
[[gnu::noinline]] int recurse(int n) {
  volatile char frame[512];
  frame[0] = static_cast<char>(n);
  frame[511] = static_cast<char>(n);
  if (n >= g_limit) return 0;
  return recurse(n + 1) + frame[0] + frame[511];
}
}  // namespace

int main() {
  stackless::tasklet t([] { std::printf("%d\n", recurse(0)); });
  t.set_name("deep-recursion");
  t.set_stack_size(64 * 1024);
  t.setup();
  stackless::run();
  std::fprintf(stderr, "overflow test: the tasklet returned; no overflow detected\n");
  return 0;
}
