#!/usr/bin/env bash
# The test suite: installs what is missing, builds the default (RelWithDebInfo) and the
# ASan+UBSan presets, and runs every test under CTest in both.
# Usage: scripts/test.sh [preset...]   (default: "default asan")
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(default asan)
jobs=$(nproc)
for p in "${presets[@]}"; do
  echo "=== preset $p ==="
  # STACKLESS_WERROR=ON (set by .ci/run) makes warnings errors.
  cmake --preset "$p" ${STACKLESS_WERROR:+-DSTACKLESS_WERROR=$STACKLESS_WERROR} >/dev/null
  cmake --build --preset "$p" -j "$jobs"
  ctest --preset "$p" -j "$jobs"
done
