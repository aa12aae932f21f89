#!/usr/bin/env bash
# The Windows build (docs/windows.md): cross-compiles the whole library, its tests and samples
# with MinGW-w64 into build/mingw, and runs the test suite under Wine through CTest
# (CMAKE_CROSSCOMPILING_EMULATOR). Installs what is missing (Debian/Ubuntu; root or sudo).
# Usage: scripts/windows.sh [ctest arguments...]
# STACKLESS_WERROR=ON makes warnings errors.
set -euo pipefail
cd "$(dirname "$0")/.."
# The posix flavour of the cross compiler (std::thread, std::mutex); the plain
# g++-mingw-w64-x86-64 would pull in the win32 flavour as well. libboost-dev: Boost's headers.
scripts/deps.sh g++-mingw-w64-x86-64-posix wine64 libboost-dev libboost-context-dev \
  libboost-test-dev
build=build/mingw
jobs=$(nproc)
wine=$(command -v wine64 || command -v wine || true)
[ -z "$wine" ] && [ -x /usr/lib/wine/wine64 ] && wine=/usr/lib/wine/wine64  # Debian 12
[ -n "$wine" ] || { echo "windows.sh: no wine64 loader found" >&2; exit 1; }
wineserver=$(command -v wineserver || true)
[ -z "$wineserver" ] && wineserver=$(dirname "$wine")/wineserver
echo "windows.sh: $(x86_64-w64-mingw32-g++-posix -dumpversion) (MinGW-w64), $("$wine" --version)"

# No -g: MinGW's DWARF debug information makes this the slowest build of CI (and nothing reads
# it under Wine). WINDOWS_CXX_FLAGS overrides (e.g. "-O2 -g -DNDEBUG" to debug a failure).
cmake -S . -B "$build" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CROSSCOMPILING_EMULATOR="$wine" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${WINDOWS_CXX_FLAGS:--O2 -DNDEBUG}" \
  -DSTACKLESS_BUILD_BENCH=OFF ${STACKLESS_WERROR:+-DSTACKLESS_WERROR=$STACKLESS_WERROR} >/dev/null
cmake --build "$build" -j "$jobs"

# A quiet, private Wine: no debug channels, no Mono/Gecko installers, the prefix in the build
# directory, booted once; a persistent wineserver keeps each test's start at ~0.1 s, not ~4 s.
export WINEPREFIX=$PWD/$build/wine-prefix
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "windows.sh: booting the Wine prefix $WINEPREFIX"
  "$wine" wineboot -i >/dev/null 2>&1 || true  # its status is not meaningful; the prefix is
  "$wineserver" -w  # the registry files are written when the server exits
  [ -f "$WINEPREFIX/system.reg" ] || { echo "windows.sh: wineboot failed" >&2; exit 1; }
fi
"$wineserver" -p 2>/dev/null || true  # fails when one already runs for this prefix
trap '"$wineserver" -k 2>/dev/null || true' EXIT
# The first program of a wineserver session starts Wine's services (services.exe,
# winedevice.exe...), which inherit its stdout and outlive it: under CTest that first test would
# "time out" waiting for its output pipe to close. Start them here instead.
"$wine" cmd.exe /c exit 0 </dev/null >/dev/null 2>&1 || true
ctest --test-dir "$build" -j "$jobs" --output-on-failure "$@"
