// Must not compile: a tasklet's control block is not part of the public API (issue 13 item 5);
// the library's layers reach it through detail::tasklet_access.
#include <stackless/stackless.hpp>

int main() {
  stackless::tasklet t;
  return t.impl() != nullptr;
}
