// The per-thread scheduler: the run ring, switching, run()/schedule(), kill/throw placement,
// exception routing and the deadlock rules of Stackless (docs/semantics.md §1.1-1.10).
// Data structures and invariants are described at the top of tasklet_impl.hpp.
//
// Switching protocol: a switch is always switch_context(to->fctx, from) (jump_fcontext's
// contract, see switch_context.hpp). Whoever resumes gets
// `from` in transfer_t::data and either stores the context it left (from->fctx) or, if `from`
// finished, returns its stack to the pool (it can't do that itself: it was standing on it).
#include <cxxabi.h>
#include <signal.h>
#ifdef __linux__
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif
#include <unistd.h>
#ifdef _WIN32
#include "win32.hpp"
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ostream>
#include <string>

#include "stackless/runtime/threads.hpp"
#include "switch_context.hpp"
#include "tasklet_impl.hpp"

#ifdef STACKLESS_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
}
#endif
#ifdef STACKLESS_TSAN
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif

namespace stackless {
namespace detail {
void release_thread_rec() noexcept;  // biased_lock records (below)

namespace {

#if defined(STACKLESS_ASAN) || defined(STACKLESS_TSAN)
constexpr std::size_t kDefaultStack = 512 * 1024;  // sanitizers need more stack (folly, Seastar)
#else
constexpr std::size_t kDefaultStack = 128 * 1024;
#endif

thread_local scheduler* tls_sched = nullptr;
#ifndef _WIN32
thread_local std::unique_ptr<scheduler> tls_owner;
#endif

const char* const kDeadlock = "Deadlock: the last runnable tasklet cannot be blocked.";

// ---- stack overflow reporting ---------------------------------------------------------------
// A SIGSEGV on a guard page is reported with the tasklet's name and stack size, then the default
// action runs (core dump). The handler runs on an alternate signal stack: the faulting stack is
// exhausted by definition.
#ifndef _WIN32
struct sigaction g_prev_segv {};
std::atomic<bool> g_handler_installed{false};
thread_local char* tls_altstack = nullptr;

void write_str(const char* s) {
  (void)!::write(2, s, std::strlen(s));
}
void write_num(std::uint64_t v) {
  char buf[24];
  int i = 23;
  buf[i] = 0;
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  write_str(buf + i);
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  scheduler* s = tls_sched;
  if (s && info && s->stacks.guard_owner(info->si_addr)) {
    const stack_block* b = s->stacks.guard_owner(info->si_addr);
    tasklet_impl* t = s->current;
    write_str("stackless: stack overflow in tasklet ");
    if (t) {
      write_num(t->id);
      if (!t->name.empty()) {
        write_str(" '");
        write_str(t->name.c_str());
        write_str("'");
      }
    }
    write_str(" (stack size ");
    write_num(b->usable);
    write_str(
        " bytes); give it a larger stack with tasklet::set_stack_size() or "
        "stackless::set_default_stack_size()\n");
    ::signal(SIGSEGV, SIG_DFL);
    return;  // re-faults with the default action
  }
  // Not ours: hand over to whoever was installed before us (ASan, a crash reporter, default).
  if (g_prev_segv.sa_flags & SA_SIGINFO) {
    if (g_prev_segv.sa_sigaction) {
      g_prev_segv.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (g_prev_segv.sa_handler != SIG_DFL && g_prev_segv.sa_handler != SIG_IGN &&
             g_prev_segv.sa_handler != nullptr) {
    g_prev_segv.sa_handler(sig);
    return;
  }
  ::signal(SIGSEGV, SIG_DFL);
}

void install_overflow_handler() {
  // Each thread needs its own alternate stack; the handler itself is process-wide.
  if (!tls_altstack) {
    const std::size_t sz = 64 * 1024;
    // Keep an alternate stack someone else installed (ASan does, and unmaps whatever is installed
    // when the thread ends: replacing it with ours makes that munmap fail).
    stack_t old{};
    if (::sigaltstack(nullptr, &old) == 0 && !(old.ss_flags & SS_DISABLE) &&
        old.ss_size >= sz / 4) {
      tls_altstack = static_cast<char*>(old.ss_sp);
    }
  }
  if (!tls_altstack) {
    const std::size_t sz = 64 * 1024;
    static thread_local std::unique_ptr<char[]> mem(new char[sz]);
    tls_altstack = mem.get();
    stack_t ss{};
    ss.ss_sp = tls_altstack;
    ss.ss_size = sz;
    ss.ss_flags = 0;
    ::sigaltstack(&ss, nullptr);
  }
  bool expected = false;
  if (g_handler_installed.compare_exchange_strong(expected, true)) {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_prev_segv);
  }
}
#else
#include "scheduler_win.inc"  // overflow reporting, thread teardown
#endif

// ---- ring operations ------------------------------------------------------------------------
// ring_insert_before(pos, t): links t just before pos (t becomes the tail when pos is current).
void ring_insert_before(scheduler& s, tasklet_impl* pos, tasklet_impl* t) noexcept {
  t->next = pos;
  t->prev = pos->prev;
  pos->prev->next = t;
  pos->prev = t;
  t->link = link_kind::ring;
  ++s.runcount;
}
// ring_append(s, t): "append to the end of the run queue". Normally that is just before current;
// while current is out of the ring (transiently, inside park/finish), appends queue up behind
// ring_head instead.
void ring_append(scheduler& s, tasklet_impl* t) noexcept {
  if (s.current->link == link_kind::ring) [[likely]] {
    ring_insert_before(s, s.current, t);
  } else if (s.runcount == 0) {
    t->next = t->prev = t;
    t->link = link_kind::ring;
    s.runcount = 1;
    s.ring_head = t;
  } else {
    ring_insert_before(s, s.ring_head, t);
  }
}
void ring_unlink(scheduler& s, tasklet_impl* t) noexcept {
  if (t->next == t) {
    // the last one: the ring becomes empty (only transiently: someone is put back at once)
  } else {
    t->prev->next = t->next;
    t->next->prev = t->prev;
  }
  t->next = t->prev = nullptr;
  t->link = link_kind::none;
  --s.runcount;
}

void all_link(scheduler& s, tasklet_impl* t) noexcept {
  t->all_prev = nullptr;
  t->all_next = s.all_head;
  if (s.all_head) s.all_head->all_prev = t;
  s.all_head = t;
  ++s.alive_count;
}
void all_unlink(scheduler& s, tasklet_impl* t) noexcept {
  if (t->all_prev)
    t->all_prev->all_next = t->all_next;
  else
    s.all_head = t->all_next;
  if (t->all_next) t->all_next->all_prev = t->all_prev;
  t->all_next = t->all_prev = nullptr;
  --s.alive_count;
}

[[noreturn]] void throw_tasklet_error(const char* msg) {
  throw tasklet_error(msg);
}

scheduler& sched() {
  if (!tls_sched) [[unlikely]] {
#ifdef _WIN32
    tls_sched = new_thread_scheduler();  // scheduler_win.inc
#else
    // The biased-lock record first: its release at thread exit then comes after the scheduler's
    // teardown, which may still take channel locks.
    if (bias_available()) (void)this_thread_rec();
    tls_owner = std::make_unique<scheduler>();
    tls_sched = tls_owner.get();
#endif
  }
  return *tls_sched;
}

void check_thread(const tasklet_impl* t) {
  if (t->sched != tls_sched) [[unlikely]] {
    throw wrong_thread_error("tasklet " + std::to_string(t->id) +
                             " belongs to another thread (can't switch to a different thread.)");
  }
}

void throw_trap() {
  throw switch_trap_error("switch_trap");
}

void delete_impl(tasklet_impl* t) noexcept {
  if (t->joiners) join_state_end(t->joiners);
#ifdef STACKLESS_TSAN
  if (t->tsan_fiber) __tsan_destroy_fiber(t->tsan_fiber);
#endif
  std::unique_ptr<tasklet_impl> owned(t);
}

// ---- switching ------------------------------------------------------------------------------
void tasklet_entry(ctx::transfer_t t) noexcept;
void drain_remote(scheduler& s);
// take_remote(s): takes in whatever other threads have handed this scheduler (cheap when nothing).
inline void take_remote(scheduler& s) {
  if (s.remote_pending.load(std::memory_order_acquire)) [[unlikely]]
    drain_remote(s);
}

// reap_orphan(s, t): t has just paused itself (schedule_remove(), switch_to()) while no handle
// names it, so nobody can ever insert it again. Kill it now, from the tasklet that resumed, so
// its destructors run, as release() does when the last handle of a paused tasklet goes away.
// Under a switch trap it is left alone (it is then killed at thread exit).
[[gnu::cold, gnu::noinline]] void reap_orphan(scheduler& s, tasklet_impl* t) noexcept {
  if (t->handles.load(std::memory_order_acquire) != 1 || s.trap > 0) return;  // 1: ours only
  if (std::find(s.watchdogs.begin(), s.watchdogs.end(), t) != s.watchdogs.end()) return;
  tasklet keep = tasklet::from_impl(t);
  try {
    keep.kill();
  } catch (...) {
    // It died with another error, routed to us: the resumer raises it from what it was doing.
    if (!s.current->bomb) s.current->bomb = std::current_exception();
  }
}

// on_resume(tr): bookkeeping right after a switch lands on a tasklet.
void on_resume(scheduler& s, ctx::transfer_t tr) noexcept {
  auto* from = static_cast<tasklet_impl*>(tr.data);
#ifdef STACKLESS_ASAN
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(s.current->asan_fake, &bottom, &size);
  if (from->is_main && !from->asan_bottom) {
    from->asan_bottom = bottom;
    from->asan_size = size;
  }
#endif
  if (from->finished) {
    from->finished = false;  // reaped
    if (from->stack) {
#ifdef STACKLESS_ASAN
      // The frames still on the finished stack (tasklet_entry, finish, jump) were left by a
      // context switch, never returned from, so their redzones stay poisoned; the next tasklet to
      // get this stack from the pool would trip over them. tr.fctx is the lowest of them.
      __asan_unpoison_memory_region(
          tr.fctx, static_cast<std::size_t>(from->stack->top() - static_cast<char*>(tr.fctx)));
#endif
      s.stacks.release(from->stack);
      from->stack = nullptr;
    }
    from->fctx = nullptr;
    // Drop the scheduler's reference (taken in make_alive). One atomic decides who frees the
    // block: this, or the last handle, which may be dropped on another thread at this moment.
    // Usually no handle is left: then no other thread can hold or make one, and a load will do.
    if (from->handles.load(std::memory_order_acquire) == 1 ||
        from->handles.fetch_sub(1, std::memory_order_acq_rel) == 1)
      delete_impl(from);
  } else {
    from->fctx = tr.fctx;
    if (from->link == link_kind::none && from->alive && !from->is_main) [[unlikely]]
      reap_orphan(s, from);
  }
  // Work handed over by other threads joins the run queue at switch points.
  take_remote(s);
}

// Per-tasklet C++ exception-handling state. The Itanium ABI keeps, per thread, the stack of
// exceptions being handled in catch blocks and the uncaught count (__cxa_eh_globals, opaque in
// cxxabi.h; same two leading fields in libstdc++ and libc++abi). A tasklet may switch inside a
// catch block (Stackless's `except: ch.send_throw(*sys.exc_info())`), so each tasklet keeps its
// own: otherwise another tasklet sees its exception in std::current_exception() and ends the
// wrong handler (a use-after-free of the exception object).
struct eh_globals_layout {
  void* caught;
  unsigned int uncaught;
#ifdef __ARM_EABI_UNWINDER__
  void* propagating;
#endif
};
// The thread's __cxa_eh_globals never moves: look it up once per thread instead of paying a
// PLT call plus __tls_get_addr twice on every switch.
eh_globals_layout* eh_globals() noexcept {
  thread_local eh_globals_layout* g = nullptr;
  if (!g) [[unlikely]]
    g = reinterpret_cast<eh_globals_layout*>(abi::__cxa_get_globals());
  return g;
}
eh_globals_layout eh_save() noexcept {
  return *eh_globals();
}
void eh_restore(const eh_globals_layout& e) noexcept {
  *eh_globals() = e;
}

// jump(s, from, to): the one place that switches stacks. `to` must already be current.
void jump(scheduler& s, tasklet_impl* from, tasklet_impl* to) {
  ++s.switch_count;
  if (s.budget_active && !s.budget.total) [[unlikely]] {
    s.slice_checks0 = s.budget_checks;  // a slice's check points count from here
    if (s.budget.time.count()) s.slice_start = std::chrono::steady_clock::now();
  }
  if (s.sched_cb) [[unlikely]] {
    if (!s.in_sched_cb) {
      s.in_sched_cb = true;
      try {
        // A copy: the callback may remove or replace itself, which must not destroy the
        // closure while it runs (Stackless holds a reference to the hook for the call).
        schedule_callback cb = s.sched_cb;
        // getcurrent() in the callback is still `from` (Stackless fixed this as a bug: "wrong
        // stackless.current in schedule callback").
        struct current_t {
          scheduler& s;
          tasklet_impl* to;
          ~current_t() { s.current = to; }
        } restore{s, to};
        s.current = from;
        cb(tasklet::from_impl(from), tasklet::from_impl(to));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "stackless: exception in schedule callback ignored: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "stackless: exception in schedule callback ignored\n");
      }
      s.in_sched_cb = false;
    }
  }
#ifdef STACKLESS_ASAN
  __sanitizer_start_switch_fiber(
      from->finished ? nullptr : &from->asan_fake,
      to->stack ? static_cast<const void*>(to->stack->limit()) : to->asan_bottom,
      to->stack ? to->stack->usable : to->asan_size);
#endif
#ifdef STACKLESS_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  const eh_globals_layout eh = eh_save();  // kept on this tasklet's stack while it is away
  ctx::transfer_t tr = switch_context(to->fctx, from);  // jump_fcontext, ret-terminated
  eh_restore(eh);
  on_resume(s, tr);
}

// switch_current(s, to): makes `to` current (it must be in the ring) and jumps to it. The caller
// must have put itself where it belongs (ring, wait queue or nowhere) first.
void switch_current(scheduler& s, tasklet_impl* to) {
  tasklet_impl* from = s.current;
  s.current = to;
  jump(s, from, to);
}

// take_bomb(t): throws the exception stored for t, if any.
void take_bomb(tasklet_impl* t) {
  if (t->bomb) [[unlikely]] {
    std::exception_ptr e = std::move(t->bomb);
    t->bomb = nullptr;
    std::rethrow_exception(e);
  }
}

// prepare_stack(s, t): gives t a stack and an initial context.
void prepare_stack(scheduler& s, tasklet_impl* t) {
  if (t->stack) return;
  t->stack = s.stacks.acquire(t->stack_size ? t->stack_size : s.default_stack);
  t->fctx = make_context(*t->stack, tasklet_entry);
#ifdef STACKLESS_TSAN
  if (!t->tsan_fiber) t->tsan_fiber = __tsan_create_fiber(0);
#endif
}

// clear_wait(t): t, no longer in its owner's queue, is not blocked any more (and not linked).
void clear_wait(tasklet_impl* t) noexcept {
  t->owner = nullptr;
  t->slot = nullptr;
  t->reason = block_reason::none;
  t->next = t->prev = nullptr;
  t->link = link_kind::none;
}

// cancel_block(t): takes a blocked t off its wait owner (the owner restores its accounting).
// Returns false when a partner on another thread completed t's operation first: t is then on its
// way back through this scheduler's remote queue (see ensure_unblocked).
bool cancel_block(tasklet_impl* t) noexcept {
  if (!t->owner->cancel_wait(t)) return false;
  clear_wait(t);
  return true;
}

tasklet_impl* watchdog_or_main(scheduler& s) noexcept {
  return s.watchdogs.empty() ? s.main_t : s.watchdogs.back();
}

// ---- Threads ------------------------------------------------------------------------------
// Every thread has its own scheduler; tasklets never migrate. Another thread hands work to a
// scheduler through its remote queue: "make this blocked tasklet runnable" (a channel partner
// completed its operation), "throw into this tasklet" (a kill from another thread), or "run
// this call" (worker_pool::spawn). The owner takes the queue in at switch points (on_resume)
// and whenever it runs out of work. A thread whose tasklets are all blocked sleeps in
// thread_block_wait() while some other thread is still active (could wake it) instead of
// raising deadlock (Stackless's thread-block rule); g_active counts the schedulers that are not
// asleep there. All of it is guarded by g_threads_mu.
std::mutex g_threads_mu;
int g_active = 0;
std::vector<scheduler*> g_live;
// This thread is a stackless::thread counted in g_active before it had a scheduler.
thread_local bool tls_reserved = false;

void drop_item(remote_item& it) noexcept {
  if (it.t) release(it.t);
  it.t = nullptr;
  if (it.owner_ref) std::exchange(it.owner_ref, nullptr)->release_ref();
}

// push_remote(target, item): queues item for target's thread and wakes that thread. Returns
// false (the item dropped) when that thread has ended.
bool push_remote(scheduler* target, remote_item&& it) {
  std::unique_lock lk(g_threads_mu);
  if (std::find(g_live.begin(), g_live.end(), target) == g_live.end()) {
    lk.unlock();    // dropping may free a channel, which takes its lock
    drop_item(it);  // that thread has ended; its tasklets are dead
    return false;
  }
  target->remote_q.push_back(std::move(it));
  target->remote_pending.store(true, std::memory_order_release);
  if (target->thread_blocked) {
    target->thread_blocked = false;
    ++g_active;  // counted active from now on, so nobody declares a deadlock meanwhile
    target->wake_cv.notify_one();
  }
  if (target->idle_waker) target->idle_waker(target->idle_waker_ctx);
  return true;
}

// push_remote_for(t, kind, e): hands t (a tasklet of another thread) to its own thread. The item
// holds a reference, so t stays valid until that thread takes it in.
bool push_remote_for(tasklet_impl* t, remote_item::kind_t kind, std::exception_ptr e = nullptr,
                     wait_owner* owner_ref = nullptr) {
  retain(t);
  return push_remote(t->sched, remote_item{kind, t, std::move(e), {}, owner_ref});
}

// ensure_unblocked(s, t): t was blocked; after this it is not in any wait queue. If a partner on
// another thread got to it first, its "ready" item is already in our remote queue (the partner
// pushes it while still holding the owner's lock, which cancel_wait took after it): take it in.
void ensure_unblocked(scheduler& s, tasklet_impl* t) {
  if (t->link == link_kind::wait && !cancel_block(t)) drain_remote(s);
}

void apply_bomb(scheduler& s, tasklet_impl* t, std::exception_ptr e) {
  if (!t->alive || t->finished) return;
  t->bomb = std::move(e);
  ensure_unblocked(s, t);
  if (t->link == link_kind::none) ring_append(s, t);
}

void drain_remote(scheduler& s) {
  // The spare vector keeps its capacity, so a steady stream of hand-offs allocates nothing.
  // (Taken out of s for the duration: the loop below may drain again, recursively.)
  std::vector<remote_item> items = std::move(s.remote_spare);
  items.clear();
  {
    std::lock_guard lk(g_threads_mu);
    items.swap(s.remote_q);
    s.remote_pending.store(false, std::memory_order_relaxed);
  }
  for (auto& it : items) {
    tasklet_impl* t = it.t;
    switch (it.kind) {
      case remote_item::ready:
        // acquire (via g_threads_mu): the partner's writes into t's slot are visible.
        clear_wait(t);
        ring_append(s, t);
        break;
      case remote_item::bomb:
        apply_bomb(s, t, std::move(it.error));
        break;
      case remote_item::call:
        try {
          it.fn();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "stackless: remote call failed: %s\n", e.what());
        } catch (...) {
          std::fprintf(stderr, "stackless: remote call failed\n");
        }
        break;
    }
    drop_item(it);
  }
  items.clear();
  if (items.capacity() > s.remote_spare.capacity()) s.remote_spare = std::move(items);
}

// give_up_all(): called with g_threads_mu held when no scheduler is active any more. Everyone
// asleep in thread_block_wait() is woken to find that nobody can wake them: each then revives
// its watchdog or raises deadlock, instead of sleeping forever. Counted active again, as they run.
void give_up_all() {
  if (g_active > 0) return;
  for (scheduler* o : g_live) {
    if (o->thread_blocked && o->in_block_wait) {
      o->thread_blocked = false;
      o->give_up = true;
      ++g_active;
      o->wake_cv.notify_one();
    }
  }
}

// spin_for_remote(s): before a thread sleeps in the kernel it watches its remote queue for a
// short while (as Go's scheduler spins before parking an M). A cross-thread hand-off that lands
// meanwhile costs no system call on either side: the sleeper never sleeps and the waker sees
// nobody to notify. A futex wake-up round trip costs tens of microseconds on this machine kind.
// Returns true when work arrived.
bool spin_for_remote(scheduler& s) noexcept {
  constexpr auto kSpin = std::chrono::microseconds(50);
  static const bool multicore = std::thread::hardware_concurrency() >= 2;
  if (!multicore) return false;  // the waker needs our core
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (s.remote_pending.load(std::memory_order_acquire)) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return false;
  }
}

// ---- threads the library has not seen -------------------------------------------------------
// A plain std::thread counts for the thread-block rule only once it has a scheduler; until then a
// thread that blocks would find nobody active and raise deadlock, depending on timing. So while
// the process has threads that started after the library was loaded and never used it, a thread
// with nothing to do waits for them (re-checking every few milliseconds) for up to
// kForeignWait before it gives up (docs/threads.md). Linux only (/proc); elsewhere none are seen.
constexpr auto kForeignWait = std::chrono::milliseconds(500);

int process_threads() noexcept {
#ifdef __linux__
  // /proc/self/stat: "pid (comm) state ... num_threads" (field 20); comm may contain spaces.
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (!f) return 0;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');
  if (!p) return 0;
  int field = 2;  // the ')' ends field 2
  for (++p; *p && field < 20; ++p)
    if (*p == ' ') ++field;
  return std::atoi(p);
#else
  return 0;
#endif
}

// Threads alive when the library was initialised (main, sanitizer helpers): never waited for.
const int g_base_threads = process_threads();
const std::thread::id g_init_thread = std::this_thread::get_id();

// unseen_threads(): with g_threads_mu held. Threads started since initialisation that have no
// scheduler (and are not a stackless::thread, which counts from its construction).
int unseen_threads() noexcept {
  if (g_base_threads <= 0) return 0;
  int known = 0;
  bool init_seen = false;  // the initialising thread (main) is in g_base_threads
  for (const scheduler* o : g_live) {
    if (o->thread == g_init_thread)
      init_seen = true;
    else
      ++known;
  }
  // main not having used the library yet (a std::thread started first and blocked) is unseen.
  int n = process_threads() - g_base_threads - known + (init_seen ? 0 : 1);
#ifdef STACKLESS_TSAN
  // TSan starts its background thread with the process's first pthread_create (after this
  // library's initialisation): not a thread that could ever talk to us.
  if (n > 0) --n;
#endif
  return n;
}

// Set when this thread gave up while unseen threads existed (for the deadlock message).
thread_local int tls_gave_up_unseen = 0;

// thread_block_wait(s): sleeps until another thread hands this one work. Returns false when no
// other thread is active, i.e. nobody could ever wake us (then every sleeper is told so too).
bool thread_block_wait(scheduler& s) {
  if (spin_for_remote(s)) return true;
  std::unique_lock lk(g_threads_mu);
  if (!s.remote_q.empty()) return true;
  tls_gave_up_unseen = 0;
  std::chrono::steady_clock::time_point deadline{};
  while (g_active <= 1) {
    const int unseen = unseen_threads();
    const auto now = std::chrono::steady_clock::now();
    if (unseen > 0 && deadline == std::chrono::steady_clock::time_point{})
      deadline = now + kForeignWait;
    if (unseen <= 0 || now >= deadline) {
      tls_gave_up_unseen = unseen > 0 ? unseen : 0;
      --g_active;
      give_up_all();  // they would wait for us, and we give up
      ++g_active;
      return false;
    }
    // Asleep as in the wait below (a hand-off wakes us at once), but only for a few
    // milliseconds: a new thread's first use of the library does not notify anybody.
    s.thread_blocked = true;
    --g_active;
    s.wake_cv.wait_for(lk, std::chrono::milliseconds(2));
    if (s.thread_blocked) {  // timed out: active again, look again
      s.thread_blocked = false;
      ++g_active;
    }  // else woken by push_remote, which counted us active again
    if (!s.remote_q.empty()) return true;
  }
  s.thread_blocked = true;
  s.in_block_wait = true;
  --g_active;
  s.wake_cv.wait(lk, [&] { return !s.thread_blocked; });
  s.in_block_wait = false;
  if (s.give_up && s.remote_q.empty()) {
    s.give_up = false;
    return false;
  }
  s.give_up = false;
  return true;
}

// when_idle(s, self, finishing): the ring is empty and self has left it (blocking, pausing or
// finishing). Returns the tasklet to switch to, linked in the ring: one another thread made
// runnable, or the revived watchdog/main (docs/semantics.md §1.10 and §1.11). Returns self when
// another thread made self itself runnable again meanwhile. Throws deadlock_error when nothing
// can ever run (after undoing self's wait); a finishing tasklet instead wakes a blocked main with
// the "main tasklet is receiving without a sender available." error.
tasklet_impl* when_idle(scheduler& s, tasklet_impl* self, bool finishing) {
  for (;;) {
    take_remote(s);
    if (!finishing && self->link == link_kind::ring) return self;
    if (s.runcount > 0) return s.ring_head;
    tasklet_impl* w = watchdog_or_main(s);
    const bool revivable = w != self && w->link != link_kind::wait;
    // run(thread_block) waits only while something here is blocked (another thread may
    // complete its operation); once every tasklet has ended it returns, as run() does.
    if (revivable && (!w->threadblock_run || s.alive_count == 0)) break;
    if (thread_block_wait(s)) continue;
    if (revivable) break;
    if (finishing) {
      // Main is blocked and nobody anywhere can complete its operation.
      const block_reason why = w->reason;
      if (!cancel_block(w)) continue;  // completed by another thread after all
      w->bomb = std::make_exception_ptr(deadlock_error(
          why == block_reason::channel_send
              ? "the main tasklet is sending without a receiver available."
          : why == block_reason::join
              ? "the main tasklet is waiting for tasklets that can never end (all blocked)."
              : "the main tasklet is receiving without a sender available."));
      break;
    }
    if (self->link == link_kind::wait && !cancel_block(self)) continue;
    if (tls_gave_up_unseen > 0)
      throw deadlock_error(std::string(kDeadlock) + " (" + std::to_string(tls_gave_up_unseen) +
                           " other thread(s) never used stackless within " +
                           std::to_string(kForeignWait.count()) +
                           " ms; a thread counts once it has used the library, or from its "
                           "construction when it is a stackless::thread)");
    throw deadlock_error(kDeadlock);
  }
  tasklet_impl* w = watchdog_or_main(s);
  ring_append(s, w);
  return w;
}

// finish(s, self, err): the end of a tasklet; never returns.
[[noreturn]] void finish(scheduler& s, tasklet_impl* self, std::exception_ptr err) noexcept {
  if (err && s.err_handler) {
    // Stackless calls the error handler in the context of the dying tasklet.
    try {
      auto h = s.err_handler;
      h(err);
      err = nullptr;
    } catch (const tasklet_exit&) {
      err = nullptr;
    } catch (...) {
      err = std::current_exception();
    }
  }
  self->alive = false;
  self->atomic = false;
  self->doomed = false;
  if (self->joiners) join_state_end(std::exchange(self->joiners, nullptr));
  all_unlink(s, self);
  tasklet_impl* after = self->next;  // the tasklet that would run next
  const bool ring_empty = (after == self);
  ring_unlink(s, self);
  self->finished = true;

  tasklet_impl* next;
  tasklet_impl* w = watchdog_or_main(s);
  if (err) {
    // Deliver to the innermost watchdog (or main): woken at once, ahead of everyone else.
    w->bomb = err;
    ensure_unblocked(s, w);
    if (w->link == link_kind::ring) {
      if (w == after) after = (s.runcount == 1) ? nullptr : w->next;
      ring_unlink(s, w);
    }
    if (ring_empty || !after) {
      w->next = w->prev = w;
      w->link = link_kind::ring;
      ++s.runcount;
    } else {
      ring_insert_before(s, after, w);
    }
    next = w;
  } else if (ring_empty) {
    // Nothing left to run here: revive the watchdog (or main), or wait for another thread.
    next = when_idle(s, self, true);
  } else {
    next = after;
  }
  err = nullptr;
  s.current = next;
  jump(s, self, next);
  std::abort();  // unreachable: a finished tasklet is never resumed
}

void tasklet_entry(ctx::transfer_t tr) noexcept {
  scheduler& s = *tls_sched;
  eh_restore({});  // a new tasklet handles no exception yet (the thread's state is its caller's)
  on_resume(s, tr);
  tasklet_impl* self = s.current;
  self->started = true;
  std::exception_ptr err;
  try {
    take_bomb(self);  // killed or thrown into before it ever ran: dies without running its code
    unique_function fn = std::move(self->call);
    fn();
  } catch (const tasklet_exit&) {
  } catch (...) {
    err = std::current_exception();
  }
  finish(s, self, std::move(err));
}

// leave_last(s, self): self, already out of the ring, was the last runnable tasklet. Switches to
// whatever when_idle() finds (the revived watchdog or main, or work from another thread), or
// throws deadlock_error; the caller restores self on a throw.
void leave_last(scheduler& s, tasklet_impl* self) {
  tasklet_impl* next = when_idle(s, self, false);
  if (next == self) return;  // made runnable again by another thread before we switched
  s.current = next;
  jump(s, self, next);
}

void relink_alone(scheduler& s, tasklet_impl* self) noexcept {
  self->next = self->prev = self;
  self->link = link_kind::ring;
  ++s.runcount;
}

// budget handling ---------------------------------------------------------------------------
bool budget_spent(scheduler& s) noexcept {
  if (s.budget.switches && s.switch_count - s.budget_switch0 >= s.budget.switches) return true;
  if (s.budget.checks &&
      s.budget_checks - (s.budget.total ? 0 : s.slice_checks0) >= s.budget.checks)
    return true;
  if (s.budget.time.count()) {
    auto now = std::chrono::steady_clock::now();
    auto since = s.budget.total ? s.budget_start : s.slice_start;
    if (now - since >= s.budget.time) return true;
  }
  return false;
}

void fire_interrupt(scheduler& s) {
  tasklet_impl* x = s.current;
  tasklet_impl* w = s.budget_watchdog;
  s.budget_active = false;
  s.interrupt_deferred = false;
  if (w->link != link_kind::none) return;  // someone already revived it
  if (s.budget.soft) {
    s.interrupted = nullptr;
    ring_insert_before(s, x->next, w);  // right after x; x stays runnable
  } else {
    s.interrupted = x;
    x->handles.fetch_add(1, std::memory_order_relaxed);  // held until run() hands it out
    if (x->next == x) {
      ring_unlink(s, x);
      w->next = w->prev = w;
      w->link = link_kind::ring;
      ++s.runcount;
    } else {
      tasklet_impl* after = x->next;
      ring_unlink(s, x);
      ring_insert_before(s, after, w);
    }
  }
  s.current = w;
  jump(s, x, w);
  take_bomb(x);
}

// ---- the end of a thread, and kill_all() ---------------------------------------------------
// report_leftovers(s, when): with STACKLESS_REPORT_LEFTOVERS set (not "0"), lists on stderr the
// tasklets still alive besides the caller: name, state, and what a blocked one waits on.
void report_leftovers(scheduler& s, const char* when) {
  static const bool on = [] {
    const char* e = std::getenv("STACKLESS_REPORT_LEFTOVERS");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  if (!on) return;
  std::size_t n = 0;
  for (tasklet_impl* t = s.all_head; t; t = t->all_next) n += (t != s.current);
  if (n == 0) return;
  std::fprintf(stderr, "stackless: %zu tasklet(s) left %s:\n", n, when);
  for (tasklet_impl* t = s.all_head; t; t = t->all_next) {
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
    std::fprintf(stderr, "  tasklet %llu%s%s%s: %s", static_cast<unsigned long long>(t->id),
                 t->name.empty() ? "" : " '", t->name.c_str(), t->name.empty() ? "" : "'", state);
    if (t->link == link_kind::wait) std::fprintf(stderr, " %p", static_cast<void*>(t->owner));
    std::fprintf(stderr, "%s\n", t->started ? "" : " (never started)");
  }
}

// unwinding_error(t): what a tasklet gets when it blocked while being unwound and nothing
// could complete that operation.
std::exception_ptr unwinding_error(const tasklet_impl* t) {
  return std::make_exception_ptr(tasklet_error(
      "tasklet " + std::to_string(t->id) +
      (t->name.empty() ? std::string() : " '" + t->name + "'") +
      " blocked while being unwound by kill_all() or at the end of its thread, and nothing "
      "could complete that operation"));
}

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
    // Blocked during its own unwinding (doomed == 2) and not woken: refuse that operation.
    if (t->doomed && t->started && t->link == link_kind::wait && !t->bomb)
      t->bomb = unwinding_error(t);
    t->doomed = true;
    if (!t->bomb) t->bomb = std::make_exception_ptr(tasklet_exit{});
    ensure_unblocked(s, t);  // may take in remote work (which may make victims runnable)
  };
  // A tasklet that catches the kill and goes on may start another; ten rounds, then give up.
  for (int round = 0; round < 10; ++round) {
    take_remote(s);
    std::vector<tasklet> victims;
    for (tasklet_impl* t = s.all_head; t; t = t->all_next)
      if (t != self && !t->is_main) victims.push_back(tasklet::from_impl(t));
    if (victims.empty()) break;
    std::reverse(victims.begin(), victims.end());  // all_head is the newest: creation order
    // 1. Nobody runs normal code any more: all leave the run queue and their wait queues.
    for (int pass = 0; pass < 2; ++pass) {  // twice: remote work may make some runnable again
      for (auto& v : victims) {
        tasklet_impl* t = v.impl();
        if (!t->alive) continue;
        if (pass == 0 || t->link != link_kind::none) doom(t);
        if (t->link == link_kind::ring) ring_unlink(s, t);
      }
    }
    // 2. Each is unwound; whatever its unwinding makes runnable runs before the next one.
    for (auto& v : victims) {
      tasklet_impl* t = v.impl();
      if (!t->alive) continue;
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

}  // namespace

// ---- scheduler lifetime ---------------------------------------------------------------------
scheduler::scheduler() : default_stack(kDefaultStack) {
  main_t = new tasklet_impl;  // NOLINT: owned by the scheduler, freed in ~scheduler
  main_t->sched = this;
  main_t->is_main = true;
  main_t->alive = main_t->started = true;
  main_t->handles.store(1, std::memory_order_relaxed);  // the scheduler's own (see release)
  main_t->id = 0;
  main_t->name = "main";
  main_t->next = main_t->prev = main_t;
  main_t->link = link_kind::ring;
#ifdef STACKLESS_TSAN
  main_t->tsan_fiber = __tsan_get_current_fiber();
#endif
  current = main_t;
  runcount = 1;
  thread_context_init();
  install_overflow_handler();
  std::lock_guard lk(g_threads_mu);
  g_live.push_back(this);
  // A stackless::thread was counted active from its start (thread_reservation); take that over.
  if (!std::exchange(tls_reserved, false)) ++g_active;
}

scheduler::~scheduler() {
  drain_remote(*this);
  // The end-of-thread rule (docs/semantics.md): no leftover tasklet resumes its normal code;
  // each is unwound so that the destructors on its own stack run, and nothing else.
  report_leftovers(*this, "at the end of their thread; unwinding them");
  std::exception_ptr err;
  try {
    err = unwind_all(*this);
  } catch (...) {
    err = std::current_exception();
  }
  if (err) {
    try {
      std::rethrow_exception(err);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stackless: exception while unwinding a tasklet at thread exit: %s\n",
                   e.what());
    } catch (...) {
      std::fprintf(stderr, "stackless: exception while unwinding a tasklet at thread exit\n");
    }
  }
  if (all_head) {
    std::fprintf(stderr, "stackless: %zu tasklet(s) refused to die at thread exit; leaked\n",
                 alive_count);
  }
  std::vector<remote_item> leftovers;
  {
    std::lock_guard lk(g_threads_mu);
    g_live.erase(std::find(g_live.begin(), g_live.end(), this));
    if (!thread_blocked) --g_active;
    give_up_all();  // a thread that ends can't wake anybody any more
    leftovers.swap(remote_q);
  }
  for (auto& it : leftovers) drop_item(it);
#ifdef STACKLESS_TSAN
  main_t->tsan_fiber = nullptr;  // the thread's own fiber is not ours to destroy
#endif
  main_t->alive = false;
  main_t->sched = nullptr;
  if (main_t->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) delete_impl(main_t);
  thread_context_fini();
  release_thread_rec();
}

// ---- detail API used by tasklet and the layers above ----------------------------------------
void throw_binding_error(const std::string& what) {
  throw tasklet_error(what);
}

void retain(tasklet_impl* t) noexcept {
  t->handles.fetch_add(1, std::memory_order_relaxed);
}

void release(tasklet_impl* t) noexcept {
  // handles counts the tasklet handles plus one for the scheduler while the tasklet is alive or
  // not yet reaped (and for main, while its thread runs): whoever takes it to 0 frees the block.
  // Read while our reference still holds t: after the decrement only t's own thread may touch
  // it (the scheduler may free it there at any moment).
  const bool own = !t->is_main && t->sched == tls_sched;
  const std::uint32_t old = t->handles.fetch_sub(1, std::memory_order_acq_rel);
  if (old == 1) {
    delete_impl(t);
    return;
  }
  // Only the scheduler's reference is left on a live tasklet: the last handle is gone. A paused
  // tasklet nobody can name any more is killed so its destructors run. Scheduled or blocked ones
  // belong to the scheduler until they end (or are killed at thread exit). (On another thread
  // t is not ours to read any more: such a paused tasklet is killed when its thread exits.)
  if (old == 2 && own && t->alive && t->link == link_kind::none && !t->finished &&
      t->sched->unwinding == 0 &&  // kill_all() unwinds it itself
      std::find(t->sched->watchdogs.begin(), t->sched->watchdogs.end(), t) ==
          t->sched->watchdogs.end() &&
      t->sched->current != t) {
    tasklet keep = tasklet::from_impl(t);
    try {
      keep.kill();
    } catch (...) {
      std::fprintf(stderr, "stackless: exception while killing unreferenced tasklet %llu\n",
                   static_cast<unsigned long long>(t->id));
    }
  }
}

tasklet_impl* new_tasklet() {
  scheduler& s = sched();
  auto p = std::make_unique<tasklet_impl>();
  p->sched = &s;
  p->id = s.next_id++;
  p->handles.store(1, std::memory_order_relaxed);
  return p.release();
}

void bind_callable(tasklet_impl* t, std::unique_ptr<bound_callable> f) {
  check_thread(t);
  if (t->is_main) {
    if (!f) throw_tasklet_error("can't unbind the main tasklet");
    throw_tasklet_error("can't (re)bind the main tasklet");
  }
  if (t == t->sched->current) throw_tasklet_error("can't (re)bind the current tasklet");
  if (t->link != link_kind::none) throw_tasklet_error("tasklet is scheduled");
  if (t->started && t->alive) throw_tasklet_error("tasklet has C state on its stack");
  if (t->alive) {
    // Unbinding a paused, never-started tasklet discards it without running anything.
    t->alive = false;
    t->handles.fetch_sub(1, std::memory_order_relaxed);  // the scheduler's; the caller has one
    all_unlink(*t->sched, t);
    if (t->joiners) join_state_end(std::exchange(t->joiners, nullptr));
    t->call.reset();
    if (t->stack) {
      t->sched->stacks.release(t->stack);
      t->stack = nullptr;
      t->fctx = nullptr;
    }
  }
  t->bound = std::move(f);
}

namespace {
void make_alive(tasklet_impl* t, arg_pack_base* args) {
  if (t->alive) throw_tasklet_error("tasklet is alive");
  if (!t->bound) throw_tasklet_error("the tasklet was not bound to a function");
  scheduler& s = *t->sched;
  // The stack first: make_call() moves the callable out of t->bound, so a stack_error after it
  // would leave the tasklet bound to a moved-from callable.
  prepare_stack(s, t);  // may throw stack_error; nothing changed yet
  unique_function call;
  try {
    call = t->bound->make_call(args);  // may throw tasklet_error (arguments don't fit)
  } catch (...) {
    s.stacks.release(t->stack);
    t->stack = nullptr;
    t->fctx = nullptr;
    throw;
  }
  t->bound.reset();
  t->call = std::move(call);
  // The scheduler's reference, until t is reaped. When the caller's handle is the only one, no
  // other thread can touch the count: a plain store saves the atomic add (skynet's case).
  if (t->handles.load(std::memory_order_relaxed) == 1)
    t->handles.store(2, std::memory_order_relaxed);
  else
    t->handles.fetch_add(1, std::memory_order_relaxed);
  t->alive = true;
  t->started = false;
  t->finished = false;
  all_link(s, t);
}
}  // namespace

void bind_args(tasklet_impl* t, arg_pack_base* args) {
  check_thread(t);
  make_alive(t, args);  // alive and paused
}

void setup_tasklet(tasklet_impl* t, arg_pack_base* args) {
  check_thread(t);
  make_alive(t, args);
  ring_append(*t->sched, t);
}

// ---- wait queues ----------------------------------------------------------------------------
void wait_queue::push_back(tasklet_impl* t) noexcept {
  t->queued = true;
  t->next = nullptr;
  t->prev = tail;
  if (tail)
    tail->next = t;
  else
    head = t;
  tail = t;
}
tasklet_impl* wait_queue::pop_front() noexcept {
  tasklet_impl* t = head;
  head = t->next;
  if (head)
    head->prev = nullptr;
  else
    tail = nullptr;
  t->next = t->prev = nullptr;
  t->queued = false;
  return t;
}
void wait_queue::erase(tasklet_impl* t) noexcept {
  if (t->prev)
    t->prev->next = t->next;
  else
    head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    tail = t->prev;
  t->next = t->prev = nullptr;
  t->queued = false;
}

tasklet_impl* current_impl() {
  return sched().current;
}
bool block_trap_of(const tasklet_impl* t) noexcept {
  return t->block_trap;
}
bool is_main_impl(const tasklet_impl* t) noexcept {
  return t->is_main;
}
void* wait_slot(tasklet_impl* t) noexcept {
  return t->slot;
}
wait_owner* waiting_on(const tasklet_impl* t) noexcept {
  return t->owner;
}
bool is_queued(const tasklet_impl* t) noexcept {
  return t->queued;
}

void throw_if_switch_trapped() {
  if (sched().trap > 0) throw_trap();
}
bool switch_trapped() noexcept {
  return tls_sched && tls_sched->trap > 0;
}

void check_point() {
  scheduler& s = sched();
  if (s.current->bomb) [[unlikely]]
    take_bomb(s.current);  // left by deliver_later()
  if (!s.budget_active) [[likely]]
    return;
  if (s.current == s.budget_watchdog) return;
  ++s.budget_checks;
  if (!budget_spent(s)) return;
  if (s.current->atomic || s.trap > 0) {
    s.interrupt_deferred = true;
    return;
  }
  fire_interrupt(s);
}

void deliver_later(std::exception_ptr e) noexcept {
  if (!tls_sched || !e) return;
  tasklet_impl* self = tls_sched->current;
  if (!self->bomb) self->bomb = std::move(e);
}

void park(wait_owner& owner, wait_queue& q, void* slot, block_reason reason, biased_lock* lock) {
  scheduler& s = *tls_sched;
  tasklet_impl* self = s.current;
  tasklet_impl* next = self->next;
  const bool last = (next == self);
  // Leave the ring, enter the owner's queue.
  if (!last) {
    self->prev->next = next;
    next->prev = self->prev;
  }
  --s.runcount;
  self->link = link_kind::wait;
  self->owner = &owner;
  self->slot = slot;
  self->reason = reason;
  q.push_back(self);
  // From here a partner on another thread may complete us; it hands us back through our remote
  // queue, which only this thread reads, so nothing runs us before we have switched away.
  if (lock) lock->unlock();
  if (last) {
    // The last runnable tasklet wants to block (docs/semantics.md §1.10).
    try {
      leave_last(s, self);
    } catch (...) {
      relink_alone(s, self);  // when_idle undid the wait: balance as before
      throw;
    }
  } else {
    s.current = next;
    jump(s, self, next);
  }
  take_bomb(self);
}

void unpark_append(tasklet_impl* t) noexcept {
  scheduler& s = *t->sched;
  t->owner = nullptr;
  t->slot = nullptr;
  t->reason = block_reason::none;
  ring_append(s, t);
}

void unpark_and_switch(tasklet_impl* t) {
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  t->owner = nullptr;
  t->slot = nullptr;
  t->reason = block_reason::none;
  ring_insert_before(s, self->next, t);  // right after the caller
  switch_current(s, t);                  // the caller is now the tail
  take_bomb(self);
}

void unpark_append_and_schedule(tasklet_impl* t) {
  unpark_append(t);
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  switch_current(s, self->next);
  take_bomb(self);
}

bool same_thread(const tasklet_impl* t) noexcept {
  return t->sched == tls_sched;
}

void unpark_remote(tasklet_impl* t) {
  t->owner->add_ref();  // dropped by drop_item once t's thread has taken t in
  push_remote_for(t, remote_item::ready, nullptr, t->owner);
}

void set_idle_waker(void (*f)(void*), void* ctx) {
  scheduler& s = sched();
  std::lock_guard lk(g_threads_mu);
  s.idle_waker = f;
  s.idle_waker_ctx = ctx;
}

void clear_idle_waker(void* ctx) noexcept {
  scheduler* s = tls_sched;
  if (!s) return;
  std::lock_guard lk(g_threads_mu);
  if (s->idle_waker_ctx != ctx) return;
  s->idle_waker = nullptr;
  s->idle_waker_ctx = nullptr;
}

bool remote_work_pending() noexcept {
  return tls_sched && tls_sched->remote_pending.load(std::memory_order_acquire);
}

// ---- biased_lock support (park.hpp) ----------------------------------------------------------
constinit thread_local thread_rec* tls_rec = nullptr;

namespace {
// Records of ended threads, for reuse. Immortal (never destroyed): channels in static storage
// are still locked during exit, after static destructors may have run.
std::mutex& rec_mu() {
  static auto* m = new std::mutex;  // NOLINT: immortal
  return *m;
}
std::vector<thread_rec*>& free_recs() {
  static auto* v = new std::vector<thread_rec*>;  // NOLINT: immortal
  return *v;
}

bool init_bias() noexcept {
#if defined(STACKLESS_TSAN) || defined(_WIN32) || !defined(__linux__)
  return false;  // TSan can't see the asymmetric fence; Windows: not implemented
#else
  // Registration makes MEMBARRIER_CMD_PRIVATE_EXPEDITED (an IPI to the process's running
  // threads, no RCU grace period) available. Refused (old kernel, seccomp): no bias.
  return std::getenv("STACKLESS_NO_BIASED_LOCKS") == nullptr &&
         ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}
}  // namespace

bool g_bias_ok = init_bias();

// Hands the thread's record back at thread exit, also on a thread that takes channel locks
// without ever having a scheduler (one that only drops a channel's last handle, say).
struct rec_release {
  bool armed = false;
  ~rec_release() { release_thread_rec(); }
};
thread_local rec_release tls_rec_release;

thread_rec* make_thread_rec() noexcept {
  tls_rec_release.armed = true;  // first use registers the thread-exit release
  std::lock_guard lk(rec_mu());
  thread_rec* r;
  if (free_recs().empty()) {
    r = new thread_rec;  // NOLINT: never freed; a channel may point at it after the thread ends
  } else {
    r = free_recs().back();
    free_recs().pop_back();
  }
  tls_rec = r;
  return r;
}

void release_thread_rec() noexcept {
  thread_rec* r = tls_rec;
  if (!r || r->in_op.load(std::memory_order_relaxed) != nullptr) return;
  tls_rec = nullptr;
  std::lock_guard lk(rec_mu());
  try {
    free_recs().push_back(r);
  } catch (...) {  // out of memory: the record is leaked, which is harmless
  }
}

void revoke_bias(thread_rec* home, const void* lock, std::atomic<bool>& shared) noexcept {
  shared.store(true, std::memory_order_seq_cst);
#if defined(__linux__) && !defined(STACKLESS_TSAN)
  // Every running thread of the process executes a full barrier before this returns: the home
  // thread's store of in_op and our store of shared_ can no longer both miss each other.
  ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
#endif
  // acquire: what the home thread wrote inside its last biased section is visible to us.
  while (home->in_op.load(std::memory_order_acquire) == lock) biased_lock::pause();
}

void reserve_thread() {
  // The constructing thread gets its scheduler now too: it is about to talk to the new thread,
  // which must not find nobody active before this thread's first channel operation.
  (void)sched();
  std::lock_guard lk(g_threads_mu);
  ++g_active;
}

void adopt_reservation() noexcept {
  tls_reserved = true;
}

void unreserve_thread() noexcept {
  std::lock_guard lk(g_threads_mu);
  --g_active;
  give_up_all();
}

void end_reservation() noexcept {
  if (std::exchange(tls_reserved, false)) unreserve_thread();  // else the scheduler took it over
}

void post_call(scheduler* target, unique_function fn) {
  remote_item it{remote_item::call, nullptr, nullptr, std::move(fn)};
  push_remote(target, std::move(it));
}

}  // namespace detail

// ---- public API -----------------------------------------------------------------------------
using detail::link_kind;
using detail::scheduler;
using detail::tasklet_impl;

detail::tasklet_impl* tasklet::checked() const {
  if (!impl_) throw tasklet_error("operation on a null tasklet handle");
  return impl_;
}

tasklet& tasklet::insert() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  if (t->link == link_kind::wait) detail::throw_tasklet_error("You cannot run a blocked tasklet");
  if (!t->alive) detail::throw_tasklet_error("You cannot run an unbound(dead) tasklet");
  if (t->link == link_kind::none) detail::ring_append(*t->sched, t);
  return *this;
}

