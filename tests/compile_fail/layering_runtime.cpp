// Must not compile: the runtime knows nothing about channels (docs/architecture.md). The
// runtime's object library sees only its own headers, so a wrong-way include fails to build.
#include <stackless/channel.hpp>

int f() {
  return 0;
}
