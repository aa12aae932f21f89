// The seed's demo as a test: tasklets copy files concurrently through stackless::io, byte-exact.
#include <algorithm>

#include "io_helpers.hpp"

using namespace stackless;

namespace {

void copy_file(const std::filesystem::path& from, const std::filesystem::path& to,
               std::size_t chunk, int* max_pending) {
  io::file in = io::open(from, "rb");
  io::file out = io::open(to, "wb");
  for (;;) {
    std::string block = in.read(chunk);
    *max_pending = std::max(*max_pending, static_cast<int>(io::pending_operations()));
    if (block.empty()) break;
    BOOST_REQUIRE_EQUAL(out.write(block), block.size());
  }
  out.close();
  in.close();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Copy, iot::io_clean)

// stacklessfileIOCP.py's demo: 10 tasklets copy a ~2.9 MB file and 20 a ~39 KB file at once.
BOOST_AUTO_TEST_CASE(seed_demo_concurrent_copies_are_byte_exact) {
  const std::string big = iot::numbers(500000);
  const std::string small = iot::numbers(10000);
  BOOST_REQUIRE_EQUAL(big.size(), 2888890u);
  BOOST_REQUIRE_EQUAL(small.size(), 38890u);
  iot::put(iot::path("big.src"), big);
  iot::put(iot::path("small.src"), small);
  int max_pending = 0;
  for (int i = 0; i < 10; ++i)
    tasklet{copy_file}(iot::path("big.src"), iot::path("big." + std::to_string(i)),
                       std::size_t{64 * 1024}, &max_pending);
  for (int i = 0; i < 20; ++i)
    tasklet{copy_file}(iot::path("small.src"), iot::path("small." + std::to_string(i)),
                       std::size_t{4096}, &max_pending);
  run();
  BOOST_TEST(max_pending > 1, "operations overlapped: " << max_pending);
  for (int i = 0; i < 10; ++i) {
    BOOST_TEST(iot::get(iot::path("big." + std::to_string(i))) == big);
    std::filesystem::remove(iot::path("big." + std::to_string(i)));
  }
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(iot::get(iot::path("small." + std::to_string(i))) == small);
}

// read() with no size returns the whole rest of the file, in chunks if need be.
BOOST_AUTO_TEST_CASE(read_all_returns_the_rest_of_the_file) {
  const std::string big = iot::numbers(500000);
  iot::put(iot::path("all.src"), big);
  std::string got;
  tasklet([&] {
    io::file f = io::open(iot::path("all.src"));
    BOOST_TEST(f.read(10) == big.substr(0, 10));
    got = f.read();
    BOOST_TEST(f.read().empty());
    BOOST_TEST(f.read(5).empty());
  })();
  run();
  BOOST_TEST(got == big.substr(10));
}

// The main tasklet can read, write and sleep without ever calling run().
BOOST_AUTO_TEST_CASE(main_uses_files_without_run) {
  {
    io::file f = io::open(iot::path("main.txt"), "w");
    f.write("hello from main\n");
    f.flush();
    BOOST_TEST(getruncount() == 1);
  }
  io::file f = io::open(iot::path("main.txt"));
  BOOST_TEST(f.readline() == "hello from main\n");
  BOOST_TEST(f.readline().empty());
  sleep(std::chrono::milliseconds(1));
  BOOST_TEST(io::pending_operations() == 0u);
}

// EOF: read(n) near the end returns what is left, then "" forever; readinto reports short counts.
BOOST_AUTO_TEST_CASE(read_past_eof_returns_short_count) {
  iot::put(iot::path("eof.txt"), "abcdef");
  io::file f = io::open(iot::path("eof.txt"), "rb");
  BOOST_TEST(f.read(4) == "abcd");
  BOOST_TEST(f.read(4) == "ef");
  BOOST_TEST(f.read(4) == "");
  f.seek(3);
  char buf[10];
  BOOST_TEST(f.readinto(std::span(buf)) == 3u);
  BOOST_TEST(std::string(buf, 3) == "def");
  BOOST_TEST(f.readinto(std::span(buf)) == 0u);
  std::byte b[4];
  BOOST_TEST(f.pread(std::span(b), 4) == 2u);
  BOOST_TEST(f.pread(std::span(b), 100) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
