// Every open mode and buffering mode of io::file, and Python's line-oriented reading API.
#include "io_helpers.hpp"

using namespace stackless;

BOOST_FIXTURE_TEST_SUITE(Modes, iot::io_clean)

BOOST_AUTO_TEST_CASE(mode_r_reads_and_refuses_writes) {
  iot::put(iot::path("r.txt"), "one\ntwo\n");
  io::file f = io::open(iot::path("r.txt"));
  BOOST_TEST(f.mode() == "r");
  BOOST_TEST(f.name() == iot::path("r.txt").string());
  BOOST_TEST(f.read() == "one\ntwo\n");
  BOOST_CHECK_EXCEPTION(f.write("x"), std::filesystem::filesystem_error, iot::errc_is(EBADF));
  BOOST_CHECK_EXCEPTION(f.truncate(0), std::filesystem::filesystem_error, iot::errc_is(EBADF));
}

BOOST_AUTO_TEST_CASE(mode_w_truncates_creates_and_refuses_reads) {
  iot::put(iot::path("w.txt"), "old content");
  {
    io::file f = io::open(iot::path("w.txt"), "w");
    BOOST_TEST(f.write("new") == 3u);
    BOOST_CHECK_EXCEPTION(f.read(), std::filesystem::filesystem_error, iot::errc_is(EBADF));
  }  // the destructor flushes and closes
  BOOST_TEST(iot::get(iot::path("w.txt")) == "new");
  io::file g = io::open(iot::path("w-created.txt"), "wb");
  g.close();
  BOOST_TEST(std::filesystem::exists(iot::path("w-created.txt")));
}

BOOST_AUTO_TEST_CASE(mode_a_appends_after_existing_data) {
  iot::put(iot::path("a.txt"), "abc");
  io::file f = io::open(iot::path("a.txt"), "a");
  BOOST_TEST(f.tell() == 3);
  f.write("def");
  BOOST_TEST(f.tell() == 6);
  f.seek(0);
  f.write("ghi");  // O_APPEND: still at the end
  f.close();
  BOOST_TEST(iot::get(iot::path("a.txt")) == "abcdefghi");
  io::file g = io::open(iot::path("a.txt"), "a+");
  g.write("!");
  g.seek(0);
  BOOST_TEST(g.read() == "abcdefghi!");
}

BOOST_AUTO_TEST_CASE(mode_x_creates_only_new_files) {
  io::file f = io::open(iot::path("x.txt"), "x");
  f.write("x");
  f.close();
  BOOST_CHECK_EXCEPTION((void)io::open(iot::path("x.txt"), "x"), std::filesystem::filesystem_error,
                        iot::errc_is(EEXIST));
  io::file g = io::open(iot::path("x2.txt"), "x+b");
  g.write("12345");
  g.seek(1);
  BOOST_TEST(g.read(3) == "234");
}

BOOST_AUTO_TEST_CASE(modes_plus_read_and_write) {
  iot::put(iot::path("rp.txt"), "0123456789");
  io::file f = io::open(iot::path("rp.txt"), "r+");
  BOOST_TEST(f.read(3) == "012");
  f.write("ab");  // at position 3
  BOOST_TEST(f.read(2) == "56");
  f.seek(0);
  BOOST_TEST(f.read() == "012ab56789");
  io::file g = io::open(iot::path("wp.txt"), "w+");
  g.write("hello");
  BOOST_TEST(g.read() == "");
  g.seek(0);
  BOOST_TEST(g.read() == "hello");
}

BOOST_AUTO_TEST_CASE(universal_newlines_translate_and_record) {
  iot::put(iot::path("u.txt"), "a\r\nb\rc\nd\r");
  io::file f = io::open(iot::path("u.txt"), "U");
  BOOST_TEST(f.newlines().empty());
  BOOST_TEST(f.readline() == "a\n");  // its '\n' is only looked at by the next read
  BOOST_TEST(f.readline() == "b\n");
  BOOST_TEST(f.newlines() == (std::vector<std::string>{"\r\n"}));
  BOOST_TEST(f.readlines() == (std::vector<std::string>{"c\n", "d\n"}));
  BOOST_TEST(f.newlines() == (std::vector<std::string>{"\r", "\n", "\r\n"}));
  f.seek(0);
  BOOST_TEST(f.read() == "a\nb\nc\nd\n");
  // A "\r\n" split across buffer refills still counts once.
  iot::put(iot::path("u2.txt"), "xy\r\nz");
  io::file g = io::open(iot::path("u2.txt"), "rbU", 3);
  BOOST_TEST(g.read() == "xy\nz");
  BOOST_TEST(g.newlines() == (std::vector<std::string>{"\r\n"}));
}

