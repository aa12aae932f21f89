// Must not compile: the literal Python spelling `stackless.tasklet(receiver)(chan, "inky")` is,
// in C++, the declaration of a variable named `receiver` built from (chan, "inky").
#include <stackless/stackless.hpp>

#include <string>

void receiver(stackless::channel<std::string>, std::string) {}

int main() {
  stackless::channel<std::string> chan;
  stackless::tasklet(receiver)(chan, "inky");
}
