// stackless::net name resolution: getaddrinfo on resolver threads, waited for on the poller.
//
// The system resolver only blocks, and neither backend has a thread to lend it: the io_uring
// backend has no pool at all, and the thread-pool backend's four workers serve file I/O (a slow
// DNS server must not stall reads). So lookups run on a pool of their own (resolver_pool: at
// most kMaxThreads, started on demand, ending when idle). The calling tasklet waits for the
// result as for any socket: a one-byte recv on one end of a socketpair, through the poller, whose
// other end the resolver thread closes when it is done. That wait is cancellable like any recv,
// works on both backends (io_uring recv; the thread pool's epoll path, which takes no worker),
// and keeps the thread in the poller rather than parked on a channel (a lookup is pending I/O,
// not a deadlock).
//
// On Windows there is no socketpair: the tasklet waits on an op_kind::external op instead, which
// the resolver thread completes through the poller's completion port (external_completion,
// backend.hpp); a kill cancels it as a kill cancels the recv.
//
// Memory: the lookup record is shared (shared_ptr) by the tasklet and the resolver thread. A
// killed tasklet drops its reference and leaves at once; the thread finishes the lookup into the
// record, closes its end and drops the last reference. Nothing the tasklet owns is ever written
// by the thread.
#ifndef _WIN32
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "net_sys.hpp"
#include "poller.hpp"
#include "resolver.hpp"
#include "stackless/net.hpp"

namespace stackless::net {

namespace {

class gai_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int ev) const override { return ::gai_strerror(ev); }
};

}  // namespace

const std::error_category& gai_category() noexcept {
  static const gai_category_impl c;
  return c;
}

namespace detail {
namespace {

constexpr int kMaxThreads = 8;
constexpr auto kIdleExit = std::chrono::seconds(2);

// lookup: one getaddrinfo call. Inputs are set before it is posted; outputs are written by the
// resolver thread before it stores `done` (release) and closes notify_fd.
struct lookup {
  std::string host, port;
  bool has_host = false, has_port = false;
  ::addrinfo hints{};
  int rc = 0;       // getaddrinfo's result
  int sys_err = 0;  // errno, for EAI_SYSTEM
  std::vector<addrinfo_entry> out;
  std::atomic<bool> done{false};
#ifdef _WIN32
  io::detail::external_completion wake;  // the tasklet's op waits for its complete()
#else
  int notify_fd = -1;  // the resolver thread's end of the socketpair
#endif
};

void run_lookup(lookup& l) {
  ::addrinfo* res = nullptr;
  l.rc = ::getaddrinfo(l.has_host ? l.host.c_str() : nullptr, l.has_port ? l.port.c_str() : nullptr,
                       &l.hints, &res);
#ifdef EAI_SYSTEM
  if (l.rc == EAI_SYSTEM) l.sys_err = errno;
#endif
  if (l.rc == 0) {
    try {
      for (const ::addrinfo* ai = res; ai; ai = ai->ai_next) {
        addrinfo_entry e;
        e.family = ai->ai_family;
        e.type = ai->ai_socktype;
        e.proto = ai->ai_protocol;
        if (ai->ai_canonname) e.canonname = ai->ai_canonname;
        if (ai->ai_addr) e.addr = address::from_native(ai->ai_addr, ai->ai_addrlen);
        l.out.push_back(std::move(e));
      }
    } catch (const std::bad_alloc&) {
      l.out.clear();
      l.rc = EAI_MEMORY;
    }
  }
  if (res) ::freeaddrinfo(res);
}

// resolver_pool: process-wide, never destroyed (a thread still resolving at exit must not find
// it gone), replaced in a forked child (whose copy describes threads that do not exist there).
class resolver_pool {
 public:
  static resolver_pool*& instance() {
    static resolver_pool* p = [] {
#ifndef _WIN32
      ::pthread_atfork(nullptr, nullptr, [] { instance() = new resolver_pool; });  // NOLINT
#endif
      return new resolver_pool;  // NOLINT
    }();
    return p;
  }

  // post(l): queues l, starting a thread when none is idle and fewer than kMaxThreads run.
  // Throws std::system_error when no thread runs and none can be started.
  void post(std::shared_ptr<lookup> l) {
    std::unique_lock lk(m_);
    jobs_.push_back(std::move(l));
    ++in_flight_;
    if (idle_ >= static_cast<int>(jobs_.size()) || threads_ >= kMaxThreads) {
      cv_.notify_one();
      return;
    }
    try {
      std::thread([this] { work(); }).detach();
      ++threads_;
    } catch (const std::system_error&) {
      if (threads_ == 0) {
        jobs_.pop_back();
        --in_flight_;
        throw;
      }
      cv_.notify_one();  // the running threads will get to it
    }
  }

  void set_hook(std::function<void()> h) {
    std::lock_guard lk(m_);
    hook_ = std::move(h);
  }
  std::size_t in_flight() {
    std::lock_guard lk(m_);
    return in_flight_;
  }

