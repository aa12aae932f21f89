// Must not compile (with -Werror): dropping io::open's result closes the file at once.
#include <stackless/stackless.hpp>

int main() {
  stackless::io::open("log.txt", "w");
}
