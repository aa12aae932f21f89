// STACKLESS_ASSERT's failure path (detail/assert.hpp): report, then abort.
#include <cstdio>
#include <cstdlib>

#include "stackless/runtime/detail/assert.hpp"

namespace stackless::detail {

void assert_failed(const char* cond, const char* what, const char* file, int line) noexcept {
  std::fprintf(stderr, "stackless: internal error: %s (%s) at %s:%d\n", what, cond, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace stackless::detail
