// Threads: every thread has its own scheduler and tasklets never migrate. This file holds what
// the schedulers of different threads share: the remote queues (how one thread hands work to
// another), the thread-block rule's wait (a thread whose tasklets are all blocked sleeps while
// another thread could still wake it), stackless::thread's reservations, run(thread_block) and
// worker_pool.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "scheduler_internal.hpp"
#include "stackless/runtime/threads.hpp"

namespace stackless {
namespace detail {

// Every thread has its own scheduler; tasklets never migrate. Another thread hands work to a
// scheduler through its remote queue: "make this blocked tasklet runnable" (a channel partner
// completed its operation), "throw into this tasklet" (a kill from another thread), or "run
// this call" (worker_pool::spawn). The owner takes the queue in at switch points (on_resume)
// and whenever it runs out of work. A thread whose tasklets are all blocked sleeps in
// thread_block_wait() while some other thread is still active (could wake it) instead of
// raising deadlock (Stackless's thread-block rule); g_active counts the schedulers that are not
// asleep there. All of it is guarded by g_threads_mu.
namespace {
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

}  // namespace

bool push_remote_for(tasklet_impl* t, remote_item::kind_t kind, std::exception_ptr e,
                     wait_owner* owner_ref) {
  retain(t);
  return push_remote(t->sched, remote_item{kind, t, std::move(e), {}, owner_ref});
}

namespace {
void apply_bomb(scheduler& s, tasklet_impl* t, std::exception_ptr e) {
  if (!t->alive()) return;
  t->bomb = std::move(e);
  tls_slow |= kSlowCheck;
  ensure_unblocked(s, t);
  if (t->link == link_kind::none) ring_append(s, t);
}

}  // namespace

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
namespace {
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
      biased_lock::pause();
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

}  // namespace

// Set when this thread gave up while unseen threads existed (for the deadlock message).
constinit thread_local int tls_gave_up_unseen = 0;

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

void register_scheduler(scheduler* s) {
  std::lock_guard lk(g_threads_mu);
  g_live.push_back(s);
  // A stackless::thread was counted active from its start (thread_reservation); take that over.
  if (!std::exchange(tls_reserved, false)) ++g_active;
}

void unregister_scheduler(scheduler* s) noexcept {
  std::vector<remote_item> leftovers;
  {
    std::lock_guard lk(g_threads_mu);
    g_live.erase(std::find(g_live.begin(), g_live.end(), s));
    if (!s->thread_blocked) --g_active;
    give_up_all();  // a thread that ends can't wake anybody any more
    leftovers.swap(s->remote_q);
  }
  for (auto& it : leftovers) drop_item(it);  // outside the lock: may free a channel
}

}  // namespace detail

// ---- run(thread_block) and worker_pool --------------------------------------------------------
using detail::scheduler;
using detail::tasklet_impl;

void run(thread_block_t) {
  scheduler& s = detail::sched();
  tasklet_impl* self = s.current;
  for (;;) {
    detail::take_remote(s);
    if (self->next != self) break;
    if (s.all.empty()) return;                  // nothing here that another thread could wake
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

void worker_pool::worker_main(state* ps, unsigned i) {
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

}  // namespace stackless
