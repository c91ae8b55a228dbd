#!/usr/bin/env bash
# device_verify.sh - ON the GPU machine, one device call: `make test-cuda` (tests/run.sh cuda) and then the
# bench-cuda tables, in the order that matters if the call's time runs out (fla's Triton autotuning last).
# Logs go to $OUT (the device tool's output folder): test-cuda.log, test-logs.tgz, bench.log, triton-cache.tgz.
# Usage (device tool, carry [".hxdev"]): bash scripts/device_verify.sh [test] [train prefill hybrid attn dense kda]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/hx-verify}
mkdir -p "$out"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(test train prefill hybrid attn dense kda)
for p in "${parts[@]}"; do
    if [ "$p" = test ]; then
        bash scripts/device_run.sh bash tests/run.sh cuda 2>&1 | tee "$out/test-cuda.log"
        tar czf "$out/test-logs.tgz" build/test-logs 2>/dev/null
    else
        BENCH_OUT=/tmp/hx-bench-$p bash scripts/device_run.sh bash scripts/bench_cuda.sh "$p" 2>&1 | tee -a "$out/bench.log"
    fi
done
