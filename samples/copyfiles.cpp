// copyfiles: the demo of stacklessfileIOCP.py (stackless-dev/stacklessexamples,
// examples/fileIO/stacklessfileIOCP.py, C. de Paula after R. Tew's IOCP.py), ported to
// stackless::io::file.
//
// It creates two test files (the original: str(x) for x < 500000, about 2.9 MB, and for
// x < 10000, about 39 KB), starts 10 tasklets that copy the big one and 20 that copy the small
// one, all at once, and runs them. Each read and write blocks only its own tasklet, so the 30
// copies overlap. Then it prints every tasklet's time and the total. The original's copyfile()
// reads the whole file with one read() and writes it with one write(); so does --chunk 0. By
// default the copy goes in 64 KiB chunks, so that the progress line has something to show.
//
// Added to the original: a progress line while the copies run (a tasklet that sleeps 20 ms
// between updates), a byte-for-byte check of every copy (the exit status is 1 if any copy differs),
// a run of the same copies with plain blocking stdio for comparison (--compare), the choice of the
// I/O backend, sizes, counts and chunking, and the test files are removed at the end.
//
// Usage: copyfiles [options]   (--help lists them)
#include <stackless/stackless.hpp>

#include <unistd.h>
#ifdef _WIN32
#include <process.h>
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  std::size_t big_size = 2888890;  // the original's test-big.txt: str(x) for x < 500000
  std::size_t small_size = 38890;  // test-small.txt: str(x) for x < 10000
  int big_count = 10;
  int small_count = 20;
  std::size_t chunk = 64 * 1024;  // 0: read the whole file, then write it (the original)
  std::string backend;            // "", "uring" or "threadpool"
  bool compare = false;
  bool quiet = false;
  bool keep = false;
  fs::path dir;
};

options opt;

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// The original's test files: the decimal numbers 0, 1, 2, ... written one after the other,
// cut to `size` bytes.
void make_test_file(const fs::path& name, std::size_t size) {
  std::string s;
  s.reserve(size + 16);
  for (unsigned long x = 0; s.size() < size; ++x) s += std::to_string(x);
  s.resize(size);
  std::ofstream(name, std::ios::binary).write(s.data(), static_cast<std::streamsize>(s.size()));
}

struct job {
  int who = 0;
  fs::path infile, out;
  double seconds = 0;
  bool done = false;
  std::string error = {};
};

std::size_t bytes_copied = 0;
std::size_t jobs_done = 0;
std::size_t jobs_total = 0;
clock_type::time_point last_finish;
stackless::tasklet progress_tasklet;

// Function to copy a file (the original's copyfile).
void copyfile(job* result) {
  job& j = *result;
  const auto st = clock_type::now();
  try {
    stackless::io::file f1 = stackless::io::open(j.infile, "rb");
    stackless::io::file f2 = stackless::io::open(j.out, "wb");
    if (!opt.quiet)
      std::printf("%d started reading %s ...\n", j.who, j.infile.filename().string().c_str());
    if (opt.chunk == 0) {
      std::string a = f1.read();
      if (!opt.quiet)
        std::printf("%d started writing %s -> %s ...\n", j.who,
                    j.infile.filename().string().c_str(), j.out.filename().string().c_str());
      f2.write(a);
      bytes_copied += a.size();
    } else {
      for (std::string a = f1.read(opt.chunk); !a.empty(); a = f1.read(opt.chunk)) {
        f2.write(a);
        bytes_copied += a.size();
      }
    }
    f1.close();
    f2.close();
  } catch (const std::exception& e) {
    j.error = e.what();
  }
  j.seconds = since(st);
  j.done = true;
  last_finish = clock_type::now();
  if (++jobs_done == jobs_total && progress_tasklet)
    progress_tasklet.kill();  // wakes it from its sleep, to die
  if (!opt.quiet)
    std::printf("Finished tasklet %d (%s) in %.3f s\n", j.who, j.infile.filename().string().c_str(),
                j.seconds);
}

