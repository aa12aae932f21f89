// A tiny consumer of an installed stackless: two tasklets and a channel.
#include <stackless/stackless.hpp>

#include <cstdio>

int main() {
  stackless::channel<int> ch;
  long sum = 0;
  stackless::tasklet([&] {
    for (int i = 1; i <= 10; ++i) ch.send(i);
  })();
  stackless::tasklet([&] {
    for (int i = 0; i < 10; ++i) sum += ch.receive();
  })();
  stackless::run();
  std::printf("consumer: sum %ld\n", sum);
  return sum == 55 ? 0 : 1;
}
