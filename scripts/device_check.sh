#!/usr/bin/env bash
# device_check.sh - ON the GPU machine, through scripts/device_run.sh: one device call that checks and measures what
# changed, each phase time-boxed so one stuck phase cannot eat the call, every log under $OUT (returned).
#   bash scripts/device_run.sh bash scripts/device_check.sh [PHASE[:SECONDS]]...
# Phases (default: ops kda_dims stream model teacher gen):
#   ops       cuda_ops of the KDA shapes and the inference ops (every (K, V) in {32,64,128}^2, frozen_mm, argmax, ...)
#   kda_dims  bench: the KDA core at the small shape per head dim, chunk-parallel and sequential
#   stream    cuda_stream: continuous batching with frozen bf16 weights, 1/7/64 slots == alone
#   model     cuda_model: whole models against the CPU (hybrids at head dims 64 and 32)
#   teacher   recipes/teacher_check.yaml at scale small on cuda (data + tokenizer carried in .hxdev/small.tar.zst),
#             then its report and an export of the eval entries to $OUT
#   gen       the generation table, fast points (GEN_BENCH_FAST=1)
#   cuda      the whole CUDA suite (tests/run.sh cuda)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/hx-device-out}
mkdir -p "$OUT"
[ $# -gt 0 ] || set -- ops:150 kda_dims:40 stream:90 model:90 teacher:300 gen:200
export HX=$PWD/build/hx TOP=$PWD
t_all=$(date +%s)

run_phase() { # name seconds
    local name=$1 secs=$2 t0 rc
    t0=$(date +%s)
    echo "== $name (at most ${secs}s) $(date -u +%H:%M:%S)"
    timeout --kill-after=5 "$secs" bash -c "$(phase_cmd "$name")" >"$OUT/$name.log" 2>&1
    rc=$?
    echo "== $name: rc=$rc in $(( $(date +%s) - t0 ))s"
    grep -E '^(FAIL|ok|RESULT|#|cuda_|run |decode|prefill|eval|  kda|kda)|failed|checks' "$OUT/$name.log" | tail -40
}

phase_cmd() {
    case $1 in
    ops) echo 'for o in kda frozen_mm argmax add_rmsnorm rope_cache matmul rope rmsnorm; do build/tests/cuda_ops $o || exit 1; done' ;;
    kda_dims) echo 'scripts/bench_cuda.sh kda_dims' ;;
    stream) echo 'build/tests/cuda_stream' ;;
    model) echo 'build/tests/cuda_model' ;;
    teacher) echo 'S=/tmp/hx-small; rm -rf $S; build/hx import .hxdev/small.tar.zst --store $S >/dev/null &&
        build/hx run recipes/teacher_check.yaml -S params.scale=small --device cuda --store $S &&
        build/hx report latest --store $S --format json > '"$OUT"'/teacher_report.json;
        build/hx report latest --store $S;
        build/hx export latest --kinds eval --store $S -o '"$OUT"'/teacher_small.tar.zst' ;;
    gen) echo 'GEN_POINTS=1x4096,64x1024 GEN_BENCH_FAST=1 scripts/bench_cuda.sh gen' ;;
    cuda) echo 'bash tests/run.sh cuda' ;;
    *) echo "echo unknown phase $1; exit 2" ;;
    esac
}

for p in "$@"; do
    run_phase "${p%%:*}" "${p#*:}"
done
echo "== all phases: $(( $(date +%s) - t_all ))s"
