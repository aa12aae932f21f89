// Must not compile: tasklet(x) with an x that can't be called.
#include <stackless/stackless.hpp>

int main() {
  stackless::tasklet t(42);
}
