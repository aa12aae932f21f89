#!/usr/bin/env bash
# The core-file half of the gdb script test: runs gdb_target until it aborts with a core dump,
# then runs stackless-list and stackless-bt on the core. Exits 77 (CTest: skipped) when this
# machine can't produce a core in the working directory (core_pattern piped to a handler such as
# systemd-coredump or apport, or to another directory, or a hard core limit of 0).
# Usage: run_core_test.sh GDB SCRIPT TARGET WORKDIR
set -u
gdb=$1 script=$2 target=$3 work=$4
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo "?")
case "$pattern" in
  "|"*) echo "SKIP: kernel.core_pattern pipes cores to a handler ($pattern)"; exit 77 ;;
  /*) echo "SKIP: kernel.core_pattern writes cores elsewhere ($pattern)"; exit 77 ;;
esac
if ! ulimit -c unlimited 2>/dev/null; then
  ulimit -c "$(ulimit -H -c)" 2>/dev/null
fi
if [ "$(ulimit -c)" = 0 ]; then echo "SKIP: core dumps disabled (ulimit -c is 0)"; exit 77; fi
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$target" >target.out 2>&1
core=$(ls -t core* 2>/dev/null | head -n 1)
if [ -z "$core" ]; then
  echo "SKIP: no core file in $work (core_pattern '$pattern')"
  exit 77
fi
"$gdb" -q -batch -nx -iex 'set debuginfod enabled off' -x "$script" \
  -ex stackless-list -ex 'stackless-bt 1' -ex 'stackless-bt 3' "$target" "$core" >gdb.out 2>&1
cat gdb.out
fail=0
check() {
  if ! grep -Eq "$1" gdb.out; then echo "MISSING: $1"; fail=1; fi
}
check '^1 +producer +blocked +sending on channel_core 0x'
check '^2 +consumer +blocked +receiving on channel_core 0x'
check '^3 +napper +paused '
check '^4 +worker +runnable \(not started\)'
check '^5 +sleeper +paused \(not started\)'
check '^0 +main +current \[main\]'
check "^tasklet 1 'producer':"
check ' in .*producer_loop at .*gdb_target.cpp'
check ' in .*napper_body at .*gdb_target.cpp'
if grep -q 'Python Exception\|Error occurred in Python' gdb.out; then echo "gdb Python error"; fail=1; fi
rm -f "$core"
[ $fail = 0 ] && echo "gdb core test: OK"
exit $fail
