# Cross-compiling for 64-bit Windows with MinGW-w64 from Debian/Ubuntu (docs/windows.md).
# Packages: g++-mingw-w64-x86-64-posix (the posix thread model: std::thread and std::mutex),
# and wine64 to run the tests (scripts/windows.sh).
#   cmake -S . -B build/mingw -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
# Boost is header-only here (Debian ships no MinGW Boost libraries): see STACKLESS_BOOST_ROOT in
# the top-level CMakeLists.txt. Tests run under CMAKE_CROSSCOMPILING_EMULATOR (Wine's loader,
# /usr/lib/wine/wine64 on Debian 12, or `wine64`/`wine` from PATH).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(triple x86_64-w64-mingw32)
find_program(CMAKE_C_COMPILER NAMES ${triple}-gcc-posix ${triple}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${triple}-g++-posix ${triple}-g++ REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${triple}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Static executables: no libstdc++/libgcc/libwinpthread DLLs to find at run time.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  find_program(STACKLESS_WINE NAMES wine64 wine PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
  if(STACKLESS_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${STACKLESS_WINE})
  endif()
endif()
