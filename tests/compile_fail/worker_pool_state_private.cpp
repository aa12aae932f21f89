// Must not compile: worker_pool's state is not part of the public API (issue 13 item 5).
#include <stackless/stackless.hpp>

int main() {
  stackless::worker_pool::state* s = nullptr;
  return s != nullptr;
}