// Not in the original: a progress line, redrawn every 20 ms on a terminal (a new line every
// 250 ms otherwise), until the last copy kills this tasklet.
void progress(std::size_t total_bytes) {
  const bool tty = ::isatty(2);
  auto last_line = clock_type::now();
  for (;;) {
    stackless::sleep(std::chrono::milliseconds(20));
    if (!tty && clock_type::now() - last_line < std::chrono::milliseconds(250)) continue;
    last_line = clock_type::now();
    std::fprintf(stderr, "progress: %zu/%zu copies done, %.1f/%.1f MB%s", jobs_done, jobs_total,
                 bytes_copied / 1e6, total_bytes / 1e6, tty ? "   \r" : "\n");
  }
}

bool same_contents(const fs::path& a, const fs::path& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::vector<char> ba(1 << 16), bb(1 << 16);
  while (fa && fb) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    if (fa.gcount() != fb.gcount() ||
        std::memcmp(ba.data(), bb.data(), static_cast<std::size_t>(fa.gcount())) != 0)
      return false;
  }
  return fa.eof() && fb.eof();
}

// --compare: the same copies, one after the other, with blocking stdio.
double blocking_copies(const std::vector<job>& jobs) {
  const auto st = clock_type::now();
  std::vector<char> buf;
  for (const job& j : jobs) {
    fs::path out = j.out;
    out += ".blocking";
    std::FILE* in = std::fopen(j.infile.string().c_str(), "rb");
    std::FILE* o = std::fopen(out.string().c_str(), "wb");
    if (!in || !o) {
      std::fprintf(stderr, "blocking copy: cannot open %s\n",
                   (!in ? j.infile : out).string().c_str());
      std::exit(1);
    }
    buf.resize(opt.chunk ? opt.chunk : fs::file_size(j.infile));
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), in)) > 0;)
      std::fwrite(buf.data(), 1, n, o);
    std::fclose(in);
    std::fclose(o);
  }
  return since(st);
}

void usage(const char* argv0) {
  std::printf(
      "usage: %s [options]\n"
      "  --big-size BYTES     size of the big test file (default 2888890, as the original)\n"
      "  --small-size BYTES   size of the small test file (default 38890)\n"
      "  --big-count N        tasklets copying the big file (default 10)\n"
      "  --small-count N      tasklets copying the small file (default 20)\n"
      "  --chunk BYTES        copy in chunks of BYTES (default 65536; 0: one read() of the\n"
      "                       whole file and one write(), as the original)\n"
      "  --backend NAME       I/O backend: uring or threadpool (default: io_uring if available;\n"
      "                       same as STACKLESS_IO_BACKEND=NAME)\n"
      "  --compare            also time the same copies done with blocking stdio\n"
      "  --dir DIR            where to put the files (default: a new directory in the temp dir)\n"
      "  --keep               keep the files\n"
      "  --quiet              print only the summary\n",
      argv0);
}

