// io::open(): mode parsing (Python's open() modes) and the making of a file object; the OS part
// is os_open() (file_posix.cpp, file_win.cpp).
#include <fcntl.h>

#include <stdexcept>
#include <string>

#include "file_impl.hpp"

namespace stackless::io {
namespace detail {
namespace {

// refuse_embedded_nul(path): the OS would stop at the NUL and open another file ("a.txt\0.bak"
// would truncate "a.txt"): refused, as Python does ("embedded null byte").
void refuse_embedded_nul(const std::filesystem::path& path) {
  const auto& native = path.native();
  if (native.find(std::filesystem::path::value_type(0)) == native.npos) return;
  std::string shown;
  for (char c : path.string()) {
    if (c == '\0')
      shown += "\\0";
    else
      shown += c;
  }
  throw std::filesystem::filesystem_error(
      "stackless::io::open: embedded null byte in path \"" + shown + "\"",
      std::make_error_code(std::errc::invalid_argument));
}

}  // namespace

parsed_mode parse_mode(std::string_view mode) {
  auto bad = [&]() -> std::invalid_argument {
    return std::invalid_argument("stackless::io::open: invalid mode '" + std::string(mode) +
                                 "' (expected r, w, a or x, optionally with +, b or t, or "
                                 "U for reading)");
  };
  int kind = 0, plus = 0, b = 0, t = 0, u = 0;
  char base = 0;
  for (char c : mode) {
    switch (c) {
      case 'r':
      case 'w':
      case 'a':
      case 'x':
        ++kind;
        base = c;
        break;
      case '+':
        ++plus;
        break;
      case 'b':
        ++b;
        break;
      case 't':
        ++t;
        break;
      case 'U':
        ++u;
        break;
      default:
        throw bad();
    }
  }
  if (kind > 1 || plus > 1 || b > 1 || t > 1 || u > 1 || (b && t)) throw bad();
  if (u) {
    if (base == 0) base = 'r';
    if (base != 'r' || plus) throw bad();
  }
  if (base == 0) throw bad();
  parsed_mode m;
  m.universal = u != 0;
  switch (base) {
    case 'r':
      m.readable = true;
      break;
    case 'w':
      m.writable = true;
      m.flags = O_CREAT | O_TRUNC;
      break;
    case 'a':
      m.writable = true;
      m.append = true;
      m.flags = O_CREAT | O_APPEND;
      break;
    case 'x':
      m.writable = true;
      m.flags = O_CREAT | O_EXCL;
      break;
  }
  if (plus) m.readable = m.writable = true;
  m.flags |= (m.readable && m.writable) ? O_RDWR : (m.readable ? O_RDONLY : O_WRONLY);
  return m;
}

}  // namespace detail

using detail::file_impl;

file open(const std::filesystem::path& path, std::string_view mode, int buffering) {
  const detail::parsed_mode m = detail::parse_mode(mode);
  detail::refuse_embedded_nul(path);
  std::unique_ptr<file_impl, detail::impl_release> f(new file_impl);  // NOLINT: refcounted
  f->path = path;
  f->name = detail::display_name(path);
  f->mode = std::string(mode);
  f->readable = m.readable;
  f->writable = m.writable;
  f->append = m.append;
  f->universal = m.universal;
  const detail::os_opened o = detail::os_open(*f, m);
  const bool tty = o.tty;
  if (buffering < 0) {
    f->bufsize = detail::kDefaultBuffer;
    f->line_buffered = tty;
  } else if (buffering == 1) {
    f->bufsize = detail::kDefaultBuffer;
    f->line_buffered = true;
  } else {
    f->bufsize = static_cast<std::size_t>(buffering);
  }
  f->rcap = f->rsize = f->bufsize ? f->bufsize : 8192;
  f->rbuf = std::make_unique_for_overwrite<char[]>(f->rcap);
  if (f->append && !f->stream) f->pos = o.size;
  return file(std::move(f));
}

file open(std::string_view utf8_path, std::string_view mode, int buffering) {
  const std::u8string u8(utf8_path.begin(), utf8_path.end());
  file f = open(std::filesystem::path(u8), mode, buffering);
  f.impl_->name = std::string(utf8_path);
  return f;
}

}  // namespace stackless::io
