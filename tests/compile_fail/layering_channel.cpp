// Must not compile: channels know nothing about I/O (docs/architecture.md). The channel layer's
// object library sees its own headers and the runtime's only.
#include <stackless/io/file.hpp>

int f() {
  return 0;
}