 private:
  void work() {
    // Resolver threads take no process signals (they belong to the application's threads).
#ifndef _WIN32
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, nullptr);
#endif
    std::unique_lock lk(m_);
    for (;;) {
      ++idle_;
      const bool got = cv_.wait_for(lk, kIdleExit, [this] { return !jobs_.empty(); });
      --idle_;
      if (!got) {
        --threads_;
        return;
      }
      std::shared_ptr<lookup> l = std::move(jobs_.front());
      jobs_.pop_front();
      std::function<void()> hook = hook_;
      lk.unlock();
      if (hook) hook();
      run_lookup(*l);
      // release: the tasklet reads the results after its acquire load of `done`.
#ifdef _WIN32
      l->done.store(true, std::memory_order_release);
      l->wake.complete();  // the tasklet's op completes (its mutex orders the results too)
#else
      const int fd = l->notify_fd;
      l->done.store(true, std::memory_order_release);
      ::close(fd);  // the tasklet's recv sees EOF
#endif
      l.reset();  // the last reference when the tasklet was killed
      lk.lock();
      --in_flight_;
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<lookup>> jobs_;
  int threads_ = 0, idle_ = 0;
  std::size_t in_flight_ = 0;
  std::function<void()> hook_;
};

// printable(s, given): s for a message (None when not given; a hostile length is cut).
std::string printable(std::string_view s, bool given) {
  constexpr std::size_t kMax = 256;
  if (!given) return "None";
  if (s.size() <= kMax) return std::string(s);
  return std::string(s.substr(0, kMax)) + "...(" + std::to_string(s.size()) + " bytes)";
}

void refuse_nul(std::string_view s, const char* what) {
  if (s.find('\0') != std::string_view::npos) {
    throw std::invalid_argument(std::string("stackless::net::getaddrinfo: the ") + what +
                                " holds an embedded null byte");
  }
}

}  // namespace

void set_resolver_hook(std::function<void()> hook) {
  resolver_pool::instance()->set_hook(std::move(hook));
}
std::size_t resolver_in_flight() {
  return resolver_pool::instance()->in_flight();
}

}  // namespace detail

std::vector<addrinfo_entry> getaddrinfo(std::string_view host, std::string_view port, int family,
                                        int type, int proto, int flags) {
  detail::refuse_nul(host, "host");
  detail::refuse_nul(port, "port");
  const std::string where = "stackless::net::getaddrinfo(" +
                            detail::printable(host, !host.empty()) + ", " +
                            detail::printable(port, !port.empty()) + ")";
  auto l = std::make_shared<detail::lookup>();
  l->host = host;
  l->port = port;
  l->has_host = !host.empty();
  l->has_port = !port.empty();
  l->hints.ai_family = family;
  l->hints.ai_socktype = type;
  l->hints.ai_protocol = proto;
  l->hints.ai_flags = flags;

  detail::sys::startup();
#ifdef _WIN32
  try {
    detail::resolver_pool::instance()->post(l);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), where + ": no resolver thread");
  }
  // Wait for the resolver thread's complete(): the op is cancellable (a kill ends the wait at
  // once; the thread then completes nothing of ours).
  io::detail::op_args a;
  a.kind = io::detail::op_kind::external;
  a.buf = &l->wake;
  const io::detail::outcome o = io::detail::submit(a, nullptr, io::detail::no_deadline);
  o.rethrow_if_interrupted();  // killed: the lookup finishes into `l`, shared with the thread
  if (o.result < 0) {
    throw std::system_error(static_cast<int>(-o.result), std::system_category(),
                            where + ": waiting for the resolver");
  }
#else
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::system_error(errno, std::generic_category(), where + ": socketpair");
  l->notify_fd = sv[1];
  struct fd_guard {
    int fd;
    ~fd_guard() { ::close(fd); }
  } mine{sv[0]};
  try {
    detail::resolver_pool::instance()->post(l);
  } catch (const std::system_error& e) {
    ::close(sv[1]);
    throw std::system_error(e.code(), where + ": no resolver thread");
  }

  // Wait for EOF on our end: the resolver thread closed its end after writing the results.
  char byte = 0;
  io::detail::op_args a;
  a.kind = io::detail::op_kind::recv;
  a.fd = sv[0];
  a.buf = &byte;
  a.len = 1;
  for (;;) {
    const io::detail::outcome o = io::detail::submit(a, nullptr, io::detail::no_deadline);
    o.rethrow_if_interrupted();  // killed: the lookup finishes into `l`, shared with the thread
    if (o.result == -EINTR || o.result == -EAGAIN) continue;
    if (o.result < 0) {
      throw std::system_error(static_cast<int>(-o.result), std::generic_category(),
                              where + ": waiting for the resolver");
    }
    break;  // 0: EOF (nothing is ever written)
  }
#endif
  // acquire: pairs with the resolver thread's release store before it closed its end.
  if (!l->done.load(std::memory_order_acquire)) {
    throw std::logic_error(where + ": the resolver ended its wait without a result");
  }
#ifdef EAI_SYSTEM
  if (l->rc == EAI_SYSTEM) throw std::system_error(l->sys_err, std::generic_category(), where);
#endif
  if (l->rc != 0) throw gaierror(l->rc, gai_category(), where);
  return std::move(l->out);
}

std::vector<addrinfo_entry> getaddrinfo(std::string_view host, std::uint16_t port, int family,
                                        int type, int proto, int flags) {
  return getaddrinfo(host, std::to_string(port), family, type, proto, flags | AI_NUMERICSERV);
}

socket create_connection(std::string_view host, std::uint16_t port, std::optional<double> timeout) {
  const std::vector<addrinfo_entry> found = getaddrinfo(host, port, af_unspec, sock_stream);
  std::exception_ptr last;
  for (const addrinfo_entry& e : found) {
    try {
      socket s(e.family, e.type, e.proto);
      s.settimeout(timeout);
      s.connect(e.addr);
      return s;
    } catch (const std::system_error&) {
      last = std::current_exception();
    } catch (const stackless::timeout_error&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw gaierror(EAI_NONAME, gai_category(),
                 "stackless::net::create_connection(" + std::string(host) + ", " +
                     std::to_string(port) + "): no address");
}

}  // namespace stackless::net