tasklet& tasklet::remove() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  if (t->link == link_kind::wait)
    detail::throw_tasklet_error("You cannot remove a blocked tasklet.");
  if (t->link == link_kind::none) return *this;
  scheduler& s = *t->sched;
  if (t == s.current) detail::throw_tasklet_error("The current tasklet cannot be removed.");
  detail::ring_unlink(s, t);
  return *this;
}

void tasklet::run() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  if (t == self) return;
  if (t->link == link_kind::wait) detail::throw_tasklet_error("You cannot run a blocked tasklet");
  if (!t->alive) detail::throw_tasklet_error("You cannot run an unbound(dead) tasklet");
  if (s.trap > 0) detail::throw_trap();
  if (t->link == link_kind::none) detail::ring_append(s, t);  // just before the caller
  detail::switch_current(s, t);  // in place: everything between t and the caller runs first
  detail::take_bomb(self);
}

void tasklet::switch_to() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  if (t == self) return;
  if (t->link == link_kind::wait) detail::throw_tasklet_error("You cannot run a blocked tasklet");
  if (!t->alive) detail::throw_tasklet_error("You cannot run an unbound(dead) tasklet");
  if (s.trap > 0) detail::throw_trap();
  if (t->link == link_kind::none) detail::ring_insert_before(s, self->next, t);
  detail::ring_unlink(s, self);  // the caller is paused
  detail::switch_current(s, t);
  detail::take_bomb(self);
}

