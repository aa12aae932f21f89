// A tasklet still blocked when main returns is killed at exit (its destructors run), on Linux by
// the main thread's thread_local teardown, on Windows by the runtime's atexit handler. CTest
// checks the output (tests/CMakeLists.txt).
#include <stackless/stackless.hpp>

#include <cstdio>

namespace {
stackless::channel<int> g_never;  // nobody sends
}

int main() {
  stackless::tasklet([] {
    struct guard {
      ~guard() { std::puts("blocked tasklet unwound at exit"); }
    } g;
    g_never.receive();
  })();
  stackless::run();
  std::puts("main returns");
}
