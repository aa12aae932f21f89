// Must not compile (with -Werror): dropping run(budget)'s result kills the interrupted tasklet.
#include <stackless/stackless.hpp>

int main() {
  stackless::run(stackless::run_budget{.switches = 10});
}