void tasklet::kill(bool pending) {
  // tasklet_exit escaping main() would call std::terminate without unwinding main's stack.
  if (impl_ && impl_->is_main)
    detail::throw_tasklet_error(
        "the main tasklet can't be killed: return from main (or throw) to end the thread; "
        "kill_all() kills every other tasklet");
  throw_exception(std::make_exception_ptr(tasklet_exit{}), pending);
}

void tasklet::join() {
  tasklet_impl* t = checked();
  detail::check_thread(t);
  if (t->is_main) detail::throw_tasklet_error("the main tasklet can't be joined: it never ends");
  scheduler& s = *t->sched;
  if (t == s.current) detail::throw_tasklet_error("a tasklet can't join itself");
  if (!t->alive) return;
  if (!t->joiners) t->joiners = detail::join_state_new();
  detail::join_wait(t->joiners);
}

void tasklet::throw_exception(std::exception_ptr e, bool pending) {
  tasklet_impl* t = checked();
  if (t->sched != detail::tls_sched && t->sched) {
    // A tasklet of another thread: the exception is handed to its thread, where the tasklet is
    // unblocked and made runnable (pending semantics: the caller never switches to it).
    if (!e) throw std::invalid_argument("tasklet::throw_exception: null exception_ptr");
    bool is_exit = false;
    try {
      std::rethrow_exception(e);
    } catch (const tasklet_exit&) {
      is_exit = true;
    } catch (...) {
    }
    if (!detail::push_remote_for(t, detail::remote_item::bomb, std::move(e)) && !is_exit)
      detail::throw_tasklet_error("You cannot throw to a dead tasklet (its thread has ended)");
    return;
  }
  detail::check_thread(t);
  // Stackless's throw(None) is a TypeError. Here a null exception_ptr would be undefined
  // behaviour for rethrow_exception, and as a bomb it would just run the target.
  if (!e) throw std::invalid_argument("tasklet::throw_exception: null exception_ptr");
  scheduler& s = *t->sched;
  tasklet_impl* self = s.current;
  if (t == self) std::rethrow_exception(e);
  if (!t->alive) {
    try {
      std::rethrow_exception(e);
    } catch (const tasklet_exit&) {
      return;  // killing a dead tasklet is a no-op
    } catch (...) {
    }
    detail::throw_tasklet_error("You cannot throw to a dead tasklet");
  }
  if (!pending && s.trap > 0) detail::throw_trap();
  t->bomb = std::move(e);
  detail::ensure_unblocked(s, t);
  if (pending) {
    if (t->link == link_kind::none) detail::ring_append(s, t);
    return;
  }
  if (t->link == link_kind::none) detail::ring_append(s, t);  // at the end, just before us
  detail::switch_current(s, t);
  detail::take_bomb(self);
}

