// Per-thread bits that let a blocking layer's fast path (a channel hand-off to a partner that is
// already waiting) skip the runtime calls that have nothing to do in the common case. Generic:
// the runtime keeps them without knowing who reads them.
#pragma once

#include <cstdint>

#include "stackless/runtime/park.hpp"

namespace stackless::detail {

// tls_slow: conservative: a set bit only sends the caller to the ordinary (exact) code.
//   kSlowCheck: check_point() may have work: no scheduler yet, a budgeted run() was started, or
//               an exception was stored in a tasklet (deliver_later, a kill or throw). Set by the
//               runtime where those happen; cleared by check_point() when it finds no budget and
//               no exception to raise (a tasklet that holds one raises it when it resumes).
//   kSlowTrap : the switch trap is raised (kept exact by switch_trap()).
inline constexpr std::uint8_t kSlowCheck = 1;
inline constexpr std::uint8_t kSlowTrap = 2;
extern constinit thread_local std::uint8_t tls_slow;

// check_point_fast(): check_point(), without the call when it has nothing to do.
inline void check_point_fast() {
  if (tls_slow & kSlowCheck) [[unlikely]]
    check_point();
}
// switch_trapped_fast(): switch_trapped(), inline.
inline bool switch_trapped_fast() noexcept {
  return (tls_slow & kSlowTrap) != 0;
}
// throw_if_switch_trapped_fast(): throw_if_switch_trapped(), without the call when not trapped.
inline void throw_if_switch_trapped_fast() {
  if (tls_slow & kSlowTrap) [[unlikely]]
    throw_if_switch_trapped();
}

// wake_here(t, how, lock): t (unlinked from its owner's queue under `lock`, which the caller
// holds) belongs to this thread: releases lock and wakes t as unpark_append (append),
// unpark_and_switch (run_now) or unpark_append_and_schedule (append_and_yield) do, and returns
// true. Otherwise returns false and does nothing (lock still held): the caller hands t over to
// its own thread. One call for same_thread() and the unpark_*() of a same-thread hand-off.
enum class wake : std::uint8_t { append, run_now, append_and_yield };
bool wake_here(tasklet_impl* t, wake how, biased_lock& lock);
// pop_and_wake_here(q, how, lock): q.pop_front() (under lock, held by the caller), then
// wake_here() on it: returns null once it is woken here, or the popped tasklet, lock still
// held, when it belongs to another thread.
tasklet_impl* pop_and_wake_here(wait_queue& q, wake how, biased_lock& lock);

// park_unless_block_trapped(owner, q, slot, reason, lock): park(owner, q, slot, reason, &lock)
// for a caller that has made every other refusal of its own: returns true once the current
// tasklet has been parked and woken again (or throws as park() does). Returns false, having done
// nothing (lock still held), when the current tasklet has block_trap set: the caller then takes
// its ordinary path, which raises the refusal in its own order. One call instead of
// current_impl(), block_trap_of() and park().
bool park_unless_block_trapped(wait_owner& owner, wait_queue& q, void* slot, block_reason reason,
                               biased_lock& lock);

}  // namespace stackless::detail
