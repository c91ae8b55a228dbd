#!/usr/bin/env bash
# bench_cuda.sh - `make bench-cuda`: hx's CUDA ops and the PyTorch/fla references on the same card, as one ratio table.
# Usage: scripts/bench_cuda.sh [kda|kda_dims|attn|dense|train|prefill|hybrid|all]   (FLA_SRC: the flash-linear-attention python package dir)
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=${BENCH_OUT:-build/bench-cuda}
mkdir -p "$out"
fla=${FLA_SRC:-third_party/src/fla-src}
# the device tool's carry limit: fla may travel packed as .hxdev/fla-src.tar.xz (scripts/device_prep.sh makes it)
if [ ! -d "$fla" ] && [ -f .hxdev/fla-src.tar.xz ]; then
    mkdir -p /tmp/hx-fla && tar xJf .hxdev/fla-src.tar.xz -C /tmp/hx-fla && fla=/tmp/hx-fla/fla-src
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/# card: /'
echo "# hx CUDA ops"
case $what in train|prefill|hybrid|kda_dims) : >"$out/hx.txt" ;; *) build/bench_cuda "$what" | tee "$out/hx.txt" ;; esac
# the KDA core per head dim at the small scale's shape, chunk-parallel against sequential kernels (hx only)
if [[ $what == all || $what == kda || $what == kda_dims ]]; then
    build/bench_cuda kda_dims | tee -a "$out/hx.txt"
    HX_CUDA_KDA_SEQ=1 build/bench_cuda kda_dims | tee -a "$out/hx.txt"
    echo "# KDA per head dim: sequential ms / chunk-parallel ms"
    awk '$1 == "RESULT" && $2 ~ /_K[0-9]+(_seq)?$/ { t[$2] = $3 }
         END { for (n in t) if (n !~ /_seq$/ && (n "_seq") in t && t[n] > 0)
                   printf "%-34s %10.3f %10.3f %8.2fx\n", n, t[n "_seq"], t[n], t[n "_seq"] / t[n] }' "$out/hx.txt" | sort
fi
# the whole model through the engine (Qwen3-0.6B shape, random weights): training step and prefill
cfg=tests/cuda/qwen3_0.6b.json
if [[ $what == all || $what == train ]]; then
    build/hx bench train --config $cfg --device cuda --batch 8 --seq 2048 --steps 3 |
        awk '{print} /^train / {printf "RESULT train_step_qwen3_0.6B_B8_T2048 %s\n", $5}' | tee -a "$out/hx.txt"
    # activation recomputation: the memory it saves and the time it costs (hx only)
    build/hx bench train --config $cfg --device cuda --batch 8 --seq 2048 --steps 3 --recompute |
        awk '{print} /^train / {printf "RESULT train_step_recompute_qwen3_0.6B_B8_T2048 %s\n", $5}' | tee -a "$out/hx.txt"
fi
if [[ $what == all || $what == prefill ]]; then
    for T in 4096 16384 32768 65536 131072; do
        build/hx bench infer --config $cfg --device cuda --batch 1 --seq $T --new 2 --steps 1 |
            awk -v T=$T '/^prefill / {print; printf "RESULT prefill_qwen3_0.6B_T%d %s\n", T, $5}' | tee -a "$out/hx.txt"
    done
fi
# the same shape converted to Hybrid-KDA (7 attention + 21 KDA layers, tests/cuda/hybrid_0.6b.json): hx only,
# no reference (compare with the qwen3 rows of the same T: the speed-up the conversion is for)
if [[ $what == all || $what == hybrid ]]; then
    for T in 4096 32768 131072; do
        build/hx bench infer --config tests/cuda/hybrid_0.6b.json --device cuda --batch 1 --seq $T --new 9 --steps 1 |
            awk -v T=$T '/^prefill / {print; printf "RESULT prefill_hybrid_0.6B_T%d %s\n", T, $5}
                         /^decode / {print; printf "RESULT decode_step_hybrid_0.6B_T%d %s\n", T, $9}' | tee -a "$out/hx.txt"
        build/hx bench infer --config $cfg --device cuda --batch 1 --seq $T --new 9 --steps 1 |
            awk -v T=$T '/^decode / {print; printf "RESULT decode_step_qwen3_0.6B_T%d %s\n", T, $9}' | tee -a "$out/hx.txt"
    done
    # without recomputation the hybrid's step needs more than an 80 GB card holds (the message says so); with it fits
    for rc in "" --recompute; do
        build/hx bench train --config tests/cuda/hybrid_0.6b.json --device cuda --batch 8 --seq 2048 --steps 3 $rc 2>&1 |
            awk -v n="${rc:+_recompute}" '{print} /^train / {printf "RESULT train_step%s_hybrid_0.6B_B8_T2048 %s\n", n, $5}' |
            tee -a "$out/hx.txt"
    done
fi
echo "# references (torch, fla)"
refs=$what; [ "$what" = all ] && refs="kda attn dense train prefill"
[ "$what" = hybrid ] || [ "$what" = kda_dims ] && refs=""
# Triton compiles and autotunes fla's kernels for minutes on a bare machine: keep its cache (and the autotuning
# results) between calls -- a carried .hxdev/triton-cache.tgz is unpacked first, and the cache is packed to
# $OUT (the device tool's output folder) afterwards; copy it back to .hxdev/ for the next call. (fla's whole
# cache came to more than the tool's 16 MiB per returned file in round 5, so it did not come back.)
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/hx-triton-cache} TRITON_CACHE_AUTOTUNING=1
[ -f .hxdev/triton-cache.tgz ] && mkdir -p "$TRITON_CACHE_DIR" && tar xzf .hxdev/triton-cache.tgz -C "$TRITON_CACHE_DIR"
if [ -n "$refs" ]; then
    PYTHONPATH="$fla${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 python3 tests/reference/bench_torch.py $refs | tee "$out/ref.txt"
    [ -n "${OUT:-}" ] && [ -d "$TRITON_CACHE_DIR" ] && tar czf "$OUT/triton-cache.tgz" -C "$TRITON_CACHE_DIR" .
else : >"$out/ref.txt"; fi
echo
printf '%-34s %12s %12s %10s\n' measurement "hx ms" "ref ms" "ref/hx"
awk '$1 == "RESULT" { if (FILENAME ~ /hx.txt$/) hx[$2] = $3; else ref[$2] = $3; names[$2] = 1 }
     END { for (n in names) {
             h = (n in hx) ? sprintf("%12.3f", hx[n]) : sprintf("%12s", "-");
             r = (n in ref) ? sprintf("%12.3f", ref[n]) : sprintf("%12s", "-");
             x = (n in hx && n in ref && hx[n] > 0) ? sprintf("%10.2f", ref[n] / hx[n]) : sprintf("%10s", "-");
             printf "%-34s %s %s %s\n", n, h, r, x } }' "$out/hx.txt" "$out/ref.txt" | sort