bool parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "copyfiles: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--big-size")
      opt.big_size = std::strtoull(value(), nullptr, 0);
    else if (a == "--small-size")
      opt.small_size = std::strtoull(value(), nullptr, 0);
    else if (a == "--big-count")
      opt.big_count = std::atoi(value());
    else if (a == "--small-count")
      opt.small_count = std::atoi(value());
    else if (a == "--chunk")
      opt.chunk = std::strtoull(value(), nullptr, 0);
    else if (a == "--backend")
      opt.backend = value();
    else if (a == "--dir")
      opt.dir = value();
    else if (a == "--compare")
      opt.compare = true;
    else if (a == "--keep")
      opt.keep = true;
    else if (a == "--quiet")
      opt.quiet = true;
    else if (a == "--help" || a == "-h") {
      usage(argv[0]);
      std::exit(0);
    } else {
      std::fprintf(stderr, "copyfiles: unknown option %s (try --help)\n", a.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (!parse(argc, argv)) return 2;
    // The backend is chosen once per process, on the first I/O: set the choice before any.
#ifdef _WIN32
    // Windows has one backend (IOCP); the option is accepted and ignored there.
#else
  if (!opt.backend.empty()) ::setenv("STACKLESS_IO_BACKEND", opt.backend.c_str(), 1);
#endif

  bool made_dir = false;
  if (opt.dir.empty()) {
#ifdef _WIN32
    opt.dir = fs::temp_directory_path() / ("copyfiles." + std::to_string(::_getpid()));
    fs::create_directories(opt.dir);
#else
    std::string tmpl = (fs::temp_directory_path() / "copyfiles.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      std::perror("copyfiles: mkdtemp");
      return 1;
    }
    opt.dir = tmpl;
#endif
    made_dir = true;
  } else {
    fs::create_directories(opt.dir);
  }

  // Creating two dummy files (with plain blocking I/O, as the original does).
  const fs::path small = opt.dir / "test-small.txt", big = opt.dir / "test-big.txt";
  make_test_file(small, opt.small_size);
  make_test_file(big, opt.big_size);

  // Launching tasklets to perform the file copy.
  std::vector<job> jobs;
  for (int i = 1; i <= opt.big_count; ++i)
    jobs.push_back(
        job{.who = i, .infile = big, .out = opt.dir / ("big" + std::to_string(i) + ".txt")});
  for (int i = 1; i <= opt.small_count; ++i)
    jobs.push_back(
        job{.who = i, .infile = small, .out = opt.dir / ("sm" + std::to_string(i) + ".txt")});
  std::size_t total_bytes = 0;
  jobs_total = jobs.size();
  for (job& j : jobs) {
    stackless::tasklet{copyfile}(&j);
    total_bytes += j.infile == big ? opt.big_size : opt.small_size;
  }
  if (!opt.quiet) progress_tasklet = stackless::tasklet{progress}(total_bytes);

  std::printf("copyfiles: %zu tasklets copy %.1f MB in %s (I/O backend: %s)\n", jobs.size(),
              total_bytes / 1e6, opt.dir.string().c_str(),
              std::string(stackless::io::backend_name()).c_str());
  const auto st = clock_type::now();
  stackless::run();
  const double total = std::chrono::duration<double>(last_finish - st).count();
  if (!opt.quiet && ::isatty(2))
    std::fprintf(stderr, "progress: %zu/%zu copies done, %.1f/%.1f MB   \n", jobs_done, jobs_total,
                 bytes_copied / 1e6, total_bytes / 1e6);

  // Not in the original: check every copy, byte for byte.
  int bad = 0;
  double slowest = 0;
  for (const job& j : jobs) {
    slowest = std::max(slowest, j.seconds);
    if (!j.done || !j.error.empty() || !same_contents(j.infile, j.out)) {
      ++bad;
      std::fprintf(stderr, "copy %s -> %s FAILED%s%s\n", j.infile.string().c_str(),
                   j.out.string().c_str(), j.error.empty() ? ": contents differ" : ": ",
                   j.error.c_str());
    }
  }
  std::printf(
      "Total time is %.3f s (%.0f MB/s); slowest tasklet %.3f s; %zu copies verified, "
      "%d bad\n",
      total, total_bytes / 1e6 / total, slowest, jobs.size() - static_cast<std::size_t>(bad), bad);
  if (opt.compare) {
    const double b = blocking_copies(jobs);
    std::printf("Blocking stdio, one copy after the other: %.3f s (%.0f MB/s)\n", b,
                total_bytes / 1e6 / b);
  }

  // Cleanup all test files used.
  if (!opt.keep) {
    std::error_code ec;
    if (made_dir) {
      fs::remove_all(opt.dir, ec);
    } else {
      for (const job& j : jobs) {
        fs::remove(j.out, ec);
        fs::remove(fs::path(j.out) += ".blocking", ec);
      }
      fs::remove(small, ec);
      fs::remove(big, ec);
    }
  }
  return bad == 0 ? 0 : 1;
}
