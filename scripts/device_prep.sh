#!/usr/bin/env bash
# device_prep.sh - here (the build machine): packs what the GPU machine needs to run hx into .hxdev/ (git-ignored).
# The GPU image lacks hx's shared libraries (libyaml, jansson, libarchive -> libxml2 -> libicu, OpenBLAS, ...).
# This downloads the Debian runtime packages that own them (`apt-get download`, compressed .deb files) and
# copies the built binaries; scripts/device_run.sh unpacks them there under /tmp/hxroot (never into /).
# Usage: scripts/device_prep.sh   then carry .hxdev with the device tool (`carry: [".hxdev"]`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.hxdev
[ -x build/hx ] || { echo "device_prep: build/hx missing; run make (with nvcc present) first" >&2; exit 1; }
mkdir -p "$out/debs" "$out/build/tests"

# The packages owning every shared library of the binaries, except glibc/libstdc++/libgcc (the image has
# them, newer) and CUDA's own (the image has /usr/local/cuda/lib64).
bins=(build/hx)
for b in build/tests/cuda_* build/bench_cuda; do [ -x "$b" ] && [[ $b != *.d ]] && bins+=("$b"); done
pkgs=$(for b in "${bins[@]}"; do ldd "$b"; done | awk '/=>/ && $3 ~ /^\// {print $3}' | sort -u |
    while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true; done |
    cut -d: -f1 | sort -u | grep -v -x -E 'libc6|libstdc\+\+6|libgcc-s1' || true)
[ -n "$pkgs" ] || { echo "device_prep: found no packages for the libraries of ${bins[*]}" >&2; exit 1; }
want=()
for p in $pkgs; do
    v=$(dpkg-query -W -f='${Version}' "$p:amd64" 2>/dev/null || dpkg-query -W -f='${Version}' "$p")
    want+=("$p=$v")
done
# keep only what is wanted now; fetch what is missing (the exact installed versions)
(cd "$out/debs" && for f in *.deb; do [ -e "$f" ] || continue
    keep=0; for w in "${want[@]}"; do [[ $f == "${w%%=*}"_* ]] && keep=1; done; [ $keep = 1 ] || rm -f "$f"; done)
need=()
for w in "${want[@]}"; do ls "$out/debs/${w%%=*}"_*.deb >/dev/null 2>&1 || need+=("$w"); done
if [ ${#need[@]} -gt 0 ]; then
    echo "device_prep: apt-get download ${need[*]}"
    # the installed version when the archive still has it, else the archive's current one (same soname)
    (cd "$out/debs" && for w in "${need[@]}"; do
        apt-get download -q "$w" >/dev/null 2>&1 || apt-get download -q "${w%%=*}" >/dev/null 2>&1 || true
    done)
fi
for w in "${want[@]}"; do
    ls "$out/debs/${w%%=*}"_*.deb >/dev/null 2>&1 || { echo "device_prep: could not download ${w}" >&2; exit 1; }
done

# the binaries: hx, the CUDA test drivers, the bench driver
cp -f build/hx "$out/build/hx"
for b in "${bins[@]:1}"; do
    case $b in build/tests/*) cp -f "$b" "$out/build/tests/" ;; *) cp -f "$b" "$out/build/" ;; esac
done
# the CPU half of tests/cuda/chain.yaml (data + tokenizer; their third_party inputs are not carried)
rm -rf "$out/store"
build/hx run tests/cuda/chain_prep.yaml --store "$out/store" >/dev/null
build/hx run tests/cuda/pick_prep.yaml --store "$out/store" >/dev/null   # device_pick.sh's data and tokenizer
strip --strip-debug "$out/build/hx" "$out"/build/tests/* "$out"/build/bench_cuda 2>/dev/null || true
# fla (the KDA reference of make bench-cuda), packed: the carry limit counts bytes as they lie
if [ -d third_party/src/fla-src ]; then
    tar cJf "$out/fla-src.tar.xz" -C third_party/src fla-src
fi
# the binaries travel xz-packed (38 MB -> ~5 MB): the carry limit counts bytes as they lie; device_run.sh unpacks
rm -f "$out/bins.tar.xz"
tar cJf "$out/bins.tar.xz" -C "$out" build && rm -rf "$out/build"
du -sh "$out" | awk '{print "device_prep: " $2 " is " $1 " (the carry limit is 64 MiB with the working tree)"}'
ls "$out/debs"
