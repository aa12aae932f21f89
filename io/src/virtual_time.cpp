// The per-thread virtual clock (see virtual_time in sleep.hpp). The poller reads the time through
// stackless::now() and, when nothing else is runnable and no I/O is in flight, asks
// virtual_advance_to() to jump to its earliest timer instead of waiting in the kernel.
#include <stdexcept>

#include "stackless/io/io.hpp"
#include "stackless/io/sleep.hpp"

namespace stackless {
namespace {
struct vclock {
  bool on = false;
  std::chrono::steady_clock::time_point start{}, t{};
  std::size_t jumps = 0;
};
thread_local vclock tls_vclock;
}  // namespace

std::chrono::steady_clock::time_point now() noexcept {
  const vclock& c = tls_vclock;
  return c.on ? c.t : std::chrono::steady_clock::now();
}

virtual_time::virtual_time() {
  vclock& c = tls_vclock;
  if (c.on) throw std::logic_error("stackless::virtual_time: already active on this thread");
  if (io::pending_operations() != 0)
    throw std::logic_error(
        "stackless::virtual_time: timers or I/O are pending on this thread (real deadlines "
        "would mix with virtual ones)");
  c.on = true;
  c.start = c.t = std::chrono::steady_clock::now();
  c.jumps = 0;
}

virtual_time::~virtual_time() {
  tls_vclock.on = false;
}

void virtual_time::advance(std::chrono::steady_clock::duration d) {
  if (d < d.zero()) throw std::invalid_argument("stackless::virtual_time::advance: negative");
  tls_vclock.t += d;
}

std::chrono::steady_clock::duration virtual_time::elapsed() const noexcept {
  return tls_vclock.t - tls_vclock.start;
}

std::size_t virtual_time::jumps() const noexcept {
  return tls_vclock.jumps;
}

bool virtual_time::active() noexcept {
  return tls_vclock.on;
}

namespace io::detail {
bool virtual_time_active() noexcept {
  return tls_vclock.on;
}
void virtual_advance_to(std::chrono::steady_clock::time_point t) noexcept {
  vclock& c = tls_vclock;
  if (t > c.t) {
    c.t = t;
    ++c.jumps;
  }
}
}  // namespace io::detail
}  // namespace stackless
