// Positions: seek/tell round trips, SEEK_END, pread/pwrite leaving the position alone, and a
// sparse file with offsets past 4 GiB.
#include <fcntl.h>

#include "io_helpers.hpp"

using namespace stackless;

BOOST_FIXTURE_TEST_SUITE(Seek, iot::io_clean)

BOOST_AUTO_TEST_CASE(seek_tell_round_trips) {
  const std::string data = iot::numbers(2000);
  iot::put(iot::path("s.txt"), data);
  io::file f = io::open(iot::path("s.txt"), "r+b", 16);
  for (std::int64_t off : {0, 5, 100, 17, 4000, 33, 6889}) {
    BOOST_TEST(f.seek(off) == off);
    BOOST_TEST(f.tell() == off);
    BOOST_TEST(f.read(7) == data.substr(static_cast<std::size_t>(off), 7));
    BOOST_TEST(f.tell() == std::min<std::int64_t>(off + 7, static_cast<std::int64_t>(data.size())));
  }
  BOOST_TEST(f.seek(-10, SEEK_END) == static_cast<std::int64_t>(data.size()) - 10);
  BOOST_TEST(f.read() == data.substr(data.size() - 10));
  BOOST_TEST(f.seek(0, SEEK_END) == static_cast<std::int64_t>(data.size()));
  f.seek(10);
  BOOST_TEST(f.seek(5, SEEK_CUR) == 15);
  BOOST_TEST(f.seek(-3, SEEK_CUR) == 12);
  // The named forms (io::whence) are the same calls.
  BOOST_TEST(f.seek(0, io::whence::end) == static_cast<std::int64_t>(data.size()));
  BOOST_TEST(f.seek(-5, io::whence::cur) == static_cast<std::int64_t>(data.size()) - 5);
  BOOST_TEST(f.seek(12, io::whence::set) == 12);
  f.write("XY");
  BOOST_TEST(f.tell() == 14);
  f.seek(11);
  BOOST_TEST(f.read(4) == data.substr(11, 1) + "XY" + data.substr(14, 1));
  BOOST_CHECK_EXCEPTION(f.seek(-1), std::filesystem::filesystem_error, iot::errc_is(EINVAL));
  BOOST_CHECK_EXCEPTION(f.seek(0, 42), std::filesystem::filesystem_error, iot::errc_is(EINVAL));
}

BOOST_AUTO_TEST_CASE(pread_pwrite_leave_the_position_alone) {
  iot::put(iot::path("p.txt"), "abcdefghij");
  io::file f = io::open(iot::path("p.txt"), "r+");
  BOOST_TEST(f.read(2) == "ab");
  char buf[3];
  BOOST_TEST(f.pread(std::span(buf), 5) == 3u);
  BOOST_TEST(std::string(buf, 3) == "fgh");
  BOOST_TEST(f.pwrite("XYZ", 7) == 3u);
  BOOST_TEST(f.tell() == 2);
  BOOST_TEST(f.read() == "cdefgXYZ");
}

// Offsets are 64-bit: a sparse file with data past 4 GiB (and past 2^32 + a bit).
BOOST_AUTO_TEST_CASE(sparse_file_past_4_gib) {
  const std::int64_t gib = std::int64_t{1} << 30;
  const std::int64_t far = 5 * gib + 123;
  io::file f = io::open(iot::path("sparse.bin"), "w+b");
  BOOST_TEST(f.pwrite("tail", static_cast<std::uint64_t>(far)) == 4u);
  BOOST_TEST(f.seek(0, SEEK_END) == far + 4);
  BOOST_TEST(f.seek(4 * gib + 1) == 4 * gib + 1);
  f.write("mid");
  BOOST_TEST(f.tell() == 4 * gib + 4);
  f.seek(far);
  BOOST_TEST(f.read(4) == "tail");
  BOOST_TEST(f.tell() == far + 4);
  char buf[5];
  BOOST_TEST(f.pread(std::span(buf), static_cast<std::uint64_t>(4 * gib)) == 5u);
  BOOST_TEST(std::string(buf, 5) == std::string("\0mid\0", 5));
  f.seek(-4, SEEK_END);
  BOOST_TEST(f.read() == "tail");
  f.truncate(0);
  f.close();
  std::filesystem::remove(iot::path("sparse.bin"));
}

BOOST_AUTO_TEST_SUITE_END()
