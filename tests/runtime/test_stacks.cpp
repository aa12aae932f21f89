// Lifetime, threads, stacks and binding: the parts of Stackless's tasklet contract that a
// fiber-based C++ port has to define explicitly (docs §1.4 __del__, §1.11, §4 "Finalization").
#include <stackless/stackless.hpp>

#include <atomic>
#include <limits>
#include <thread>
#include <vector>

#include "helpers.hpp"

using namespace stackless;
using rt::msg_is;

BOOST_AUTO_TEST_SUITE(TestLifetime)

// test_miscell.py TestTaskletDel (C-state tasklets are killed when collected): a started tasklet
// whose last handle goes away while it is paused is killed, so its destructors run.
BOOST_FIXTURE_TEST_CASE(test_paused_dropped_is_killed, clean_scheduler) {
  bool unwound = false, after = false;
  {
    tasklet t = tasklet([&] {
      rt::sentinel s(&unwound);
      schedule_remove();
      after = true;
    })();
    run();
    BOOST_TEST(t.paused());
    BOOST_TEST(!unwound);
  }
  BOOST_TEST(unwound);
  BOOST_TEST(!after);
  BOOST_TEST(alive_tasklets() == 0u);
}

// docs §4: a bound-with-arguments (paused, never started) tasklet dropped without running: its
// body never runs, its captures are destroyed.
BOOST_FIXTURE_TEST_CASE(test_never_started_dropped, clean_scheduler) {
  bool ran = false, captured_gone = false;
  {
    auto cap = std::make_shared<rt::sentinel>(&captured_gone);
    tasklet t([&ran, cap](int) { ran = true; }, 1);
    cap.reset();
    BOOST_TEST(t.paused());
  }
  BOOST_TEST(!ran);
  BOOST_TEST(captured_gone);
  BOOST_TEST(alive_tasklets() == 0u);
}

// tasklet.hpp: the scheduler keeps scheduled and blocked tasklets alive without handles.
BOOST_FIXTURE_TEST_CASE(test_scheduler_owns_scheduled_and_blocked, clean_scheduler) {
  channel<int> c;
  int got = 0;
  bool ran = false;
  tasklet([&] { got = c.receive(); })();
  tasklet([&] { ran = true; })();
  run();
  BOOST_TEST(ran);
  BOOST_TEST(c.balance() == -1);
  c.send(9);
  BOOST_TEST(got == 9);
}

// docs §1.11 / §4: when a thread ends, its remaining tasklets are killed (forced unwind), so a
// tasklet still blocked on a channel has its destructors run by the time join() returns.
BOOST_FIXTURE_TEST_CASE(test_forced_unwind_at_thread_exit, clean_scheduler) {
  std::atomic<bool> unwound{false}, blocked{false}, after{false};
  std::thread th([&] {
    channel<int> c;
    tasklet([&] {
      struct s {
        std::atomic<bool>* f;
        ~s() { f->store(true); }
      } guard{&unwound};
      c.receive();
      after = true;
    })();
    run();
    blocked = c.balance() == -1;
  });
  th.join();
  BOOST_TEST(blocked.load());
  BOOST_TEST(unwound.load());
  BOOST_TEST(!after.load());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestThreads)

// threads.rst: a tasklet belongs to its creator's thread; running, switching to, queueing or
// rebinding it from another thread throws wrong_thread_error (Stackless: "can't switch to a
// different thread."). kill() and throw_exception() do cross threads (Stackless 3: the
// exception is delivered in the tasklet's own thread), see test_kill_from_other_thread.
BOOST_FIXTURE_TEST_CASE(test_wrong_thread, clean_scheduler) {
  tasklet t = tasklet([] {})();
  int errors = 0;
  std::thread th([&] {
    auto expect = [&](auto&& f) {
      try {
        f();
      } catch (const wrong_thread_error&) {
        ++errors;
      }
    };
    expect([&] { t.run(); });
    expect([&] { t.switch_to(); });
    expect([&] { t.insert(); });
    expect([&] { t.remove(); });
    expect([&] { t.bind([] {}); });
  });
  th.join();
  BOOST_TEST(errors == 5);
  BOOST_TEST(t.scheduled());
  run();
  BOOST_TEST(!t.alive());
}

