// Must not compile: bind() with something that can't be called.
#include <stackless/stackless.hpp>

#include <string>

int main() {
  stackless::tasklet t;
  t.bind(std::string("not a function"));
}
