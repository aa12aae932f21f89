// <windows.h> (and winpthreads' <pthread.h>) for the runtime's Windows sources (NOMINMAX and
// WIN32_LEAN_AND_MEAN come from the build: stackless_build_flags); plus what overflow_win.cpp
// and scheduler_win.cpp use.
#pragma once

#ifndef _WIN32
#error "win32.hpp is for Windows builds only"
#endif
#include <pthread.h>
#include <windows.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
