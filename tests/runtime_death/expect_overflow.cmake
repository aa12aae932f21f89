# Runs the overflow death test (-DEXE=... with -DARGS=..., a ;-list) and checks that it was killed
# by a signal (not a normal exit) and that stderr names the overflowing tasklet (-DNAME=...,
# deep-recursion by default). On Windows (-DWINDOWS=ON, run
# through -DEMULATOR, e.g. Wine) the process must end with STATUS_STACK_OVERFLOW instead.
if(NOT NAME)
  set(NAME deep-recursion)
endif()
execute_process(COMMAND ${EMULATOR} ${EXE} ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message(STATUS "exit: ${rc}")
message(STATUS "stderr: ${err}")
if(WINDOWS)
  # 0xC00000FD, as the 8-bit or the 32-bit exit status the emulator passes on.
  if(NOT rc MATCHES "^(3221225725|253|-1073741571)$")
    message(FATAL_ERROR "expected exit status 0xC00000FD (STATUS_STACK_OVERFLOW), got ${rc}")
  endif()
else()
  if(rc MATCHES "^[0-9]+$")
    message(FATAL_ERROR "expected death by signal, got exit code ${rc}")
  endif()
  if(NOT rc MATCHES "Segmentation fault|SIGSEGV|signal")
    message(FATAL_ERROR "expected SIGSEGV, got: ${rc}")
  endif()
endif()
if(NOT err MATCHES "stack overflow in tasklet [0-9]+ '${NAME}' \\(stack size [0-9]+ bytes\\)")
  message(FATAL_ERROR "stderr does not report the overflow with the tasklet's name")
endif()
