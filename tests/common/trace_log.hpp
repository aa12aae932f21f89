// trace_log: an execution trace (the rlist/events lists of the Python tests), compared as one
// space-separated string. The runtime and channel tests share it (rt::log, chtest::event_log).
#pragma once

#include <string>
#include <utility>
#include <vector>

struct trace_log {
  std::vector<std::string> items;
  void operator()(std::string s) { items.push_back(std::move(s)); }
  void clear() { items.clear(); }
  std::string str() const {
    std::string r;
    for (const auto& s : items) {
      if (!r.empty()) r += ' ';
      r += s;
    }
    return r;
  }
};
