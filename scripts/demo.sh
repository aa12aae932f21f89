#!/usr/bin/env bash
# The main demo: installs what is missing, builds, and runs the copyfiles sample (the original
# stacklessfile demo: 10 tasklets copy a big file and 20 a small one, concurrently).
# Extra arguments go to the sample (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target copyfiles -j "$(nproc)"
exec build/default/samples/copyfiles "$@"
