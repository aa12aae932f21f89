// Must not compile: a parameter by non-const reference can't bind a tasklet's own argument copy.
#include <stackless/stackless.hpp>

int main() {
  int counter = 0;
  stackless::tasklet([](int& c) { ++c; })(counter);
}
