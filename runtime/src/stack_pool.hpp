// Per-thread pool of tasklet stacks.
//
// Stacks are carved out of large slabs (one mmap per 64 stacks), never unmapped while the thread
// lives, and handed out LIFO so that the most recently used (cache- and TLB-warm, already
// faulted-in) stack is reused first: on machines where a page fault costs ~13 µs, recycled
// memory beats fresh memory by orders of magnitude.
//
// Guard region: the lowest guard_bytes() (64 KiB, at least one page) of every stack. A frame
// larger than the guard would jump it and write into the stack mapped below (another tasklet's):
// code built with -fstack-clash-protection (propagated by the CMake target) probes every page of
// a large frame, and 64 KiB catches frames up to that size in code built without it (and is the
// guard GCC's stack-clash protection assumes on AArch64). It costs address space only: the pages
// are never touched. On Linux >= 6.13 it is installed with madvise(MADV_GUARD_INSTALL), which
// does not split the mapping, so 100,000+ guarded stacks fit under vm.max_map_count (65530 by
// default). Where that is unavailable, mprotect(PROT_NONE) is used for the first
// `mprotect_guard_limit` stacks only (each costs two extra mappings, whatever the guard's size),
// as folly samples its guards; the rest run unguarded and docs/debugging.md says so.
//
// Windows (stack_pool_win.cpp): a stack is a Win32 fiber's, created by acquire() and deleted by
// release() (a fiber that has run cannot be restarted, so nothing is pooled); Windows puts a
// guard page below every fiber stack. See docs/windows.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#ifdef _WIN32
#include <boost/context/detail/fcontext.hpp>
#endif

namespace stackless::detail {

struct stack_block {
  char* base = nullptr;    // lowest address (the guard page, if any)
  std::size_t size = 0;    // total bytes including the guard page
  std::size_t usable = 0;  // bytes above the guard
  bool guarded = false;
  unsigned valgrind_id = 0;
  stack_block* next_free = nullptr;
#ifdef _WIN32
  void* fiber = nullptr;                                                 // its Win32 fiber
  void (*entry)(boost::context::detail::transfer_t) noexcept = nullptr;  // make_context's
#endif
  char* top() const noexcept {
    return base + size;
  }
  char* limit() const noexcept {
    return base + (size - usable);
  }  // lowest usable byte
};

class stack_pool {
 public:
  static constexpr std::size_t stacks_per_slab = 64;
  static constexpr std::size_t mprotect_guard_limit = 8192;

  stack_pool() = default;
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool();

  // acquire(usable_bytes): a stack with at least usable_bytes above its guard region.
  // Throws stack_error when memory cannot be mapped.
  stack_block* acquire(std::size_t usable_bytes);
  void release(stack_block* s) noexcept;

  std::size_t in_use() const noexcept { return in_use_; }
  std::size_t pooled() const noexcept { return pooled_; }
  std::size_t mapped() const noexcept { return mapped_; }
  std::size_t guarded() const noexcept { return guarded_; }
  bool guard_install() const noexcept { return guard_install_ok_ == 1; }

  // Finds the stack whose guard region contains addr (for the overflow handler). Async-signal-safe
  // (reads only).
  const stack_block* guard_owner(const void* addr) const noexcept;

  static std::size_t page_size() noexcept;
  // guard_bytes(): the size of each stack's guard region, a whole number of pages.
  static std::size_t guard_bytes() noexcept;
  static constexpr std::size_t guard_target = 64 * 1024;

 private:
  struct size_class {
    std::size_t stack_bytes;  // including guard
    stack_block* free = nullptr;
  };
  struct slab {
    char* base;
    std::size_t bytes;
    std::vector<stack_block> blocks;
  };
  size_class& class_for(std::size_t total);
  void refill(size_class& sc);
  void guard(stack_block& b) noexcept;

  std::vector<size_class> classes_;
  std::vector<slab> slabs_;
  std::size_t in_use_ = 0, pooled_ = 0, mapped_ = 0, guarded_ = 0;
  int guard_install_ok_ = -1;  // -1 unknown, 0 no, 1 yes
};

}  // namespace stackless::detail
