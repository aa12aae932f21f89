// Must not compile: a channel's core is not part of the public API (issue 13 item 5).
#include <stackless/stackless.hpp>

int main() {
  stackless::channel<int> ch;
  return ch.core() != nullptr;
}
