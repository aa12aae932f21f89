// Issue 13: lifetimes a C++ user can't get wrong. The end-of-thread rule and kill_all(),
// stackless::scope, tasklet::join(), and killing main (docs/semantics.md, "The end of a
// thread" and "Scopes").
#include <stackless/stackless.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "helpers.hpp"

using namespace stackless;
using rt::msg_is;

BOOST_AUTO_TEST_SUITE(EndOfThread)

// Three runnable tasklets and one blocked on a channel when kill_all() runs: none of them runs
// its normal code again; each one's destructors run. (Killing them one by one, as the thread
// teardown did, let the tasklets queued after the first one run their normal code.)
BOOST_FIXTURE_TEST_CASE(kill_all_runs_no_normal_code, clean_scheduler) {
  rt::log log;
  channel<int> ch;
  auto body = [&](std::string name) {
    struct guard {
      rt::log& log;
      std::string n;
      ~guard() { log("~" + n); }
    } g{log, name};
    log(name);
    schedule();
    log(name + "-normal");  // must never run: kill_all() comes first
    ch.send(1);
  };
  for (const char* n : {"a", "b", "c"}) tasklet{body}(std::string(n));
  tasklet([&] {
    struct guard {
      rt::log& log;
      ~guard() { log("~r"); }
    } g{log};
    (void)ch.receive();
    log("r-normal");
  })();
  schedule();  // a, b, c, r each run once: a b c paused in schedule(), r blocked
  BOOST_TEST(log.str() == "a b c");
  BOOST_TEST(ch.balance() == -1);
  kill_all();
  BOOST_TEST(log.str() == "a b c ~a ~b ~c ~r");
  BOOST_TEST(ch.balance() == 0);
  BOOST_TEST(alive_tasklets() == 0u);
}

// The same at the end of a thread (where the scheduler does it by itself).
BOOST_AUTO_TEST_CASE(thread_end_runs_no_normal_code) {
  std::string out;
  std::thread([&] {
    auto body = [&](std::string name) {
      struct guard {
        std::string& out;
        std::string n;
        ~guard() { out += "~" + n + " "; }
      } g{out, name};
      out += name + " ";
      schedule();
      out += name + "-normal ";
    };
    for (const char* n : {"a", "b", "c"}) tasklet{body}(std::string(n));
    schedule();
  }).join();
  BOOST_TEST(out == "a b c ~a ~b ~c ");
}

// A tasklet that blocks while it is unwound, on something nothing completes, gets tasklet_error
// at that operation (never terminate); kill_all() re-throws it once every tasklet is unwound.
BOOST_FIXTURE_TEST_CASE(blocking_while_unwound_raises, clean_scheduler) {
  channel<int> ch;
  bool other_unwound = false;
  tasklet t([&] {
    try {
      schedule();
    } catch (const tasklet_exit&) {
      ch.send(1);  // refused: nobody else may run now
    }
  });
  t();
  tasklet([&] {
    rt::sentinel s(&other_unwound);
    schedule();
  })();
  schedule();
  BOOST_CHECK_EXCEPTION(kill_all(), tasklet_error, [&](const tasklet_error& e) {
    const std::string what = e.what();
    BOOST_TEST_INFO(what);
    return what.find(
               "blocked while being unwound by kill_all() or at the end of its thread, and "
               "nothing could complete that operation") != std::string::npos;
  });
  BOOST_TEST(!t.alive());
  BOOST_TEST(other_unwound);
  BOOST_TEST(ch.balance() == 0);
}

BOOST_FIXTURE_TEST_CASE(kill_all_only_from_main, clean_scheduler) {
  bool refused = false;
  tasklet([&] {
    try {
      kill_all();
    } catch (const tasklet_error& e) {
      refused =
          std::string(e.what()) == "kill_all() must be called from the main tasklet, outside run()";
    }
  })();
  run();
  BOOST_TEST(refused);
}