// A kill from another thread is delivered in the tasklet's own thread, before its body runs.
BOOST_FIXTURE_TEST_CASE(test_kill_from_other_thread, clean_scheduler) {
  bool ran = false;
  tasklet t = tasklet([&] { ran = true; })();
  std::thread th([&] { t.kill(); });
  th.join();
  run();
  BOOST_TEST(!ran);
  BOOST_TEST(!t.alive());
}

// threads.rst: each thread has its own scheduler and main tasklet.
BOOST_FIXTURE_TEST_CASE(test_per_thread_scheduler, clean_scheduler) {
  tasklet main = getmain();
  std::string log;
  bool other_main_differs = false;
  std::thread th([&] {
    other_main_differs = !(getmain() == main);
    tasklet([&] { log += "a"; })();
    tasklet([&] { log += "b"; })();
    run();
  });
  th.join();
  BOOST_TEST(other_main_differs);
  BOOST_TEST(log == "ab");
  BOOST_TEST(getruncount() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestStacks)

// hackysack-scale (docs §3): 100,000 tasklets alive at once, all parked on one channel, then
// released. Every stack has a guard page.
// TSan counts every fiber as a thread and dies past 8128 of them: a smaller crowd there.
#if defined(__SANITIZE_THREAD__)
#define STACKS_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STACKS_UNDER_TSAN 1
#endif
#endif
#ifdef STACKS_UNDER_TSAN
constexpr int k_crowd = 5000;
#elif defined(_WIN32)
// Each fiber stack is two Linux mappings under Wine (stack and guard page): 100,000 of them
// exceed vm.max_map_count (65530); CreateFiberEx then fails with "Not enough memory".
constexpr int k_crowd = 20000;
#else
constexpr int k_crowd = 100000;
#endif
BOOST_FIXTURE_TEST_CASE(test_100k_tasklets, clean_scheduler) {
  constexpr int n = k_crowd;
  channel<int> c;
  long sum = 0;
  for (int i = 0; i < n; ++i) tasklet([&] { sum += c.receive(); })();
  run();
  BOOST_TEST(c.balance() == -n);
  BOOST_TEST(alive_tasklets() == static_cast<std::size_t>(n));
  stack_stats st = get_stack_stats();
  BOOST_TEST(st.in_use == static_cast<std::size_t>(n));
  BOOST_TEST(st.mapped >= st.in_use);
  if (st.guard_install) {
    BOOST_TEST(st.guarded == st.mapped);  // MADV_GUARD_INSTALL: no mapping cost per guard
  } else {
    BOOST_TEST(st.guarded > 0u);  // mprotect guards are capped (stack_pool.hpp)
  }
  c.set_preference(0);  // the sender continues: release all without n switches back and forth
  for (int i = 0; i < n; ++i) c.send(1);
  run();
  BOOST_TEST(sum == n);
  BOOST_TEST(alive_tasklets() == 0u);
  st = get_stack_stats();
  BOOST_TEST(st.in_use == 0u);
  BOOST_TEST(st.pooled == st.mapped);  // stacks are kept for reuse
}

// A huge stack request is a clear stack_error at setup(), not a crash, and leaves the tasklet
// bound and intact so it can be set up again with a sane size.
BOOST_FIXTURE_TEST_CASE(test_stack_error_huge, clean_scheduler) {
  std::string seen;
  tasklet t([&seen, s = std::string("payload-kept")] { seen = s; });
  t.set_stack_size(std::size_t{1} << 46);
  BOOST_CHECK_THROW(t.setup(), stack_error);
  BOOST_TEST(!t.alive());
  BOOST_TEST(getruncount() == 1);
  t.set_stack_size(64 * 1024);
  t.setup();
  run();
  BOOST_TEST(seen == "payload-kept");
}

// A size that overflows when rounded to pages is a stack_error too.
BOOST_FIXTURE_TEST_CASE(test_stack_error_overflowing_size, clean_scheduler) {
  tasklet t([] {});
  t.set_stack_size(std::numeric_limits<std::size_t>::max());
  BOOST_CHECK_THROW(t.setup(), stack_error);
  BOOST_TEST(!t.alive());
  BOOST_CHECK_THROW(
      tasklet([](int) {}).set_stack_size(std::numeric_limits<std::size_t>::max() - 4096).setup(1),
      stack_error);
}

// set_stack_size below 16 KiB is refused; stack_size() reports the rounded usable size once set up.
BOOST_FIXTURE_TEST_CASE(test_stack_size, clean_scheduler) {
  tasklet t([] {});
  BOOST_CHECK_THROW(t.set_stack_size(1024), std::invalid_argument);
  BOOST_TEST(t.stack_size() == default_stack_size());
  t.set_stack_size(100 * 1000);
  t.setup();
  BOOST_TEST(t.stack_size() >= 100u * 1000u);
  BOOST_TEST(t.stack_size() % 4096 == 0u);
  run();
}

// A tasklet can use a good part of its stack (no false overflow).
BOOST_FIXTURE_TEST_CASE(test_deep_stack_use, clean_scheduler) {
  std::size_t got = 0;
  tasklet t([&] {
    volatile char buf[48 * 1024];
    for (std::size_t i = 0; i < sizeof buf; i += 512) buf[i] = static_cast<char>(i);
    got = sizeof buf;
  });
  t.set_stack_size(256 * 1024);
  t.setup();
  run();
  BOOST_TEST(got == 48u * 1024u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestBind)

// test_functionality.py testSig_setup / binding.hpp: arithmetic conversions and string literals
// are accepted.
BOOST_FIXTURE_TEST_CASE(test_bind_conversions, clean_scheduler) {
  double d = 0;
  long l = 0;
  std::string s;
  tasklet([&](double a, long b, std::string c) {
    d = a;
    l = b;
    s = c;
  })(3, 2.9f, "lit");
  run();
  BOOST_TEST(d == 3.0);
  BOOST_TEST(l == 2);
  BOOST_TEST(s == "lit");
}

// binding.hpp: an argument that doesn't fit is a tasklet_error naming it; the tasklet stays bound
// and can be set up again correctly.
BOOST_FIXTURE_TEST_CASE(test_bind_mismatch, clean_scheduler) {
  int got = 0;
  tasklet t([&](int v) { got = v; });
  BOOST_CHECK_THROW(t.setup(std::string("x")), tasklet_error);
  BOOST_CHECK_EXCEPTION(t.setup(), tasklet_error,
                        msg_is("tasklet::setup: the bound callable takes 1 argument(s), 0 given"));
  BOOST_CHECK_EXCEPTION(t.setup(1, 2), tasklet_error,
                        msg_is("tasklet::setup: the bound callable takes 1 argument(s), 2 given"));
  BOOST_TEST(!t.alive());
  BOOST_TEST(getruncount() == 1);
  t.setup(5);
  run();
  BOOST_TEST(got == 5);
}

// binding.hpp: a generic lambda can only be bound without arguments.
BOOST_FIXTURE_TEST_CASE(test_bind_generic_lambda, clean_scheduler) {
  bool ran = false;
  BOOST_CHECK_THROW(tasklet([](auto) {})(1), tasklet_error);
  tasklet([&](auto...) { ran = true; })();
  run();
  BOOST_TEST(ran);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestThreadExit)

// docs §4 Finalization: at thread exit every remaining tasklet is killed: a never-run scheduled
// one dies without running its body (its captures are destroyed), a paused one and a runnable one
// in the middle of their bodies are unwound.
BOOST_FIXTURE_TEST_CASE(test_thread_exit_kills_all_kinds, clean_scheduler) {
  std::atomic<int> body_ran{0};
  std::atomic<int> unwound{0};
  struct counter {
    // A constructor, not an aggregate: make_shared's parenthesised aggregate init (P0960) is
    // not in clang 14.
    explicit counter(std::atomic<int>* p) : c(p) {}
    std::atomic<int>* c;
    ~counter() { ++*c; }
  };
  std::thread th([&] {
    auto cap = std::make_shared<counter>(&unwound);
    tasklet([&body_ran, cap] { ++body_ran; })();  // scheduled, never run
    cap.reset();
    tasklet paused = tasklet([&] {
      counter c{&unwound};
      schedule_remove();
      ++body_ran;
    })();
    tasklet runnable = tasklet([&] {
      counter c{&unwound};
      for (;;) schedule();
    })();
    paused.run();    // paused now
    runnable.run();  // runnable, inside schedule()
    // handles to `paused` and `runnable` still exist when the thread exits
    static thread_local tasklet keep_paused, keep_runnable;
    keep_paused = paused;
    keep_runnable = runnable;
  });
  th.join();
  BOOST_TEST(body_ran.load() == 0);
  BOOST_TEST(unwound.load() == 3);
}

// An ending thread's thread_local destructors run while its thread_locals are still intact, as
// the C++ rules say. MinGW: emutls frees the thread_locals' storage from a pthread key made
// before libstdc++'s destructor key, unless the runtime makes that one first
// (scheduler_win.cpp); the destructors then saw every thread_local reset (and ran on freed
// memory: a thread_local tasklet handle freed its tasklet twice in the test above).
namespace {
thread_local int tl_marker = 0;
std::atomic<int> g_marker_seen{-1};
}  // namespace
BOOST_FIXTURE_TEST_CASE(test_thread_local_destructors_see_thread_locals, clean_scheduler) {
  struct probe {
    ~probe() { g_marker_seen = tl_marker; }
  };
  g_marker_seen = -1;
  std::thread th([] {
    tasklet([] { tl_marker = 42; })();
    run();  // the thread has its scheduler before the probe below
    static thread_local probe p;
    (void)p;
  });
  th.join();
  BOOST_TEST(g_marker_seen.load() == 42);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(TestOrphans)

// docs §1.4 __del__: a tasklet that pauses itself (schedule_remove) when no handle names it can
// never be resumed; like a collected C-state tasklet it is killed, so its destructors run.
BOOST_FIXTURE_TEST_CASE(test_orphan_schedule_remove_is_killed, clean_scheduler) {
  bool unwound = false, after = false;
  tasklet([&] {
    rt::sentinel s(&unwound);
    schedule_remove();
    after = true;
  })();
  run();
  BOOST_TEST(unwound);
  BOOST_TEST(!after);
  BOOST_TEST(alive_tasklets() == 0u);
}

// Same for a tasklet that pauses itself with switch_to(): it is unwound before the target runs on.
BOOST_FIXTURE_TEST_CASE(test_orphan_switch_is_killed, clean_scheduler) {
  rt::log log;
  bool unwound = false;
  tasklet target([&] { log("target"); });
  target.setup();
  target.remove();
  tasklet([&] {
    rt::sentinel s(&unwound);
    log("orphan");
    target.switch_to();
    log("orphan-resumed");
  })();
  run();
  BOOST_TEST(unwound);
  BOOST_TEST(log.str() == "orphan target");
  BOOST_TEST(alive_tasklets() == 0u);
}

// A tasklet that keeps a handle to itself before pausing (the wait_for_result() pattern) is not
// an orphan.
BOOST_FIXTURE_TEST_CASE(test_self_handle_is_not_orphan, clean_scheduler) {
  std::vector<tasklet> waiters;
  rt::log log;
  tasklet([&] {
    waiters.push_back(getcurrent());
    schedule_remove();
    log("woken");
  })();
  run();
  BOOST_REQUIRE_EQUAL(waiters.size(), 1u);
  BOOST_TEST(waiters[0].paused());
  waiters[0].insert();
  waiters.clear();
  run();
  BOOST_TEST(log.str() == "woken");
}

BOOST_AUTO_TEST_SUITE_END()
