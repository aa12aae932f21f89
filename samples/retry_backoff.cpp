// retry_backoff: a unit test, under virtual time, of a retry-with-exponential-backoff function.
// retry(op, attempts, first_delay) calls op until it succeeds, sleeping first_delay, then twice
// that, and so on between attempts, and gives up with timeout_error after `attempts` failures.
// The test checks the exact virtual times of every attempt (0, 1, 3, 7, 15 s) and the give-up,
// which would take 31 s of real time; here it takes microseconds.
//
// Usage: retry_backoff
// Exits non-zero when a check fails.
#include <stackless/stackless.hpp>

#include <cstdio>
#include <functional>
#include <optional>
#include <vector>

namespace {

// The code under test.
template <class Op>
auto retry(Op op, int attempts, std::chrono::steady_clock::duration first_delay) {
  auto delay = first_delay;
  for (int i = 1;; ++i) {
    if (auto r = op()) return *r;
    if (i == attempts) throw stackless::timeout_error("retry: gave up");
    stackless::sleep(delay);
    delay *= 2;
  }
}

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  const auto real0 = std::chrono::steady_clock::now();
  {
    stackless::virtual_time vt;
    const auto t0 = stackless::now();
    std::vector<std::chrono::steady_clock::duration> at;
    // Succeeds on the fifth attempt.
    int v = retry(
        [&]() -> std::optional<int> {
          at.push_back(stackless::now() - t0);
          if (at.size() < 5) return std::nullopt;
          return 42;
        },
        10, 1s);
    check(v == 42, "the result is returned");
    check((at == std::vector<std::chrono::steady_clock::duration>{0s, 1s, 3s, 7s, 15s}),
          "attempts at 0, 1, 3, 7, 15 s");

    // Never succeeds: gives up after 3 attempts, at 0 + 2 + 4 = 6 s.
    const auto t1 = stackless::now();
    bool gave_up = false;
    try {
      retry([]() -> std::optional<int> { return std::nullopt; }, 3, 2s);
    } catch (const stackless::timeout_error&) {
      gave_up = true;
    }
    check(gave_up, "gives up with timeout_error");
    check(stackless::now() - t1 == 6s, "gives up after 6 virtual seconds");
    check(vt.elapsed() == 21s, "21 virtual seconds in all");
  }
  const std::chrono::duration<double, std::milli> wall = std::chrono::steady_clock::now() - real0;
  std::printf("retry_backoff: %s (21 virtual seconds in %.3f ms)\n", failures ? "FAILED" : "passed",
              wall.count());
  return failures ? 1 : 0;
}