bool tasklet::alive() const noexcept {
  return impl_ && impl_->alive;
}
bool tasklet::paused() const noexcept {
  return impl_ && impl_->alive && impl_->link == link_kind::none;
}
bool tasklet::blocked() const noexcept {
  return impl_ && impl_->link == link_kind::wait;
}
bool tasklet::scheduled() const noexcept {
  return impl_ && impl_->link != link_kind::none;
}
bool tasklet::is_main() const noexcept {
  return impl_ && impl_->is_main;
}
bool tasklet::is_current() const noexcept {
  // Only this thread's scheduler may be read: another thread's may be gone (or changing).
  return impl_ && impl_->sched == detail::tls_sched && detail::tls_sched &&
         detail::tls_sched->current == impl_;
}
bool tasklet::atomic() const noexcept {
  return impl_ && impl_->atomic;
}
bool tasklet::set_atomic(bool flag) {
  tasklet_impl* t = checked();
  bool old = t->atomic;
  t->atomic = flag;
  if (!flag && old && t->sched == detail::tls_sched && t->sched->current == t &&
      t->sched->interrupt_deferred) {
    detail::check_point();  // a deferred interrupt fires as the atomic section ends
  }
  return old;
}
bool tasklet::block_trap() const noexcept {
  return impl_ && impl_->block_trap;
}
void tasklet::set_block_trap(bool flag) noexcept {
  if (impl_) impl_->block_trap = flag;
}
tasklet tasklet::next() const noexcept {
  if (!impl_ || impl_->link == link_kind::none) return {};
  return from_impl(impl_->next);
}
tasklet tasklet::prev() const noexcept {
  if (!impl_ || impl_->link == link_kind::none) return {};
  return from_impl(impl_->prev);
}
std::uint64_t tasklet::id() const noexcept {
  return impl_ ? impl_->id : 0;
}
std::string tasklet::name() const {
  if (!impl_) return {};
  if (!impl_->name.empty()) return impl_->name;
  return "tasklet " + std::to_string(impl_->id);
}
tasklet& tasklet::set_name(std::string n) {
  checked()->name = std::move(n);
  return *this;
}
std::size_t tasklet::stack_size() const noexcept {
  if (!impl_) return 0;
  // Another thread's tasklet: its stack and its scheduler are that thread's (maybe freed).
  if (impl_->sched != detail::tls_sched || !impl_->sched) return impl_->stack_size;
  if (impl_->stack) return impl_->stack->usable;
  return impl_->stack_size ? impl_->stack_size : impl_->sched->default_stack;
}
tasklet& tasklet::set_stack_size(std::size_t bytes) {
  if (bytes < 16 * 1024) throw std::invalid_argument("tasklet stack size must be at least 16 KiB");
  checked()->stack_size = bytes;
  return *this;
}

