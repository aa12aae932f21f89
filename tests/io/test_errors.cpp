// Failures are filesystem_errors naming the path and the errno: EFBIG, EACCES, ENOENT, EISDIR.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef _WIN32
#include <sys/resource.h>
#include <sys/wait.h>
#endif

#include "io_helpers.hpp"

using namespace stackless;

namespace {
bool names(const std::filesystem::filesystem_error& e, const std::string& what) {
  return std::string(e.what()).find(what) != std::string::npos;
}
}  // namespace

BOOST_FIXTURE_TEST_SUITE(Errors, iot::io_clean)

#ifndef _WIN32  // RLIMIT_FSIZE: POSIX only
// RLIMIT_FSIZE makes the kernel refuse to grow the file: the write fails with EFBIG, reported
// with the offset where it failed, never as a silent short write.
BOOST_AUTO_TEST_CASE(write_past_fsize_limit_is_efbig) {
  const auto p = iot::path("efbig.bin");
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // or the kernel's SIGXFSZ kills the process
  rlimit lim = old;
  lim.rlim_cur = 1 << 20;
  BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
  const std::string two_mib(2 << 20, 'z');
  for (int buffering : {0, -1}) {
    io::file f = io::open(p, "wb", buffering);
    BOOST_CHECK_EXCEPTION(
        {
          f.write(two_mib);
          f.flush();
        },
        std::filesystem::filesystem_error,
        [&](const std::filesystem::filesystem_error& e) {
          BOOST_TEST_MESSAGE(e.what());
          return e.code().value() == EFBIG && e.path1() == p && names(e, "write") &&
                 names(e, "offset 1048576");
        });
    f.close();  // the failed data was reported once; close does not report it again
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  BOOST_TEST(std::filesystem::file_size(p) == 1u << 20);
}
#endif

BOOST_AUTO_TEST_CASE(missing_path_is_enoent_naming_the_path) {
  const auto p = iot::path("no/such/dir/file.txt");
  BOOST_CHECK_EXCEPTION((void)io::open(p), std::filesystem::filesystem_error,
                        [&](const std::filesystem::filesystem_error& e) {
                          return e.code() == std::errc::no_such_file_or_directory &&
                                 e.path1() == p && names(e, p.string());
                        });
  BOOST_CHECK_EXCEPTION((void)io::open(iot::path("missing"), "r+"),
                        std::filesystem::filesystem_error, iot::errc_is(ENOENT));
}

BOOST_AUTO_TEST_CASE(directory_is_eisdir) {
  BOOST_CHECK_EXCEPTION((void)io::open(iot::g_dir), std::filesystem::filesystem_error,
                        iot::errc_is(EISDIR));
  BOOST_CHECK_EXCEPTION((void)io::open(iot::g_dir, "w"), std::filesystem::filesystem_error,
                        iot::errc_is(EISDIR));
}

#ifndef _WIN32  // fork and setuid: POSIX only
// EACCES for real: a mode-0600 file of root opened by uid 65534. The tests run as root here, so
// the open happens in a forked child that drops its uid (no I/O poller is used in the child).
BOOST_AUTO_TEST_CASE(permission_denied_is_eacces) {
  const auto p = iot::path("secret.txt");
  iot::put(p, "secret");
  ::chmod(p.c_str(), 0600);
  ::chmod(iot::g_dir.c_str(), 0755);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::geteuid() == 0 && ::setuid(65534) != 0) ::_exit(3);
    try {
      (void)io::open(p, "r");
    } catch (const std::filesystem::filesystem_error& e) {
      const bool ok = e.code().value() == EACCES && e.path1() == p;
      ::_exit(ok ? 0 : 1);
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(4);  // opened: no permission check happened
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0, "child exit " << WEXITSTATUS(status));
}
#endif

BOOST_AUTO_TEST_CASE(wrong_direction_and_pipes_give_clear_errors) {
  io::file w = io::open(iot::path("wo.txt"), "w");
  BOOST_CHECK_EXCEPTION(w.read(1), std::filesystem::filesystem_error,
                        [](const std::filesystem::filesystem_error& e) {
                          return e.code().value() == EBADF && names(e, "not open for reading");
                        });
  char b[1];
  BOOST_CHECK_EXCEPTION(w.pread(std::span(b), 0), std::filesystem::filesystem_error,
                        iot::errc_is(EBADF));
  io::file r = io::open(iot::path("wo.txt"), "r");
  BOOST_CHECK_EXCEPTION(r.pwrite("x", 0), std::filesystem::filesystem_error,
                        [](const std::filesystem::filesystem_error& e) {
                          return e.code().value() == EBADF && names(e, "not open for writing");
                        });
#ifndef _WIN32  // FIFOs: POSIX only (test_iocp.cpp uses named pipes)
  BOOST_REQUIRE(::mkfifo(iot::path("fifo-err").c_str(), 0600) == 0);
  io::file fifo = io::open(iot::path("fifo-err"), "r+");
  BOOST_CHECK_EXCEPTION(fifo.seek(0), std::filesystem::filesystem_error, iot::errc_is(ESPIPE));
  BOOST_CHECK_EXCEPTION(fifo.tell(), std::filesystem::filesystem_error, iot::errc_is(ESPIPE));
  fifo.write("ping\n");
  BOOST_TEST(fifo.readline() == "ping\n");
#endif
}

BOOST_AUTO_TEST_SUITE_END()
