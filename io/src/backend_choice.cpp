// The backend each thread's poller gets: the process-wide choice (STACKLESS_IO_BACKEND and the
// io_uring probe, decided once) and the per-thread fallback when a ring cannot be set up. On
// Windows there is one backend, IOCP (backend_iocp.cpp); STACKLESS_IO_BACKEND is not consulted.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "backend.hpp"
#include "stackless/io/io.hpp"

namespace stackless::io {
namespace detail {
namespace {

const std::error_code& cached_probe() {
  static const std::error_code ec = probe_uring();
  return ec;
}

#ifndef _WIN32
struct backend_choice {
  bool uring = false;
};

const backend_choice& process_choice() {
  static const backend_choice c = [] {
    backend_choice r;
    const char* env = std::getenv("STACKLESS_IO_BACKEND");
    const std::string want = env ? env : "";
    if (want == "threadpool" || want == "threads") return r;
    const bool forced = want == "uring" || want == "io_uring";
    if (!forced && !want.empty() && want != "auto") {
      std::fprintf(stderr,
                   "stackless: unknown STACKLESS_IO_BACKEND='%s' (uring|threadpool); "
                   "choosing automatically\n",
                   want.c_str());
    }
    const std::error_code& ec = cached_probe();
    if (!ec) {
      r.uring = true;
    } else {
      // One line, once per process: the fallback is normal in containers, but worth knowing.
      std::fprintf(stderr,
                   "stackless: io_uring unavailable (%s)%s; using the thread-pool I/O "
                   "backend\n",
                   ec.message().c_str(), forced ? " although STACKLESS_IO_BACKEND=uring" : "");
    }
    return r;
  }();
  return c;
}
#endif

}  // namespace

std::unique_ptr<backend> thread_backend_for_this_thread() {
#ifdef _WIN32
  return make_iocp_backend();
#else
  if (process_choice().uring) {
    std::error_code ec;
    if (auto be = make_uring_backend(ec)) return be;
    std::fprintf(stderr,
                 "stackless: io_uring ring setup failed on this thread (%s); using the "
                 "thread-pool I/O backend\n",
                 ec.message().c_str());
  }
  return make_thread_backend();
#endif
}

}  // namespace detail

std::string_view backend_name() {
#ifdef _WIN32
  return "iocp";
#else
  return detail::process_choice().uring ? "io_uring" : "threadpool";
#endif
}

std::error_code uring_probe() {
  return detail::cached_probe();
}

}  // namespace stackless::io
