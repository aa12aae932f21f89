// receive_timeout: a port of Richard Tew's channelWithReceiveTimeout.py
// (stackless-dev/stacklessexamples, examples/channelWithReceiveTimeout.py), "one way of timing
// out tasklets waiting on a channel".
//
// A TimeLimitedReceiveChannel's receive() gives up after expirySeconds: when the first receiver
// starts waiting, a ManageWaitingTasklets tasklet is started; it wakes every waiter whose time
// is up by sending it a ChannelWaitExpiration exception (send_exception), and sleeps until the
// next one expires. Because every waiter gets the same expiry period, the first to expire is
// the first in the channel's queue, which is the one send_exception reaches.
//
// Differences from the original: Python subclasses stackless.channel; here the class *has* a
// channel (channel<T>'s members are not virtual). Its Sleep/ManageSleepingTasklets manager is
// stackless::sleep, and exitScheduler is gone: run() returns once Test is done. The original
// sleeps `time.time() - earliestExpirationTime` (a negative time) until the next expiry; this
// port sleeps until that expiry. And Run() also shows a receive that is served in time.
//
// Usage: receive_timeout [--expiry S]   (the original: 5 seconds)
// Exits non-zero unless the first receive timed out after at least the expiry period and the
// second one received its value.
#include <stackless/stackless.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

class ChannelWaitExpiration : public std::runtime_error {
 public:
  ChannelWaitExpiration() : std::runtime_error("channel wait expired") {}
};

template <class T>
class TimeLimitedReceiveChannel {
 public:
  explicit TimeLimitedReceiveChannel(double expirySeconds = 5.0) : expirySeconds(expirySeconds) {}

  void send(T v) { channel.send(std::move(v)); }
  int balance() const { return channel.balance(); }

  T receive() {
    if (channel.balance() > 0) {
      // We can return from this immediately.
      return channel.receive();
    }

    if (channel.balance() == 0) stackless::tasklet([this] { ManageWaitingTasklets(); })();

    const std::pair<clock_type::time_point, stackless::tasklet> t{clock_type::now(),
                                                                  stackless::getcurrent()};
    receiveAddTimes.push_back(t);  // in time order already: times only grow

    try {
      T ret = channel.receive();
      remove(t);
      return ret;
    } catch (...) {
      // Any exception should be met with the same handling (tasklet_exit included).
      remove(t);
      throw;
    }
  }

  const double expirySeconds;

 private:
  void ManageWaitingTasklets() {
    const auto expiry = std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(expirySeconds));
    while (channel.balance() < 0) {
      std::optional<clock_type::time_point> earliestExpirationTime;
      for (const auto& [timeAdded, tasklet] : receiveAddTimes) {
        if (!tasklet.blocked()) {
          // Already woken but not yet back in receive() to remove its entry (possible when
          // the channel schedules woken receivers instead of running them at once).
          continue;
        }
        if (timeAdded + expiry <= clock_type::now()) {
          // This tasklet is guaranteed to be the first tasklet on the channel. Waking it runs
          // it at once and it removes its entry, so start the scan again.
          channel.template send_exception<ChannelWaitExpiration>();
          earliestExpirationTime = clock_type::now();
        } else {
          // The others wait longer: sleep until this one expires.
          earliestExpirationTime = timeAdded + expiry;
        }
        break;
      }
      // Wait until the earliest we will need to next check.
      if (!earliestExpirationTime)
        stackless::sleep(expiry);
      else
        stackless::sleep_until(*earliestExpirationTime);
    }
  }

  void remove(const std::pair<clock_type::time_point, stackless::tasklet>& t) {
    auto it = std::find(receiveAddTimes.begin(), receiveAddTimes.end(), t);
    if (it != receiveAddTimes.end()) receiveAddTimes.erase(it);
  }

  stackless::channel<T> channel;
  std::vector<std::pair<clock_type::time_point, stackless::tasklet>> receiveAddTimes;
};

bool timed_out_in_time = false;
bool served_in_time = false;

void Test(TimeLimitedReceiveChannel<std::string>& c) {
  const auto t = clock_type::now();
  std::printf("Waiting for %0.1f seconds\n", c.expirySeconds);
  try {
    c.receive();
  } catch (const ChannelWaitExpiration&) {
    const std::chrono::duration<double> took = clock_type::now() - t;
    std::printf("Exited receive, took %0.1f seconds\n", took.count());
    timed_out_in_time = took.count() >= c.expirySeconds;
  } catch (const std::exception& e) {
    const std::chrono::duration<double> took = clock_type::now() - t;
    std::printf("Unexpected exit '%s', took %0.1f seconds\n", e.what(), took.count());
  }
}

// Not in the original: a receive that a sender serves before the expiry.
void TestServed(TimeLimitedReceiveChannel<std::string>& c) {
  stackless::tasklet([&c] {
    stackless::sleep(std::chrono::duration<double>(c.expirySeconds / 4));
    c.send("hello");
  })();
  try {
    std::string v = c.receive();
    std::printf("Received '%s' before the expiry\n", v.c_str());
    served_in_time = v == "hello";
  } catch (const ChannelWaitExpiration&) {
    std::printf("Timed out although a sender came\n");
  }
}

void Run(double expiry) {
  TimeLimitedReceiveChannel<std::string> c(expiry);

  stackless::tasklet([&c] { Test(c); })();
  stackless::run();

  stackless::tasklet([&c] { TestServed(c); })();
  stackless::run();
}

}  // namespace

int main(int argc, char** argv) {
  double expiry = 5.0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--expiry") == 0 && i + 1 < argc)
      expiry = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--expiry S]\n", argv[0]);
      return 2;
    }
  }
  Run(expiry);
  return timed_out_in_time && served_in_time && stackless::alive_tasklets() == 0 ? 0 : 1;
}