BOOST_AUTO_TEST_CASE(invalid_modes_name_the_mode) {
  for (const char* m : {"", "rw", "rr", "q", "r+U", "wU", "bt", "rb+b", "U+", "aU"}) {
    BOOST_CHECK_EXCEPTION((void)io::open(iot::path("never"), m), std::invalid_argument,
                          [m](const std::invalid_argument& e) {
                            return std::string(e.what()).find("'" + std::string(m) + "'") !=
                                   std::string::npos;
                          });
  }
  BOOST_TEST(!std::filesystem::exists(iot::path("never")));
}

BOOST_AUTO_TEST_CASE(lines_iteration_readline_limit) {
  iot::put(iot::path("lines.txt"), "alpha\nbeta\n\ngamma");
  io::file f = io::open(iot::path("lines.txt"));
  std::vector<std::string> got;
  for (const std::string& l : f) got.push_back(l);
  BOOST_TEST(got == (std::vector<std::string>{"alpha\n", "beta\n", "\n", "gamma"}));
  f.seek(0);
  BOOST_TEST(f.readline(3) == "alp");
  BOOST_TEST(f.readline() == "ha\n");
  io::file w = io::open(iot::path("wl.txt"), "w");
  w.writelines(std::vector<std::string>{"x\n", "y\n"});
  w.close();
  BOOST_TEST(iot::get(iot::path("wl.txt")) == "x\ny\n");
}

// buffering 0: every write reaches the file at once; 1: at each newline; N: when N bytes are
// buffered (or at flush/close).
BOOST_AUTO_TEST_CASE(buffering_modes_decide_when_data_reaches_the_file) {
  const auto p = iot::path("buf.txt");
  {
    io::file f = io::open(p, "w", 0);
    f.write("abc");
    BOOST_TEST(iot::get(p) == "abc");
  }
  {
    io::file f = io::open(p, "w", 1);
    f.write("no newline");
    BOOST_TEST(iot::get(p) == "");
    f.write(" yet\nthen");
    BOOST_TEST(iot::get(p) == "no newline yet\n");
  }
  BOOST_TEST(iot::get(p) == "no newline yet\nthen");
  {
    io::file f = io::open(p, "w", 8);
    f.write("1234");
    BOOST_TEST(iot::get(p) == "");
    f.write("5678");
    BOOST_TEST(iot::get(p) == "12345678");
    f.write("9");
    f.flush();
    BOOST_TEST(iot::get(p) == "123456789");
  }
  {
    io::file f = io::open(p, "r", 0);  // unbuffered reads keep nothing between calls
    BOOST_TEST(f.readline() == "123456789");
    f.seek(2);
    BOOST_TEST(f.read(3) == "345");
    BOOST_TEST(f.tell() == 5);
  }
}

BOOST_AUTO_TEST_CASE(close_is_idempotent_and_closed_files_refuse_io) {
  io::file f = io::open(iot::path("c.txt"), "w+");
  const int fd = f.fileno();
  BOOST_TEST(fd >= 0);
  BOOST_TEST(!f.isatty());
  BOOST_TEST(!f.closed());
  f.close();
  f.close();
  BOOST_TEST(f.closed());
  BOOST_TEST(f.name() == iot::path("c.txt").string());
  auto closed = [](const std::filesystem::filesystem_error& e) {
    return e.code().value() == EBADF &&
           std::string(e.what()).find("closed file") != std::string::npos;
  };
  BOOST_CHECK_EXCEPTION(f.read(), std::filesystem::filesystem_error, closed);
  BOOST_CHECK_EXCEPTION(f.write("x"), std::filesystem::filesystem_error, closed);
  BOOST_CHECK_EXCEPTION(f.seek(0), std::filesystem::filesystem_error, closed);
  BOOST_CHECK_EXCEPTION(f.tell(), std::filesystem::filesystem_error, closed);
  BOOST_CHECK_EXCEPTION(f.fileno(), std::filesystem::filesystem_error, closed);
  io::file none;
  BOOST_TEST(none.closed());
  BOOST_CHECK_THROW(none.read(), std::filesystem::filesystem_error);
  io::file moved = io::open(iot::path("c.txt"));
  io::file other = std::move(moved);
  BOOST_TEST(moved.closed());
  BOOST_TEST(!other.closed());
}

BOOST_AUTO_TEST_CASE(truncate_flush_fsync) {
  io::file f = io::open(iot::path("t.txt"), "w+");
  f.write("0123456789");
  f.seek(4);
  f.truncate();
  BOOST_TEST(f.tell() == 4);
  f.fsync();
  BOOST_TEST(iot::get(iot::path("t.txt")) == "0123");
  f.truncate(8);
  f.seek(0);
  BOOST_TEST(f.read() == std::string("0123\0\0\0\0", 8));
}

BOOST_AUTO_TEST_SUITE_END()
