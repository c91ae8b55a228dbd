#!/usr/bin/env bash
# device_run.sh - ON the GPU machine: unpacks .hxdev/debs under /tmp/hxroot, puts the carried binaries in build/,
# sets LD_LIBRARY_PATH and runs a command (default: the CUDA test suite, tests/run.sh cuda).
# Usage (device tool, carry [".hxdev"]): bash scripts/device_run.sh [COMMAND...]
#   HXDEV=DIR: the packed directory is DIR instead of .hxdev (scripts/paper_smoke.sh prep packs .hxdev-paper)
#   e.g. bash scripts/device_run.sh bash tests/run.sh cuda      bash scripts/device_run.sh scripts/bench_cuda.sh kda
set -euo pipefail
cd "$(dirname "$0")/.."
dev=${HXDEV:-.hxdev}
# device_prep.sh packs the binaries as bins.tar.xz (the carry limit): unpack them first
if [ ! -d "$dev/build" ] && [ -f "$dev/bins.tar.xz" ]; then tar xJf "$dev/bins.tar.xz" -C "$dev"; fi
[ -d "$dev/build" ] || { echo "device_run: $dev/build missing: run scripts/device_prep.sh here and carry $dev" >&2; exit 1; }
root=/tmp/hxroot
mkdir -p "$root"
for f in "$dev"/debs/*.deb; do [ -e "$f" ] && dpkg -x "$f" "$root"; done
# OpenBLAS' soname is an update-alternatives link on Debian: point at the OpenMP build's directory.
libs=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu/openblas-openmp
export LD_LIBRARY_PATH=$libs:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p build/tests
cp -f "$dev/build/hx" build/hx
for b in "$dev"/build/tests/* "$dev/build/bench_cuda"; do
    [ -e "$b" ] || continue
    case $b in */tests/*) cp -f "$b" build/tests/ ;; *) cp -f "$b" build/ ;; esac
done
missing=$(ldd build/hx | grep 'not found' || true)
[ -z "$missing" ] || { echo "device_run: build/hx still lacks: $missing" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/# card: /'
[ $# -gt 0 ] || set -- bash tests/run.sh cuda
exec "$@"
