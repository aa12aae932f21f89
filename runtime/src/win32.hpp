// <windows.h> (and winpthreads' <pthread.h>) for the runtime's Windows sources, without the
// min/max macros and the rarely used parts; plus what scheduler_win.inc uses.
#pragma once

#ifndef _WIN32
#error "win32.hpp is for Windows builds only"
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <pthread.h>
#include <windows.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
