// Must not compile: the arguments don't fit the callable (count or type), known together.
#include <stackless/stackless.hpp>

#include <string>

int main() {
  stackless::tasklet t([](int, std::string) {}, 1);
}