// A never-started tasklet dies without running anything; kill_all() with nothing to kill is a
// no-op.
BOOST_FIXTURE_TEST_CASE(kill_all_never_started_and_empty, clean_scheduler) {
  bool ran = false;
  tasklet([&] { ran = true; })();
  tasklet paused([&](int) { ran = true; }, 0);  // bound, alive, not scheduled
  kill_all();
  BOOST_TEST(!ran);
  BOOST_TEST(!paused.alive());
  kill_all();
}

// A tasklet owning a buffered std::ofstream, blocked at kill_all(): its destructor flushes the
// data to the file.
BOOST_FIXTURE_TEST_CASE(buffered_file_flushed_by_unwinding, clean_scheduler) {
  const std::string path = "test_lifetimes_buffered.txt";
  channel<int> never;
  tasklet([&] {
    std::ofstream f(path);
    f << "written before kill_all\n";  // in the stream's buffer
    (void)never.receive();
  })();
  schedule();
  kill_all();
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  BOOST_TEST(ss.str() == "written before kill_all\n");
  in.close();  // Windows removes no file that is still open
  BOOST_TEST(std::remove(path.c_str()) == 0);
}

// The same with a stackless::io::file at the end of a thread: its last flush is I/O that the
// poll tasklet (doomed too) completes during the unwinding; the data reaches the file.
BOOST_AUTO_TEST_CASE(io_file_flushed_at_thread_end) {
  const std::string path = "test_lifetimes_io_file.txt";
  std::remove(path.c_str());
  std::thread([&] {
    channel<int> never;
    bool waiting = false;
    tasklet([&] {
      auto f = io::open(path, "w");
      f.write("buffered line\n");  // in the file's buffer
      waiting = true;
      (void)never.receive();
    })();
    while (!waiting) schedule();  // io::open goes through the poller: it takes a few rounds
  }).join();
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  BOOST_TEST(ss.str() == "buffered line\n");
  in.close();  // Windows removes no file that is still open
  BOOST_TEST(std::remove(path.c_str()) == 0);
}

