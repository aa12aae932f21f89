// Death test (issue 13 item 4): a frame larger than the guard page, on a default-size stack,
// must still end in the named stack-overflow report. Usage: test_runtime_big_frame PAGES, a
// frame of PAGES x 4 KiB (2 and 32 are run by CTest through expect_overflow.cmake).
//
// The overflowing tasklet first descends with small frames to within ~1.5 KiB of its stack's
// floor, then calls a function whose frame is PAGES x 4 KiB and touches its lowest byte first.
// Without stack-clash protection that byte lies below the guard region, in the stack of the
// tasklet mapped just below (`neighbour`, blocked with live frames): nothing faults, the
// neighbour's stack is silently overwritten and the program ends normally. With
// -fstack-clash-protection (propagated by the stackless::stackless target) the frame is probed
// page by page from the top, and the first probe below the floor faults on the guard.
#include <stackless/stackless.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {
constexpr std::size_t kGuardPage = 4096;
std::uintptr_t g_floor = 0;  // lowest usable address of the overflowing tasklet's stack
int g_pages = 0;

template <std::size_t N>
[[gnu::noinline]] int big_frame() {
  volatile char frame[N];
  // The array escapes, so all of it is in the frame: clang otherwise keeps only the two bytes
  // used (8 bytes of frame: no overflow, and the test passed the unprotected build by luck).
  asm volatile("" : : "r"(&frame[0]) : "memory");
  frame[0] = 1;  // the lowest byte first: the one that lands beyond the guard
  frame[N - 1] = 2;
  return frame[0] + frame[N - 1];
}

// descend(): small frames until the remaining stack is under 2 KiB, then the big frame.
[[gnu::noinline]] int descend() {
  volatile char pad[256];
  pad[0] = 0;
  const auto here = reinterpret_cast<std::uintptr_t>(&pad[0]);
  if (here > g_floor + 2048) return descend() + pad[0];
  return (g_pages == 2 ? big_frame<2 * kGuardPage>() : big_frame<32 * kGuardPage>()) + pad[0];
}
}  // namespace

int main(int argc, char** argv) {
  g_pages = argc > 1 ? std::atoi(argv[1]) : 0;
  if (g_pages != 2 && g_pages != 32) {
    std::fprintf(stderr, "usage: %s 2|32 (the frame size in 4 KiB guard pages)\n", argv[0]);
    return 2;
  }
  // The neighbour takes the first stack of the slab (the lowest); the overflowing tasklet the
  // one just above it, so below its guard lie the neighbour's live frames.
  stackless::channel<int> never;
  bool neighbour_returned = false;
  stackless::tasklet neighbour([&] {
    (void)never.receive();
    neighbour_returned = true;
  });
  neighbour.set_name("neighbour");
  neighbour();
  stackless::tasklet t([] {
    volatile char top = 0;
    // The entry's frame is within a few hundred bytes of the stack's top, so this estimate of
    // the floor is low by as much: the descent stops a little earlier, never in the guard.
    g_floor = reinterpret_cast<std::uintptr_t>(&top) - stackless::default_stack_size();
    std::printf("%d\n", descend() + top);
  });
  t.set_name("big-frame");
  t();
  stackless::schedule();  // the neighbour blocks, then the big frame runs
  std::fprintf(stderr,
               "big-frame test: a %d x 4 KiB frame jumped the guard without a report (the "
               "neighbour's stack was overwritten)\n",
               g_pages);
  neighbour.kill();
  return neighbour_returned ? 3 : 0;
}
