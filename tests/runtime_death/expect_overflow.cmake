# Runs the overflow death test (-DEXE=...) and checks that it was killed by a signal (not a
# normal exit) and that stderr names the overflowing tasklet.
execute_process(COMMAND ${EXE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "exit: ${rc}")
message(STATUS "stderr: ${err}")
if(rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "expected death by signal, got exit code ${rc}")
endif()
if(NOT rc MATCHES "Segmentation fault|SIGSEGV|signal")
  message(FATAL_ERROR "expected SIGSEGV, got: ${rc}")
endif()
if(NOT err MATCHES "stack overflow in tasklet [0-9]+ 'deep-recursion' \\(stack size [0-9]+ bytes\\)")
  message(FATAL_ERROR "stderr does not report the overflow with the tasklet's name")
endif()
