// io::file's OS calls on POSIX. Opening, truncating and closing go through the poller too
// (io_uring or a pool worker), so a slow file system blocks only the calling tasklet.
// (Windows: file_win.cpp.)
#include <fcntl.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "file_impl.hpp"

namespace stackless::io::detail {

std::error_code backend_error(long r) {
  return {static_cast<int>(-r), std::generic_category()};
}

bool retry(long r) noexcept {
  return r == -EINTR || r == -EAGAIN;
}

std::string display_name(const std::filesystem::path& path) {
  return path.string();
}

std::int64_t file_size(const file_impl& f) {
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail(f, "fstat", errno);
  return st.st_size;
}

// Fresh memory otherwise costs a page fault per 4 KiB page on first touch, and on VMs with
// expensive faults that is most of the time a large read() takes (issue 12: 64 MiB cost 0.5 s of
// faults, 0.05 s of reading). Kernels without MADV_POPULATE_WRITE (before 5.14) just fault.
void prefault(char* p, std::size_t n) noexcept {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  constexpr std::size_t kMin = 1 << 20;  // below this the faults are cheap enough
  if (n < kMin) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto b = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
  const auto e = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(page - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)n;
#endif
}

os_opened os_open(file_impl& f, const parsed_mode& m) {
  // Through the poller (io_uring OPENAT, or a pool worker): a slow file system blocks only
  // this tasklet.
  int fd;
  for (;;) {
    const outcome o = submit_open(f.path.c_str(), m.flags | O_CLOEXEC, 0666);  // closed if killed
    o.rethrow_if_interrupted();
    if (o.result >= 0) {
      fd = static_cast<int>(o.result);
      break;
    }
    if (o.result == -EINTR) continue;
    fail(f, "open with mode '" + f.mode + "'", static_cast<int>(-o.result));
  }
  f.fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    f.fd = -1;
    fail(f, "open with mode '" + f.mode + "'", err);
  }
  f.stream = !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
  return {st.st_size, ::isatty(fd) == 1};
}

}  // namespace stackless::io::detail
