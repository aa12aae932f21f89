// Must not compile (with -Werror): without try_lock()'s result the caller does not know whether
// it holds the lock.
#include <stackless/stackless.hpp>

int main() {
  stackless::mutex m;
  m.try_lock();
  m.unlock();
}