void run() {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  detail::take_remote(s);          // tasklets other threads made runnable take part in this run
  if (self->next == self) return;  // nothing else runnable
  if (s.trap > 0) detail::throw_trap();
  tasklet_impl* next = self->next;
  s.watchdogs.push_back(self);
  detail::ring_unlink(s, self);
  try {
    detail::switch_current(s, next);
  } catch (...) {
    // not reached: switch_current does not throw; kept for symmetry
    throw;
  }
  auto it = std::find(s.watchdogs.begin(), s.watchdogs.end(), self);
  if (it != s.watchdogs.end()) s.watchdogs.erase(it, s.watchdogs.end());
  detail::take_bomb(self);
}

tasklet run(const run_budget& b) {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  const bool owner = !s.budget_active && (b.time.count() > 0 || b.switches > 0 || b.checks > 0);
  if (owner) {
    s.budget_active = true;
    s.interrupt_deferred = false;
    s.budget = b;
    s.budget_watchdog = self;
    s.budget_start = s.slice_start = std::chrono::steady_clock::now();
    s.budget_switch0 = s.switch_count;
    s.budget_checks = s.slice_checks0 = 0;
    s.interrupted = nullptr;
  }
  struct reset_t {
    scheduler& s;
    bool owner;
    ~reset_t() {
      if (owner) {
        s.budget_active = false;
        s.budget_watchdog = nullptr;
      }
    }
  } reset{s, owner};
  run();
  if (owner && s.interrupted) {
    tasklet r(tasklet::adopt, s.interrupted);  // adopts the reference fire_interrupt took
    s.interrupted = nullptr;
    return r;
  }
  return {};
}