// Killing main: refused with a clear error (tasklet_exit escaping main() would terminate without
// unwinding main's stack), from main and from a tasklet.
BOOST_FIXTURE_TEST_CASE(killing_main_is_refused, clean_scheduler) {
  const std::string msg =
      "the main tasklet can't be killed: return from main (or throw) to end the thread; "
      "kill_all() kills every other tasklet";
  BOOST_CHECK_EXCEPTION(getmain().kill(), tasklet_error, msg_is(msg));
  BOOST_CHECK_EXCEPTION(getmain().kill(true), tasklet_error, msg_is(msg));
  std::string seen;
  tasklet([&] {
    try {
      getmain().kill();
    } catch (const tasklet_error& e) {
      seen = e.what();
    }
  })();
  run();
  BOOST_TEST(seen == msg);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(Join)

BOOST_FIXTURE_TEST_CASE(join_waits_for_the_end, clean_scheduler) {
  rt::log log;
  tasklet t = tasklet([&] {
    log("t1");
    schedule();
    log("t2");
  })();
  t.join();
  log("joined");
  BOOST_TEST(log.str() == "t1 t2 joined");
  BOOST_TEST(!t.alive());
  t.join();  // not alive: returns at once
}

BOOST_FIXTURE_TEST_CASE(join_errors, clean_scheduler) {
  BOOST_CHECK_EXCEPTION(getmain().join(), tasklet_error,
                        msg_is("the main tasklet can't be joined: it never ends"));
  BOOST_CHECK_THROW(tasklet().join(), tasklet_error);
  std::string self_msg;
  tasklet t([&] {
    try {
      getcurrent().join();
    } catch (const tasklet_error& e) {
      self_msg = e.what();
    }
  });
  t();
  run();
  BOOST_TEST(self_msg == "a tasklet can't join itself");
  tasklet never_started([] {});
  never_started.join();  // unbound arguments: not alive
}

// Several joiners, one of them a tasklet; the joined tasklet blocks on a channel meanwhile.
BOOST_FIXTURE_TEST_CASE(join_many_and_blocked, clean_scheduler) {
  rt::log log;
  channel<int> ch;
  tasklet t = tasklet([&] { log("got " + std::to_string(ch.receive())); })();
  tasklet([&] {
    t.join();
    log("tasklet joined");
  })();
  tasklet([&] { ch.send(7); })();
  t.join();
  log("main joined");
  run();
  BOOST_TEST(log.str() == "got 7 main joined tasklet joined");  // main joined first
}

// Joining a tasklet that can never end (blocked, nothing runnable) is a deadlock, as Stackless
// reports a main that blocks with nothing runnable.
BOOST_FIXTURE_TEST_CASE(join_deadlock, clean_scheduler) {
  channel<int> ch;
  tasklet t = tasklet([&] { (void)ch.receive(); })();
  schedule();
  BOOST_CHECK_THROW(t.join(), deadlock_error);
  t.kill();
}

// A joiner that is killed leaves the wait cleanly; a tasklet unbound before starting wakes its
// joiners.
BOOST_FIXTURE_TEST_CASE(join_killed_and_unbound, clean_scheduler) {
  channel<int> ch;
  tasklet blocked = tasklet([&] { (void)ch.receive(); })();
  bool joiner_unwound = false;
  tasklet joiner = tasklet([&] {
    rt::sentinel s(&joiner_unwound);
    blocked.join();
  })();
  schedule();
  BOOST_TEST(joiner.blocked());
  joiner.kill();
  BOOST_TEST(joiner_unwound);
  blocked.kill();

  tasklet paused([](int) {}, 0);
  bool woke = false;
  tasklet([&] {
    paused.join();
    woke = true;
  })();
  schedule();
  paused.bind(nullptr);  // discards it: it ends without running
  run();
  BOOST_TEST(woke);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(Scope)

BOOST_FIXTURE_TEST_CASE(leaving_waits_for_children, clean_scheduler) {
  rt::log log;
  {
    scope s;
    for (int i = 0; i < 3; ++i)
      s.spawn(
          [&](int n) {
            log("c" + std::to_string(n));
            schedule();
            log("d" + std::to_string(n));
          },
          i);
    BOOST_TEST(s.size() == 3u);
    log("body");
  }
  log("after");
  BOOST_TEST(log.str() == "body c0 c1 c2 d0 d1 d2 after");
}

// The first exception that escapes a child: the other children are killed, and the scope
// re-throws it (from join() or from its destructor).
BOOST_FIXTURE_TEST_CASE(child_exception_cancels_and_rethrows, clean_scheduler) {
  bool sibling_unwound = false, sibling_finished = false;
  channel<int> ch;
  auto attempt = [&](bool by_join) {
    scope s;
    s.spawn([&] {
      rt::sentinel g(&sibling_unwound);
      (void)ch.receive();  // would wait forever
      sibling_finished = true;
    });
    s.spawn([] {
      schedule();
      throw rt::test_error("child failed");
    });
    s.spawn([] { throw rt::test_error("second failure, dropped"); });
    if (by_join) s.join();
  };
  BOOST_CHECK_EXCEPTION(attempt(true), rt::test_error, msg_is("second failure, dropped"));
  BOOST_TEST(sibling_unwound);
  BOOST_TEST(!sibling_finished);
  sibling_unwound = false;
  BOOST_CHECK_EXCEPTION(attempt(false), rt::test_error, msg_is("second failure, dropped"));
  BOOST_TEST(sibling_unwound);
  BOOST_TEST(ch.balance() == 0);
}

// Leaving the scope by an exception kills the children and waits for their unwinding; that
// exception goes on.
BOOST_FIXTURE_TEST_CASE(exception_in_body_cancels, clean_scheduler) {
  rt::log log;
  channel<int> ch;
  try {
    scope s;
    s.spawn([&] {
      struct g_t {
        rt::log& log;
        ~g_t() { log("~child"); }
      } g{log};
      (void)ch.receive();
      log("child-normal");
    });
    schedule();
    throw rt::test_error("body");
  } catch (const rt::test_error& e) {
    log(e.what());
  }
  BOOST_TEST(log.str() == "~child body");
}

BOOST_FIXTURE_TEST_CASE(cancel_kills_and_refuses_spawn, clean_scheduler) {
  bool unwound = false;
  scope s;
  channel<int> ch;
  s.spawn([&] {
    rt::sentinel g(&unwound);
    (void)ch.receive();
  });
  schedule();
  s.cancel();
  BOOST_CHECK_EXCEPTION(s.spawn([] {}), tasklet_error,
                        msg_is("stackless::scope: spawn after cancel()"));
  s.join();
  BOOST_TEST(unwound);
  BOOST_TEST(s.size() == 0u);
}

// Cancelled before a child started: it never runs.
BOOST_FIXTURE_TEST_CASE(cancel_before_start, clean_scheduler) {
  bool ran = false;
  {
    scope s;
    s.spawn([&] { ran = true; });
    s.cancel();
  }
  BOOST_TEST(!ran);
}

// Scopes nest: a child's own scope finishes before the child does.
BOOST_FIXTURE_TEST_CASE(nesting, clean_scheduler) {
  rt::log log;
  {
    scope outer;
    outer.spawn([&] {
      {
        scope inner;
        inner.spawn([&] {
          schedule();
          log("inner child");
        });
        log("inner body");
      }
      log("outer child");
    });
    outer.spawn([&] { log("sibling"); });
  }
  log("done");
  BOOST_TEST(log.str() == "inner body sibling inner child outer child done");
}

// A child's failure inside a nested scope travels out through both scopes.
BOOST_FIXTURE_TEST_CASE(nested_failure_propagates, clean_scheduler) {
  auto body = [] {
    scope outer;
    outer.spawn([] {
      scope inner;
      inner.spawn([] { throw rt::test_error("deep"); });
    });
  };
  BOOST_CHECK_EXCEPTION(body(), rt::test_error, msg_is("deep"));
}

// The tasklet owning a scope is killed while it waits: the children are cancelled and waited
// for before its stack (which they may use) unwinds.
BOOST_FIXTURE_TEST_CASE(owner_killed_while_waiting, clean_scheduler) {
  rt::log log;
  channel<int> ch;
  tasklet owner = tasklet([&] {
    int on_owner_stack = 42;
    scope s;
    s.spawn([&] {
      struct g_t {
        rt::log& log;
        int& v;
        ~g_t() { log("~child sees " + std::to_string(v)); }
      } g{log, on_owner_stack};
      (void)ch.receive();
    });
  })();
  run();  // the owner waits in ~scope, its child in receive()
  BOOST_TEST(owner.blocked());
  owner.kill();
  run();  // the owner blocks again while its child unwinds (kill's caller goes on meanwhile)
  BOOST_TEST(log.str() == "~child sees 42");
  BOOST_TEST(!owner.alive());
}

// kill_all() with a scope open in a tasklet: no error, nothing left.
BOOST_FIXTURE_TEST_CASE(kill_all_with_scopes, clean_scheduler) {
  channel<int> ch;
  tasklet([&] {
    scope s;
    s.spawn([&] { (void)ch.receive(); });
    s.spawn([&] { (void)ch.receive(); });
  })();
  schedule();
  kill_all();
  BOOST_TEST(alive_tasklets() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ScheduleCallbackCurrent)

// Stackless bug "wrong stackless.current in schedule callback": getcurrent() inside the
// callback is the tasklet being left (prev), not the next one.
BOOST_FIXTURE_TEST_CASE(current_is_prev, clean_scheduler) {
  int checked = 0, wrong = 0;
  set_schedule_callback([&](const tasklet& prev, const tasklet& next) {
    ++checked;
    if (getcurrent() != prev || getcurrent() == next) ++wrong;
  });
  tasklet([] { schedule(); })();
  run();
  set_schedule_callback(nullptr);
  BOOST_TEST(checked == 2);  // main -> t, t (finished) -> main
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_SUITE_END()
