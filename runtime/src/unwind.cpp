// The end of a thread and kill_all(): no leftover tasklet resumes its normal code; each is
// unwound so that the destructors on its own stack run (docs/semantics.md, "the end of a
// thread"). The scheduler's destructor (scheduler.cpp) calls unwind_all() too.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "scheduler_internal.hpp"

namespace stackless {
namespace detail {

// report_leftovers(s, when): with STACKLESS_REPORT_LEFTOVERS set (not "0"), lists on stderr the
// tasklets still alive besides the caller: name, state, and what a blocked one waits on.
// describe(s, indent): tasklets_report() for scheduler s.
std::string describe(const scheduler& s, const char* indent) {
  std::string out;
  for (const tasklet_impl& member : s.all) {
    const tasklet_impl* t = &member;
    if (t == s.current) continue;
    const char* state = "paused";
    if (t->link == link_kind::ring) {
      state = "runnable";
    } else if (t->link == link_kind::wait) {
      state = t->reason == block_reason::channel_send      ? "blocked sending on channel"
              : t->reason == block_reason::channel_receive ? "blocked receiving on channel"
              : t->reason == block_reason::join            ? "blocked joining (scope or join())"
                                                           : "blocked";
    }
    char owner[32] = "";
    if (t->link == link_kind::wait)
      std::snprintf(owner, sizeof owner, " %p", static_cast<const void*>(t->owner));
    out += indent;
    out += "tasklet " + std::to_string(t->id);
    if (!t->name.empty()) out += " '" + t->name + "'";
    out += ": ";
    out += state;
    out += owner;
    if (t->state == lifecycle::fresh) out += " (never started)";
    out += '\n';
  }
  return out;
}

void report_leftovers(scheduler& s, const char* when) {
  static const bool on = [] {
    const char* e = std::getenv("STACKLESS_REPORT_LEFTOVERS");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  if (!on) return;
  std::size_t n = 0;
  for (const tasklet_impl& t : s.all) n += (&t != s.current);
  if (n == 0) return;
  std::fprintf(stderr, "stackless: %zu tasklet(s) left %s:\n%s", n, when,
               describe(s, "  ").c_str());
}

namespace {
// unwinding_error(t): what a tasklet gets when it blocked while being unwound and nothing
// could complete that operation.
std::exception_ptr unwinding_error(const tasklet_impl* t) {
  return std::make_exception_ptr(tasklet_error(
      "tasklet " + std::to_string(t->id) +
      (t->name.empty() ? std::string() : " '" + t->name + "'") +
      " blocked while being unwound by kill_all() or at the end of its thread, and nothing "
      "could complete that operation"));
}
}  // namespace

// unwind_all(s): kills every tasklet of this thread except the caller (and main) such that none
// of them ever resumes its normal code: first all of them leave the run queue and their wait
// queues with a kill pending, then each is switched to and unwinds, so the destructors on its
// stack run. Only doomed tasklets (and ones their unwinding starts, e.g. the I/O poll tasklet
// that completes a file's last flush) run meanwhile. A tasklet that blocks while unwound and
// is still blocked when there is nothing else to do gets tasklet_error at that operation.
// Returns the first exception that escaped an unwinding.
std::exception_ptr unwind_all(scheduler& s) {
  tasklet_impl* self = s.current;
  std::exception_ptr first;
  const auto doom = [&](tasklet_impl* t) {
    // Blocked during its own unwinding (doomed already, and started) and not woken: refuse that
    // operation.
    if (t->doomed && t->started() && t->link == link_kind::wait && !t->bomb)
      t->bomb = unwinding_error(t);
    t->doomed = true;
    if (!t->bomb) t->bomb = std::make_exception_ptr(tasklet_exit{});
    ensure_unblocked(s, t);  // may take in remote work (which may make victims runnable)
  };
  // A tasklet that catches the kill and goes on may start another; ten rounds, then give up.
  for (int round = 0; round < 10; ++round) {
    take_remote(s);
    std::vector<tasklet> victims;
    for (tasklet_impl& t : s.all)
      if (&t != self && !t.is_main) victims.push_back(detail::tasklet_access::share(&t));
    if (victims.empty()) break;
    std::reverse(victims.begin(), victims.end());  // `all` is newest first: creation order
    // 1. Nobody runs normal code any more: all leave the run queue and their wait queues.
    for (int pass = 0; pass < 2; ++pass) {  // twice: remote work may make some runnable again
      for (auto& v : victims) {
        tasklet_impl* t = detail::tasklet_access::impl(v);
        if (!t->alive()) continue;
        if (pass == 0 || t->link != link_kind::none) doom(t);
        if (t->link == link_kind::ring) ring_unlink(s, t);
      }
    }
    // 2. Each is unwound; whatever its unwinding makes runnable runs before the next one.
    for (auto& v : victims) {
      tasklet_impl* t = detail::tasklet_access::impl(v);
      if (!t->alive()) continue;
      if (t->link == link_kind::wait) continue;  // blocked while unwinding: the next round
      if (!t->bomb) t->bomb = std::make_exception_ptr(tasklet_exit{});  // survived a kill
      if (t->link == link_kind::ring) ring_unlink(s, t);
      ring_insert_before(s, self->next, t);
      ++s.unwinding;
      switch_current(s, t);
      // Drive what became runnable meanwhile (all doomed, or started by an unwinding), with a
      // bound against a tasklet that catches the kill and yields forever.
      for (int n = 0; self->next != self && n < 100000; ++n) switch_current(s, self->next);
      while (self->next != self) ring_unlink(s, self->next);
      --s.unwinding;
      try {
        take_bomb(self);  // an exception that escaped an unwinding was routed to us
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
  }
  return first;
}

}  // namespace detail

using detail::scheduler;

void kill_all() {
  scheduler& s = detail::sched();
  if (!s.current->is_main || !s.watchdogs.empty())
    detail::throw_tasklet_error("kill_all() must be called from the main tasklet, outside run()");
  if (s.trap > 0) detail::throw_trap();
  detail::report_leftovers(s, "at kill_all(); unwinding them");
  if (std::exception_ptr e = detail::unwind_all(s)) std::rethrow_exception(e);
}

std::string tasklets_report() {
  return detail::describe(detail::sched(), "");
}

}  // namespace stackless