void tick() {
  scheduler& s = detail::sched();
  // A soft interrupt already yielded inside check_point() (the victim stays in the run queue);
  // when the victim is resumed it just goes on, it must not yield a second time.
  if (s.budget_active) [[unlikely]]
    detail::check_point();
}

void schedule() {
  scheduler& s = detail::sched();
  if (s.budget_active) [[unlikely]] {
    detail::check_point();
  }
  tasklet_impl* self = s.current;
  // Alone here: take in what other threads made runnable (the I/O poll tasklet relies on it).
  if (self->next == self) detail::take_remote(s);
  if (self->next == self) {
    detail::take_bomb(self);
    return;
  }
  if (s.trap > 0) detail::throw_trap();
  detail::switch_current(s, self->next);
  detail::take_bomb(self);
}

void schedule_remove() {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  if (s.trap > 0 && self->next != self) detail::throw_trap();
  if (self->next == self) {
    tasklet_impl* w = detail::watchdog_or_main(s);
    if (w == self) return;  // main alone: a no-op
    if (s.trap > 0) detail::throw_trap();
    detail::ring_unlink(s, self);
    try {
      detail::leave_last(s, self);
    } catch (...) {
      detail::relink_alone(s, self);
      throw;
    }
  } else {
    tasklet_impl* next = self->next;
    detail::ring_unlink(s, self);
    detail::switch_current(s, next);
  }
  detail::take_bomb(self);
}

