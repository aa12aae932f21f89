#!/usr/bin/env bash
# Installs what stackless needs to build, test and benchmark on Debian/Ubuntu, if missing.
# Uses sudo only when not root. Safe to run repeatedly: it does nothing when all is there.
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config make
  libboost-context-dev libboost-test-dev libboost-fiber-dev
  liburing-dev
  valgrind)  # valgrind: valgrind/valgrind.h lets the runtime register tasklet stacks (memcheck lane)
# Optional extras requested by the caller (e.g. fio for I/O benchmarks): deps.sh fio
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
