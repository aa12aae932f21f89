// The IOCP backend (Windows only): cancellation of a pending read on kill, the outcomes of an
// overlapped call that Wine never produces for regular files (completed at once, failed at once)
// through the backend's seam (backend_iocp.hpp), 64-bit offsets in the OVERLAPPED, wake-ups from
// another thread, UTF-8 paths, open/fsync/truncate/close on pool threads (a stalled file
// system stood in for by the seam), and external ops (getaddrinfo's wake-up through the port).
// The sockets' IOCP paths are tested by tests/net (test_net_iocp).
#ifdef _WIN32

#include <io.h>
#include <windows.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "backend_iocp.hpp"
#include "io_helpers.hpp"
#include "kill_point.hpp"
#include "poller.hpp"

using namespace stackless;
using namespace std::chrono_literals;
namespace d = stackless::io::detail;

namespace {

// pipe_server: the server end of a fresh named pipe (blocking, byte mode); io::open() of
// name() connects as the client.
struct pipe_server {
  std::wstring name_w;
  std::string name;
  HANDLE h = INVALID_HANDLE_VALUE;
  explicit pipe_server(const char* tag) {
    name = std::string("\\\\.\\pipe\\stackless-test-") + tag + "-" +
           std::to_string(::GetCurrentProcessId());
    name_w.assign(name.begin(), name.end());
    h = ::CreateNamedPipeW(name_w.c_str(), PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_WAIT, 1, 65536,
                           65536, 0, nullptr);
  }
  ~pipe_server() {
    if (h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
  }
  void write(const std::string& s) const {
    DWORD n = 0;
    ::WriteFile(h, s.data(), static_cast<DWORD>(s.size()), &n, nullptr);
  }
};

// seam_guard: replaces the backend's ReadFile/WriteFile for one test, restores them after.
struct seam_guard {
  d::iocp_calls saved = d::iocp_seam();
  ~seam_guard() { d::iocp_seam() = saved; }
};

std::atomic<int> g_calls{0};
std::uint64_t g_last_offset = 0;

// Completed at once, as real Windows does for cached data: the real call, waited for, then TRUE.
// The completion packet is still queued; the backend must take the op from it exactly once.
bool read_completing_at_once(void* h, void* buf, std::uint32_t len, void* ov) {
  ++g_calls;
  auto* o = static_cast<OVERLAPPED*>(ov);
  g_last_offset = (std::uint64_t{o->OffsetHigh} << 32) | o->Offset;
  if (d::iocp_real_calls().read(h, buf, len, ov)) return true;
  if (::GetLastError() != ERROR_IO_PENDING) return false;
  DWORD n = 0;
  if (::GetOverlappedResult(h, o, &n, TRUE)) return true;
  ::SetLastError(ERROR_IO_PENDING);  // failed after pending (end of file): its packet says so
  return false;
}
bool write_completing_at_once(void* h, const void* buf, std::uint32_t len, void* ov) {
  ++g_calls;
  if (d::iocp_real_calls().write(h, buf, len, ov)) return true;
  if (::GetLastError() != ERROR_IO_PENDING) return false;
  DWORD n = 0;
  if (::GetOverlappedResult(h, static_cast<OVERLAPPED*>(ov), &n, TRUE)) return true;
  ::SetLastError(ERROR_IO_PENDING);
  return false;
}

// Failed at once, without touching the file: no packet is queued.
bool read_eof_at_once(void*, void*, std::uint32_t, void*) {
  ++g_calls;
  ::SetLastError(ERROR_HANDLE_EOF);
  return false;
}
bool read_denied_at_once(void*, void*, std::uint32_t, void*) {
  ++g_calls;
  ::SetLastError(ERROR_ACCESS_DENIED);
  return false;
}
bool write_disk_full_at_once(void*, const void*, std::uint32_t, void*) {
  ++g_calls;
  ::SetLastError(ERROR_DISK_FULL);
  return false;
}

// stalled_fs: the blocking calls (open, fsync, truncate, close) wait in the pool thread until
// the test lets them through, one per permit: a file system that stalls. Records each call's
// kind, and the handle of each file it opened.
struct stalled_fs {
  static inline std::atomic<int> entered{0}, permits{0};
  static inline std::mutex mu;
  static inline std::vector<d::op_kind> kinds;
  static inline std::vector<HANDLE> opened;
  seam_guard guard;
  stalled_fs() {
    entered = 0;
    permits = 0;
    kinds.clear();
    opened.clear();
    d::iocp_seam().blocking = call;
  }
  ~stalled_fs() { permits = 1 << 20; }  // nothing may stay stuck past the test
  static long call(d::op& o) noexcept {
    {
      std::lock_guard lk(mu);
      kinds.push_back(o.kind);
    }
    ++entered;
    while (permits.load() == 0) ::Sleep(1);
    --permits;
    const long r = d::iocp_real_calls().blocking(o);
    if (o.kind == d::op_kind::openat && r >= 0) {
      std::lock_guard lk(mu);
      opened.push_back(reinterpret_cast<HANDLE>(::_get_osfhandle(static_cast<int>(r))));
    }
    return r;
  }
  static bool handle_closed(HANDLE h) {
    DWORD flags = 0;
    return !::GetHandleInformation(h, &flags);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Iocp, iot::io_clean)

// Issue 15: open, fsync, truncate and close have no overlapped form; they run on a pool thread,
// so while one stalls the thread's other tasklets run. Each is held in the stalled file system
// until another tasklet has run.
BOOST_AUTO_TEST_CASE(open_fsync_truncate_close_block_only_their_tasklet) {
  stalled_fs fs;
  const auto p = iot::path("stalled.txt");
  bool done = false;
  tasklet user([&] {
    io::file f = io::open(p, "w");
    f.write("abc");
    f.fsync();  // flushes (an overlapped write), then FlushFileBuffers on the pool
    f.truncate(1);
    f.close();
    done = true;
  });
  user();
  const d::op_kind expected[] = {d::op_kind::openat, d::op_kind::fsync, d::op_kind::ftruncate,
                                 d::op_kind::close};
  for (int i = 0; i < 4; ++i) {
    BOOST_REQUIRE(testwait::wait_until([&] { return stalled_fs::entered.load() == i + 1; }));
    BOOST_TEST(user.blocked());
    BOOST_TEST(io::pending_operations() == 1u);
    int ran = 0;
    tasklet other([&] { ++ran; });
    other();
    schedule();
    BOOST_TEST(ran == 1);  // the thread was not blocked by the stalled call
    {
      std::lock_guard lk(stalled_fs::mu);
      BOOST_TEST((stalled_fs::kinds.at(static_cast<std::size_t>(i)) == expected[i]));
    }
    ++stalled_fs::permits;
  }
  BOOST_REQUIRE(testwait::wait_until([&] { return !user.alive(); }));
  BOOST_TEST(done);
  BOOST_TEST(iot::get(p) == "a");
  BOOST_REQUIRE(stalled_fs::opened.size() == 1u);
  BOOST_TEST(stalled_fs::handle_closed(stalled_fs::opened[0]));
}

// A kill at each point of a slow open: staged (never performed: the file is not created), on the
// pool thread (the kill waits for the call to end, then the handle it opened is closed), and
// opened but not yet handed back (closed too). Nothing leaks, nothing stays pending.
BOOST_AUTO_TEST_CASE(kill_during_a_slow_open_leaks_no_handle) {
  for (const auto point : testwait::all_kill_points) {
    BOOST_TEST_CONTEXT("kill point " << static_cast<int>(point)) {
      stalled_fs fs;
      const auto p = iot::path("slow-open-" + std::to_string(static_cast<int>(point)));
      bool returned = false;
      tasklet opener([&] {
        io::file f = io::open(p, "x");
        returned = true;
      });
      opener();
      schedule();  // the opener runs until it blocks; its op is staged
      BOOST_REQUIRE(opener.blocked());
      switch (point) {
        case testwait::kill_point::staged:
          break;
        case testwait::kill_point::in_kernel:
          BOOST_REQUIRE(testwait::wait_until([&] { return stalled_fs::entered.load() == 1; }));
          break;
        case testwait::kill_point::delivered_not_resumed:
          stalled_fs::permits += 2;  // the open, and the close of what it opened for nobody
          BOOST_REQUIRE(testwait::wait_until([&] { return !opener.blocked(); }));
          break;
      }
      opener.kill();
      if (point == testwait::kill_point::in_kernel) {
        for (int i = 0; i < 20; ++i) schedule();
        BOOST_TEST(opener.alive());  // waits for the pool thread: the open is not cancellable
        stalled_fs::permits += 2;    // the open, and the close of what it opened for nobody
      }
      BOOST_REQUIRE(testwait::wait_until([&] { return !opener.alive(); }));
      BOOST_TEST(!returned);
      BOOST_TEST(io::pending_operations() == 0u);
      if (point == testwait::kill_point::staged) {
        BOOST_TEST(stalled_fs::entered.load() == 0);
        BOOST_TEST(!std::filesystem::exists(p));
      } else {
        BOOST_TEST(std::filesystem::exists(p));
        BOOST_REQUIRE(stalled_fs::opened.size() == 1u);
        BOOST_TEST(stalled_fs::handle_closed(stalled_fs::opened[0]));
      }
    }
  }
}

// A failing open on the pool thread: the error names the path and the Win32 cause; a directory
// is EISDIR, as on POSIX.
BOOST_AUTO_TEST_CASE(open_failures_from_the_pool) {
  const auto missing = iot::path("no-such-file");
  try {
    (void)io::open(missing, "r");
    BOOST_FAIL("opened a missing file");
  } catch (const std::filesystem::filesystem_error& e) {
    BOOST_TEST(e.code().value() == ERROR_FILE_NOT_FOUND);
    BOOST_TEST(e.path1() == missing);
  }
  try {
    (void)io::open(iot::g_dir, "r");
    BOOST_FAIL("opened a directory");
  } catch (const std::filesystem::filesystem_error& e) {
    BOOST_TEST((e.code() == std::errc::is_a_directory));
  }
}

BOOST_AUTO_TEST_CASE(backend_is_iocp) {
  BOOST_TEST(io::backend_name() == "iocp");
}

// A read of a named pipe stays pending (nobody writes); killing the reader cancels it with
// CancelIoEx, and the reader unwinds only after the completion arrived (the buffer is its own).
BOOST_AUTO_TEST_CASE(kill_cancels_a_pending_read) {
  pipe_server server("kill");
  BOOST_REQUIRE(server.h != INVALID_HANDLE_VALUE);
  io::file pipe = io::open(server.name, "r+", 0);
  bool unwound = false, returned = false;
  tasklet reader([&] {
    struct guard {
      bool* f;
      ~guard() { *f = true; }
    } g{&unwound};
    std::string s = pipe.read(100);  // blocks: nobody writes
    returned = true;
  });
  reader();
  schedule();
  BOOST_REQUIRE(reader.blocked());
  // One backend pass issues the read (ReadFile: pending in the kernel) before the kill.
  BOOST_REQUIRE(testwait::wait_backend_passes(1));
  BOOST_TEST(io::pending_operations() == 1u);
  const auto t0 = std::chrono::steady_clock::now();
  reader.kill();
  while (reader.alive()) schedule();
  // Generous for a loaded machine (Wine): a cancel that fails leaves the read pending for ever.
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 30s));
  BOOST_TEST(unwound);
  BOOST_TEST(!returned);
  BOOST_TEST(io::pending_operations() == 0u);
  // The pipe still works: the cancelled read took nothing.
  server.write("after\n");
  BOOST_TEST(pipe.readline() == "after\n");
}

// Throwing into a tasklet blocked on a pipe read: cancelled the same way, the exception arrives.
BOOST_AUTO_TEST_CASE(throw_into_pending_read) {
  pipe_server server("throw");
  BOOST_REQUIRE(server.h != INVALID_HANDLE_VALUE);
  io::file pipe = io::open(server.name, "r+", 0);
  bool caught = false;
  tasklet reader([&] {
    try {
      pipe.read(10);
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "stop";
    }
  });
  reader();
  schedule();
  sleep(10ms);
  reader.throw_exception(std::make_exception_ptr(std::runtime_error("stop")));
  while (reader.alive()) schedule();
  BOOST_TEST(caught);
}

// ReadFile/WriteFile returning TRUE: the op completes from its packet, once, with the right
// result; 64 tasklets' worth exercises the packet matching.
BOOST_AUTO_TEST_CASE(immediate_completion) {
  const std::string data = iot::numbers(20000);
  iot::put(iot::path("now.txt"), data);
  seam_guard guard;
  g_calls = 0;
  d::iocp_seam().read = read_completing_at_once;
  d::iocp_seam().write = write_completing_at_once;
  io::file f = io::open(iot::path("now.txt"), "r+b");
  BOOST_TEST(f.read() == data);  // includes the read at end of file
  std::vector<std::string> got(16);
  for (std::size_t i = 0; i < got.size(); ++i) {
    tasklet([&, i] {
      std::string b(100, '\0');
      b.resize(f.pread(std::span(b.data(), b.size()), 1000 * i));
      got[i] = b;
    })();
  }
  run();
  for (std::size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == data.substr(1000 * i, 100));
  BOOST_TEST(f.pwrite("XYZ", 5) == 3u);
  f.close();
  BOOST_TEST(g_calls.load() >= 19);
  BOOST_TEST(iot::get(iot::path("now.txt")).substr(0, 10) == "01234XYZ89");
}

// ReadFile failing at once with ERROR_HANDLE_EOF (no packet): end of file, "".
BOOST_AUTO_TEST_CASE(immediate_eof) {
  iot::put(iot::path("eof.txt"), "abc");
  seam_guard guard;
  g_calls = 0;
  d::iocp_seam().read = read_eof_at_once;
  io::file f = io::open(iot::path("eof.txt"));
  BOOST_TEST(f.read(10) == "");
  BOOST_TEST(f.readline() == "");
  BOOST_TEST(g_calls.load() == 2);
  BOOST_TEST(io::pending_operations() == 0u);
}

// Failing at once with another error: a filesystem_error with the Win32 code (system category),
// the path and the offset; the next operation works.
BOOST_AUTO_TEST_CASE(immediate_failure) {
  const auto p = iot::path("denied.txt");
  iot::put(p, "abc");
  seam_guard guard;
  d::iocp_seam().read = read_denied_at_once;
  d::iocp_seam().write = write_disk_full_at_once;
  io::file f = io::open(p, "r+", 0);
  BOOST_CHECK_EXCEPTION(
      f.read(3), std::filesystem::filesystem_error,
      [&](const std::filesystem::filesystem_error& e) {
        BOOST_TEST_MESSAGE(e.what());
        return e.code() == std::error_code(ERROR_ACCESS_DENIED, std::system_category()) &&
               e.code() == std::errc::permission_denied && e.path1() == p &&
               std::string(e.what()).find("read at offset 0") != std::string::npos;
      });
  BOOST_CHECK_EXCEPTION(f.pwrite("x", 7), std::filesystem::filesystem_error,
                        [&](const std::filesystem::filesystem_error& e) {
                          BOOST_TEST_MESSAGE(e.what());
                          return e.code().value() == ERROR_DISK_FULL &&
                                 e.code().category() == std::system_category() &&
                                 std::string(e.what()).find("offset 7") != std::string::npos;
                        });
  d::iocp_seam() = guard.saved;
  BOOST_TEST(f.read(3) == "abc");
}

// Offsets past 4 GiB reach the OVERLAPPED as Offset/OffsetHigh (the sparse-file test in
// test_seek.cpp checks the data).
BOOST_AUTO_TEST_CASE(offsets_past_4_gib_fill_offset_high) {
  const std::uint64_t beyond = (std::uint64_t{5} << 30) + 123;
  io::file f = io::open(iot::path("beyond.bin"), "w+b");
  BOOST_TEST(f.pwrite("tail", beyond) == 4u);
  seam_guard guard;
  d::iocp_seam().read = read_completing_at_once;
  char buf[4];
  BOOST_TEST(f.pread(std::span(buf), beyond) == 4u);
  BOOST_TEST(g_last_offset == beyond);
  BOOST_TEST(std::string(buf, 4) == "tail");
  f.close();
  std::filesystem::remove(iot::path("beyond.bin"));
}

// wake() from another thread (PostQueuedCompletionStatus) ends a blocking poll() at once.
BOOST_AUTO_TEST_CASE(wake_from_another_thread) {
  auto be = d::make_iocp_backend();
  BOOST_TEST(std::string(be->name()) == "iocp");
  std::vector<d::op*> done;
  // The waker waits for this thread to sleep in the poll (testwait::os_thread: a plain wait of
  // 50 ms on Windows, which cannot tell); a wake-up that still comes first is queued and ends the
  // poll at once, so no lower bound is asserted on the wait. What fails is a lost wake-up: the
  // poll then waits its full 20 s (the bound is 10 s, generous for a loaded Wine).
  const auto self = testwait::os_thread::self();
  std::thread waker([&] {
    (void)self.wait_asleep();
    be->wake();
  });
  const auto t0 = std::chrono::steady_clock::now();
  be->poll(done, std::chrono::nanoseconds(20s));
  const auto waited = std::chrono::steady_clock::now() - t0;
  waker.join();
  BOOST_TEST(done.empty());
  BOOST_TEST((waited < 10s));
  // Without a wake-up the timeout holds: the poll waits instead of returning at once (a leftover
  // wake-up would end it within microseconds). Windows' timer ticks every 15.6 ms and may end a
  // 30 ms wait up to a tick early, so the bound is 10 ms, not 25.
  const auto t1 = std::chrono::steady_clock::now();
  be->poll(done, std::chrono::nanoseconds(30ms));
  BOOST_TEST(done.empty());
  BOOST_TEST((std::chrono::steady_clock::now() - t1 >= 10ms));
}

// test_teardown.cpp's killing_the_poll_tasklet_drains_everything on a named pipe: the pending
// read is cancelled (ERROR_OPERATION_ABORTED), sleepers wake with ECANCELED, and the next
// operation starts a new poll tasklet.
BOOST_AUTO_TEST_CASE(killing_the_poll_tasklet_cancels_pending_reads) {
  pipe_server server("poll");
  BOOST_REQUIRE(server.h != INVALID_HANDLE_VALUE);
  io::file pipe = io::open(server.name, "r+", 0);
  iot::check_killing_poll_tasklet_drains(
      pipe, [](int code) { return code == ERROR_OPERATION_ABORTED; }, [&] { server.write("x\n"); });
}

// test_teardown.cpp's thread_exit_with_io_pending on a named pipe: a thread ends with tasklets
// blocked on a pending read and in sleep; its scheduler's teardown (run from a pthread key on
// MinGW, see scheduler_win.cpp) kills them, cancelling the read, and nothing hangs.
BOOST_AUTO_TEST_CASE(thread_exit_with_a_pending_read) {
  pipe_server server("exit");
  BOOST_REQUIRE(server.h != INVALID_HANDLE_VALUE);
  iot::check_thread_exit_unwinds([&] { return io::open(server.name, "r+", 0); });
}

// A UTF-8 path names the file Windows knows by its UTF-16 name, given as a std::filesystem::path
// or as a narrow string (which std::filesystem::path alone would read in the ANSI code page).
BOOST_AUTO_TEST_CASE(utf8_paths) {
  const std::string name = "\xc3\xa9t\xc3\xa9-\xe2\x82\xac.txt";  // "été-€.txt" in UTF-8
  const std::filesystem::path wide =
      iot::g_dir / std::filesystem::path(L"\u00e9t\u00e9-\u20ac.txt");
  {
    io::file f = io::open(iot::g_dir / std::filesystem::u8path(name), "w");
    f.write("utf-8");
  }
  BOOST_TEST(std::filesystem::exists(wide));
  std::filesystem::remove(wide);
  const std::u8string dir8 = iot::g_dir.u8string();
  const std::string narrow = std::string(dir8.begin(), dir8.end()) + "\\" + name;
  {
    io::file f = io::open(narrow, "w");
    BOOST_TEST(f.name() == narrow);
    f.write("utf-8 again");
  }
  BOOST_TEST(std::filesystem::exists(wide));
  io::file f = io::open(narrow.c_str());
  BOOST_TEST(f.read() == "utf-8 again");
}

// op_kind::external (getaddrinfo's wake-up on Windows, backend.hpp): an op no system call
// performs, completed through the port by another thread's external_completion::complete().
namespace {
d::outcome wait_external(d::external_completion& ext) {
  d::op_args a;
  a.kind = d::op_kind::external;
  a.buf = &ext;
  return d::submit(a, nullptr, d::no_deadline);
}
}  // namespace

BOOST_AUTO_TEST_CASE(external_op_completed_by_another_thread) {
  d::external_completion ext;
  std::atomic<bool> go{false};
  std::thread other([&] {
    while (!go) std::this_thread::sleep_for(1ms);
    ext.complete();
  });
  long result = -1;
  bool done = false;
  tasklet waiter([&] {
    result = wait_external(ext).result;
    done = true;
  });
  waiter();
  BOOST_REQUIRE(testwait::wait_backend_passes(1));  // issued: waiting for the packet
  BOOST_TEST(!done);
  BOOST_TEST(waiter.blocked());
  go = true;
  BOOST_REQUIRE(testwait::wait_until([&] { return done; }));
  other.join();
  BOOST_TEST(result == 0);
}

BOOST_AUTO_TEST_CASE(external_op_completed_before_it_was_issued) {
  d::external_completion ext;
  ext.complete();  // nothing waits yet: remembered, and the op completes when issued
  BOOST_TEST(ext.done);
  BOOST_TEST(wait_external(ext).result == 0);
}

BOOST_AUTO_TEST_CASE(external_op_killed_then_completed_touches_nothing) {
  // The kill takes the op back under the record's lock; a complete() after that posts nothing
  // (a packet would name the killed tasklet's freed op record).
  d::external_completion ext;
  bool killed = false;
  tasklet waiter([&] {
    try {
      wait_external(ext).rethrow_if_interrupted();
    } catch (const tasklet_exit&) {
      killed = true;
      throw;
    }
  });
  waiter();
  BOOST_REQUIRE(testwait::wait_backend_passes(1));
  BOOST_REQUIRE(ext.ov != nullptr);  // waiting for complete()
  waiter.kill();
  BOOST_REQUIRE(testwait::wait_until([&] { return !waiter.alive(); }));
  BOOST_TEST(killed);
  BOOST_TEST(ext.ov == nullptr);
  ext.complete();
  BOOST_TEST(ext.done);
  // A port hands out its packets in the order they were posted: had complete() posted one for
  // the killed op, the poll tasklet would take it before this second op's (and touch the freed
  // record: a crash, or ASan's report). No timing involved.
  d::external_completion ext2;
  long result2 = -1;
  tasklet later([&] { result2 = wait_external(ext2).result; });
  later();
  BOOST_REQUIRE(testwait::wait_backend_passes(1));
  BOOST_REQUIRE(ext2.ov != nullptr);  // issued, waiting for its packet
  ext2.complete();
  BOOST_REQUIRE(testwait::wait_until([&] { return !later.alive(); }));
  BOOST_TEST(result2 == 0);
  BOOST_TEST(io::pending_operations() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

#endif  // _WIN32