std::ostream& operator<<(std::ostream& os, const tasklet& t) {
  if (!t) return os << "<tasklet null>";
  return os << "<tasklet " << t.id() << " '" << t.name() << "'>";
}

void kill_all() {
  scheduler& s = detail::sched();
  if (!s.current->is_main || !s.watchdogs.empty())
    detail::throw_tasklet_error("kill_all() must be called from the main tasklet, outside run()");
  if (s.trap > 0) detail::throw_trap();
  detail::report_leftovers(s, "at kill_all(); unwinding them");
  if (std::exception_ptr e = detail::unwind_all(s)) std::rethrow_exception(e);
}

tasklet getcurrent() {
  return tasklet::from_impl(detail::sched().current);
}
tasklet getmain() {
  return tasklet::from_impl(detail::sched().main_t);
}
int getruncount() noexcept {
  return detail::tls_sched ? detail::tls_sched->runcount : 1;
}
int switch_trap(int delta) {
  scheduler& s = detail::sched();
  int old = s.trap;
  s.trap += delta;
  // An interrupt deferred by the trap fires as soon as the trap is released (as on leaving an
  // atomic section).
  if (old > 0 && s.trap <= 0 && s.interrupt_deferred && !s.current->atomic) [[unlikely]]
    detail::check_point();
  return old;
}

