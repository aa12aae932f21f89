// Small helpers shared by the benchmark programs: a monotonic clock, best-of-N / median
// repetition, getrusage figures and a plain-text table printer. Header-only, no dependencies.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Keeps a value alive for the optimiser.
template <class T>
inline void do_not_optimize(const T& v) {
  asm volatile("" : : "r,m"(v) : "memory");
}

struct stats {
  double best = 0;    // minimum
  double median = 0;  // median
  double first = 0;   // the first sample (cold caches, fresh pool)
};

inline stats summarize(std::vector<double> v) {
  stats s;
  if (v.empty()) return s;
  s.first = v.front();
  std::sort(v.begin(), v.end());
  s.best = v.front();
  s.median = v[v.size() / 2];
  return s;
}

// repeat(n, f): calls f() n times; f returns one sample (any unit). Returns best/median/first.
template <class F>
stats repeat(int n, F&& f) {
  std::vector<double> v;
  v.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v.push_back(f());
  return summarize(std::move(v));
}

struct usage {
  long maxrss_kib = 0;  // peak resident set size of the process so far
  long minflt = 0;      // minor page faults so far
  long majflt = 0;      // major page faults so far (disk reads; ~0 for anonymous memory)
};
inline usage get_usage() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return {ru.ru_maxrss, ru.ru_minflt, ru.ru_majflt};
}

// Command-line flags of the form --name or --name=value.
inline bool has_flag(int argc, char** argv, std::string_view name) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == name) return true;
  return false;
}
inline long flag_value(int argc, char** argv, std::string_view name, long dflt) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a.size() > name.size() + 1 && a.substr(0, name.size()) == name && a[name.size()] == '=')
      return std::strtol(std::string(a.substr(name.size() + 1)).c_str(), nullptr, 10);
  }
  return dflt;
}

// A plain-text table: header row, then rows; columns are padded to their widest cell.
class table {
 public:
  explicit table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void row(std::vector<std::string> r) { rows_.push_back(std::move(r)); }
  void print(std::FILE* out = stdout) const {
    std::vector<std::size_t> w;
    for (const auto& r : rows_)
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], r[i].size());
      }
    for (std::size_t k = 0; k < rows_.size(); ++k) {
      const auto& r = rows_[k];
      std::string line = "|";
      for (std::size_t i = 0; i < w.size(); ++i) {
        std::string c = i < r.size() ? r[i] : "";
        line += ' ';
        if (i == 0)
          line += c + std::string(w[i] - c.size(), ' ');
        else
          line += std::string(w[i] - c.size(), ' ') + c;
        line += " |";
      }
      std::fprintf(out, "%s\n", line.c_str());
      if (k == 0) {
        std::string sep = "|";
        for (std::size_t i = 0; i < w.size(); ++i) sep += std::string(w[i] + 2, '-') + "|";
        std::fprintf(out, "%s\n", sep.c_str());
      }
    }
    std::fflush(out);
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
inline std::string ratio(double a, double b) {
  return b > 0 ? fmt("%.2fx", a / b) : "-";
}

// in_child(env, value, f): f() in a forked child with the environment variable env set to value
// (for what a process decides once, such as STACKLESS_IO_BACKEND); returns the double f returned,
// or -1 when the child failed.
template <class F>
double in_child(const char* env, const char* value, F&& f) {
  int p[2];
  if (::pipe(p) != 0) return -1;
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    return -1;
  }
  if (pid == 0) {
    ::close(p[0]);
    ::setenv(env, value, 1);
    const double v = f();
    (void)!::write(p[1], &v, sizeof v);
    ::_exit(0);
  }
  ::close(p[1]);
  double v = -1;
  if (::read(p[0], &v, sizeof v) != sizeof v) v = -1;
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? v : -1;
}

// Chart data for scripts/bench.sh --plot: when STACKLESS_BENCH_CSV names a file, appends one
// tab-separated line "chart, title, bar label, ratio to the chart's same-run baseline, bar
// annotation". One chart per benchmark; a bar of 1 is the baseline itself. Does nothing otherwise.
inline void chart_bar(const std::string& chart, const std::string& title, const std::string& label,
                      double ratio, const std::string& note) {
  const char* path = std::getenv("STACKLESS_BENCH_CSV");
  if (!path || !*path || !(ratio > 0)) return;
  std::FILE* f = std::fopen(path, "a");
  if (!f) {
    std::fprintf(stderr, "bench: cannot append chart data to %s: %s\n", path, std::strerror(errno));
    return;
  }
  std::fprintf(f, "%s\t%s\t%s\t%.6g\t%s\n", chart.c_str(), title.c_str(), label.c_str(), ratio,
               note.c_str());
  std::fclose(f);
}

}  // namespace bench
