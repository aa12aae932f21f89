// io::file's OS calls on Windows (docs/windows.md). Files are opened overlapped for the IOCP
// backend and wrapped in C runtime descriptors (the open itself is backend_iocp.cpp's, on a pool
// thread). (POSIX: file_posix.cpp.)
#include <io.h>
#include <windows.h>

#include <cerrno>

#include "file_impl.hpp"

namespace stackless::io::detail {
namespace {

HANDLE handle_of(const file_impl& f) noexcept {
  return reinterpret_cast<HANDLE>(::_get_osfhandle(f.fd));
}
std::error_code last_error() noexcept {
  return {static_cast<int>(::GetLastError()), std::system_category()};
}

}  // namespace

std::error_code backend_error(long r) {
  return {static_cast<int>(-r), std::system_category()};
}

bool retry(long) noexcept {
  return false;
}

std::string display_name(const std::filesystem::path& path) {
  const std::u8string u8 = path.u8string();  // UTF-8, as narrow paths are given
  return std::string(u8.begin(), u8.end());
}

std::int64_t file_size(const file_impl& f) {
  LARGE_INTEGER size{};
  if (!::GetFileSizeEx(handle_of(f), &size)) fail(f, "GetFileSizeEx", last_error());
  return size.QuadPart;
}

void prefault(char*, std::size_t) noexcept {}

os_opened os_open(file_impl& f, const parsed_mode& m) {
  // Through the poller (CreateFileW on a pool thread, backend_iocp.cpp): a slow share or a cold
  // cache blocks only this tasklet. The path is UTF-16 already (std::filesystem::path is
  // wchar_t-based on Windows; a narrow path given to open() was converted from UTF-8).
  const outcome o = submit_open(f.path.c_str(), m.flags, 0);  // closed if killed
  o.rethrow_if_interrupted();
  if (o.result < 0) {
    // A directory is ERROR_ACCESS_DENIED (or ERROR_PATH_NOT_FOUND under Wine); POSIX says EISDIR.
    const DWORD attrs = ::GetFileAttributesW(f.path.c_str());
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
      fail(f, "open with mode '" + f.mode + "'", EISDIR);
    fail(f, "open with mode '" + f.mode + "'", backend_error(o.result));
  }
  f.fd = static_cast<int>(o.result);
  f.stream = ::GetFileType(handle_of(f)) != FILE_TYPE_DISK;
  os_opened r;
  r.tty = ::isatty(f.fd) == 1;
  if (m.append && !f.stream) r.size = file_size(f);
  return r;
}

}  // namespace stackless::io::detail