atomic_section::atomic_section() : old_(getcurrent().set_atomic(true)) {}
atomic_section::~atomic_section() {
  try {
    getcurrent().set_atomic(old_);
  } catch (...) {
    // an interrupt cannot throw here: fire_interrupt only switches
  }
}

schedule_callback set_schedule_callback(schedule_callback cb) {
  return std::exchange(detail::sched().sched_cb, std::move(cb));
}
schedule_callback get_schedule_callback() {
  return detail::sched().sched_cb;
}
error_handler set_error_handler(error_handler h) {
  return std::exchange(detail::sched().err_handler, std::move(h));
}
std::size_t default_stack_size() noexcept {
  return detail::tls_sched ? detail::tls_sched->default_stack : detail::kDefaultStack;
}
void set_default_stack_size(std::size_t bytes) {
  if (bytes < 16 * 1024) throw std::invalid_argument("tasklet stack size must be at least 16 KiB");
  detail::sched().default_stack = bytes;
}
stack_stats get_stack_stats() noexcept {
  stack_stats r;
  if (auto* s = detail::tls_sched) {
    r.in_use = s->stacks.in_use();
    r.pooled = s->stacks.pooled();
    r.mapped = s->stacks.mapped();
    r.guarded = s->stacks.guarded();
    r.guard_install = s->stacks.guard_install();
  }
  return r;
}
std::size_t alive_tasklets() noexcept {
  return detail::tls_sched ? detail::tls_sched->alive_count : 0;
}

}  // namespace stackless

// ---- threads: run(thread_block) and worker_pool -------------------------------------------

namespace stackless {

void run(thread_block_t) {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  for (;;) {
    detail::take_remote(s);
    if (self->next != self) break;
    if (s.alive_count == 0) return;             // nothing here that another thread could wake
    if (!detail::thread_block_wait(s)) return;  // nobody else can ever give us work
  }
  const bool old = std::exchange(self->threadblock_run, true);
  struct reset_t {
    tasklet_impl* t;
    bool old;
    ~reset_t() { t->threadblock_run = old; }
  } reset{self, old};
  run();
}

struct worker_pool::state {
  std::vector<std::thread> threads;
  std::vector<scheduler*> scheds;  // guarded by g_threads_mu
  std::condition_variable cv;      // a worker registered or went idle
  bool stop = false;
  std::exception_ptr first_error;
  std::atomic<unsigned> next{0};
};

namespace {
void worker_main(worker_pool::state* ps, unsigned i);
}

worker_pool::worker_pool(unsigned n) : st_(std::make_unique<state>()) {
  (void)detail::sched();  // the owner counts as active from now on (see reserve_thread)
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  st_->scheds.assign(n, nullptr);
  for (unsigned i = 0; i < n; ++i) st_->threads.emplace_back(worker_main, st_.get(), i);
  std::unique_lock lk(detail::g_threads_mu);
  st_->cv.wait(lk, [&] {
    return std::all_of(st_->scheds.begin(), st_->scheds.end(), [](auto* p) { return p; });
  });
}

worker_pool::~worker_pool() {
  try {
    join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stackless: worker_pool: uncaught exception in a worker: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "stackless: worker_pool: uncaught exception in a worker\n");
  }
}

unsigned worker_pool::size() const noexcept {
  return static_cast<unsigned>(st_->scheds.size());
}
unsigned worker_pool::next_worker() noexcept {
  return st_->next.fetch_add(1, std::memory_order_relaxed) % size();
}

void worker_pool::post(unsigned worker, detail::unique_function fn) {
  if (worker >= size()) throw std::out_of_range("worker_pool: no worker " + std::to_string(worker));
  if (st_->threads.empty()) throw std::logic_error("worker_pool: already joined");
  detail::post_call(st_->scheds[worker], std::move(fn));
}

void worker_pool::join() {
  if (st_->threads.empty()) return;
  {
    std::unique_lock lk(detail::g_threads_mu);
    // Quiescent: every worker asleep with nothing queued for it.
    st_->cv.wait(lk, [&] {
      return std::all_of(st_->scheds.begin(), st_->scheds.end(),
                         [](scheduler* s) { return s->thread_blocked && s->remote_q.empty(); });
    });
    st_->stop = true;
    for (scheduler* s : st_->scheds) s->wake_cv.notify_one();
  }
  for (auto& t : st_->threads) t.join();
  st_->threads.clear();
  if (st_->first_error) std::rethrow_exception(std::exchange(st_->first_error, nullptr));
}

namespace {
void worker_main(worker_pool::state* ps, unsigned i) {
  scheduler& s = detail::sched();
  {
    std::lock_guard lk(detail::g_threads_mu);
    ps->scheds[i] = &s;
    ps->cv.notify_all();
  }
  for (;;) {
    detail::take_remote(s);
    if (s.runcount > 1) {
      try {
        run();
      } catch (...) {
        std::lock_guard lk(detail::g_threads_mu);
        if (!ps->first_error) ps->first_error = std::current_exception();
      }
      continue;
    }
    if (!ps->stop && detail::spin_for_remote(s)) continue;
    std::unique_lock lk(detail::g_threads_mu);
    if (!s.remote_q.empty()) continue;
    if (ps->stop) break;
    s.thread_blocked = true;
    --detail::g_active;
    detail::give_up_all();  // if we were the last one active, sleepers can't be woken
    ps->cv.notify_all();
    s.wake_cv.wait(lk, [&] { return !s.thread_blocked || ps->stop; });
    if (s.thread_blocked) {  // woken by stop, not by work
      s.thread_blocked = false;
      ++detail::g_active;
    }
  }
  // Leaving the thread destroys its scheduler, which kills whatever is still blocked.
}
}  // namespace

}  // namespace stackless
