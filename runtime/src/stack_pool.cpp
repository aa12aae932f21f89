#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "fiber_hooks.hpp"
#include "stackless/runtime/errors.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace stackless::detail {

std::size_t stack_pool::page_size() noexcept {
  static const std::size_t ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return ps;
}

std::size_t stack_pool::guard_bytes() noexcept {
  const std::size_t ps = page_size();
  return guard_target > ps ? (guard_target + ps - 1) / ps * ps : ps;
}

stack_pool::~stack_pool() {
  for (auto& s : slabs_) {
    for (auto& b : s.blocks) hook_stack_unmapped(b);
    ::munmap(s.base, s.bytes);
  }
}

stack_pool::size_class& stack_pool::class_for(std::size_t total) {
  for (auto& c : classes_)
    if (c.stack_bytes == total) return c;
  classes_.push_back(size_class{total, nullptr});
  return classes_.back();
}

void stack_pool::guard(stack_block& b) noexcept {
  const std::size_t gb = guard_bytes();
  if (guard_install_ok_ != 0) {
    if (::madvise(b.base, gb, MADV_GUARD_INSTALL) == 0) {
      guard_install_ok_ = 1;
      b.guarded = true;
      ++guarded_;
      return;
    }
    guard_install_ok_ = 0;
  }
  if (guarded_ < mprotect_guard_limit && ::mprotect(b.base, gb, PROT_NONE) == 0) {
    b.guarded = true;
    ++guarded_;
  }
}

void stack_pool::refill(size_class& sc) {
  // Slabs are mapped with MAP_NORESERVE: only pages a tasklet touches cost memory.
  const std::size_t bytes = sc.stack_bytes * stacks_per_slab;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    throw stack_error("stackless: cannot map " + std::to_string(bytes) + " bytes for " +
                      std::to_string(stacks_per_slab) + " tasklet stacks of " +
                      std::to_string(sc.stack_bytes) + " bytes: " + std::strerror(e));
  }
  slab s{static_cast<char*>(p), bytes, {}};
  s.blocks.resize(stacks_per_slab);
  for (std::size_t i = 0; i < stacks_per_slab; ++i) {
    stack_block& b = s.blocks[i];
    b.base = s.base + i * sc.stack_bytes;
    b.size = sc.stack_bytes;
    b.usable = sc.stack_bytes - guard_bytes();
    guard(b);
    hook_stack_mapped(b);
  }
  // Push in reverse so the lowest block is handed out first.
  for (std::size_t i = stacks_per_slab; i-- > 0;) {
    s.blocks[i].next_free = sc.free;
    sc.free = &s.blocks[i];
  }
  pooled_ += stacks_per_slab;
  mapped_ += stacks_per_slab;
  slabs_.push_back(std::move(s));
}

stack_block* stack_pool::acquire(std::size_t usable_bytes) {
  const std::size_t ps = page_size();
  // Refuse sizes whose page rounding, guard region or slab (stacks_per_slab of them) would
  // overflow size_t: the arithmetic below would wrap to a small stack and the tasklet would run
  // on memory it does not own.
  if (usable_bytes > (SIZE_MAX / stacks_per_slab) - ps - guard_bytes()) {
    throw stack_error("stackless: tasklet stack size of " + std::to_string(usable_bytes) +
                      " bytes is too large");
  }
  const std::size_t usable = (usable_bytes + ps - 1) / ps * ps;
  size_class& sc = class_for(usable + guard_bytes());
  if (!sc.free) refill(sc);
  stack_block* b = sc.free;
  sc.free = b->next_free;
  b->next_free = nullptr;
  --pooled_;
  ++in_use_;
  return b;
}

void stack_pool::release(stack_block* b) noexcept {
  size_class& sc = class_for(b->size);
  b->next_free = sc.free;
  sc.free = b;
  ++pooled_;
  --in_use_;
}

const stack_block* stack_pool::guard_owner(const void* addr) const noexcept {
  const char* a = static_cast<const char*>(addr);
  for (const auto& s : slabs_) {
    if (a < s.base || a >= s.base + s.bytes) continue;
    for (const auto& b : s.blocks)
      if (a >= b.base && a < b.limit()) return &b;
  }
  return nullptr;
}

}  // namespace stackless::detail
