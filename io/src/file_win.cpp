// io::file's OS calls on Windows (docs/windows.md): files are opened overlapped for the IOCP
// backend and wrapped in C runtime descriptors. (POSIX: file_posix.cpp.)
#include <fcntl.h>
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

// open_windows(f, m): CreateFileW with FILE_FLAG_OVERLAPPED (the IOCP backend needs it), wrapped
// in a C runtime descriptor (fileno(), and _get_osfhandle() for the backend). Sets f.fd and
// f.stream. The path is UTF-16 already (std::filesystem::path is wchar_t-based on Windows; a
// narrow path given to open() was converted from UTF-8 by std::filesystem). Sharing is
// POSIX-like: other opens, renames and deletes are allowed while the file is open.
int open_windows(file_impl& f, const parsed_mode& m) {
  const std::string what = "open with mode '" + f.mode + "'";
  DWORD access = 0;
  if (m.readable) access |= GENERIC_READ;
  // Append: FILE_APPEND_DATA without FILE_WRITE_DATA, and writes at FILE_WRITE_TO_END_OF_FILE.
  if (m.writable) access |= m.append ? (FILE_APPEND_DATA | SYNCHRONIZE) : GENERIC_WRITE;
  DWORD disposition = OPEN_EXISTING;
  if (m.flags & O_TRUNC)
    disposition = CREATE_ALWAYS;
  else if (m.flags & O_EXCL)
    disposition = CREATE_NEW;
  else if (m.flags & O_CREAT)
    disposition = OPEN_ALWAYS;
  HANDLE h =
      ::CreateFileW(f.path.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    nullptr, disposition, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const std::error_code ec = last_error();
    // A directory is ERROR_ACCESS_DENIED (or ERROR_PATH_NOT_FOUND under Wine); POSIX says EISDIR.
    const DWORD attrs = ::GetFileAttributesW(f.path.c_str());
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
      fail(f, what, EISDIR);
    fail(f, what, ec);
  }
  const DWORD type = ::GetFileType(h);
  int crt_flags = m.readable && !m.writable ? _O_RDONLY : (m.readable ? _O_RDWR : _O_WRONLY);
  if (m.append) crt_flags |= _O_APPEND;
  const int fd = ::_open_osfhandle(reinterpret_cast<intptr_t>(h), crt_flags | _O_BINARY);
  if (fd < 0) {
    const int err = errno;
    ::CloseHandle(h);
    fail(f, what, err);
  }
  f.fd = fd;
  f.stream = type != FILE_TYPE_DISK;
  return fd;
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
  const int fd = open_windows(f, m);
  os_opened r;
  r.tty = ::isatty(fd) == 1;
  if (m.append && !f.stream) r.size = file_size(f);
  return r;
}

void os_truncate(file_impl& f, std::int64_t size) {
  FILE_END_OF_FILE_INFO eof{};
  eof.EndOfFile.QuadPart = size;
  if (!::SetFileInformationByHandle(handle_of(f), FileEndOfFileInfo, &eof, sizeof eof))
    fail(f, "truncate to " + std::to_string(size), last_error());
}

void os_close(file_impl& f, std::exception_ptr&, std::exception_ptr&) {
  ::close(f.fd);
}

}  // namespace stackless::io::detail
