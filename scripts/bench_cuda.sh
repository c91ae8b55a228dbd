#!/usr/bin/env bash
# bench_cuda.sh - `make bench-cuda`: hx's CUDA ops and the PyTorch/fla references on the same card, as one ratio table.
# Usage: scripts/bench_cuda.sh [kda|kda_dims|attn|dense|train|prefill|hybrid|all|gen]   (FLA_SRC: the flash-linear-attention python package dir)
#   gen: the generation table alone (issue 15): decode step, TTFT, eval items/s of hx and transformers, ~6 min
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
# ---- the generation table (docs/cuda.md): hx with frozen weights (as the eval stage's models) against the
# weight-read limit (bf16 weights / the HBM bandwidth a copy reaches in this run) and transformers on the same card
if [[ $what == gen ]]; then
    g=$out/gen.txt
    : >"$g"
    build/bench_cuda hbm | tee -a "$g"
    # points: B=1 at 1K/4K/32K (128K with HX_GEN_128K=1), B=64 at 1K/4K (a 64 x 32K fp32 KV cache is ~480 GB)
    pts=${GEN_POINTS:-1x1024,1x4096,1x32768${HX_GEN_128K:+,1x131072},64x1024,64x4096}   # GEN_POINTS: fewer, for a short call
    for m in qwen3 hybrid; do
        t0=$(date +%s)
        build/hx bench infer --config tests/cuda/${m}_0.6b.json --device cuda --frozen --grid $pts --new 9 --steps 1 2>&1 |
            awk -v m=$m '{print}
                /^model:/ {printf "RESULT params_%s %s\n", m, $2}
                /^prefill / {B = $2; T = $4; sub(":", "", T); if (B == 1) printf "RESULT ttft_%s_T%d %s\n", m, T, $5}
                /^decode / {printf "RESULT decode_step_%s_B%d_T%d %s\n", m, B, T, $9}' | tee -a "$g"
        echo "  (hx bench infer $m: $(( $(date +%s) - t0 )) s)"
    done
    # the eval path: nn_generate_stream through 64 slots, 1,024 prompts of 40..80 tokens, exactly 32 new tokens
    build/hx bench eval --config tests/cuda/qwen3_0.6b.json --device cuda --frozen --items 1024 --seq 80 --new 32 \
        --batch 64 --steps 1 2>&1 |
        awk '{print} /continuous batching/ {for (i = 2; i <= NF; i++) if ($i == "items/s") printf "RESULT eval_items_per_s %s\n", $(i - 1)}' |
        tee -a "$g"
    PYTHONUNBUFFERED=1 python3 tests/reference/gen_bench.py 2>&1 | grep -v Warning | tee -a "$g"
    kda=$(grep -o '"kda"' tests/cuda/hybrid_0.6b.json | wc -l)
    echo
    awk -v kda="$kda" '$1 == "RESULT" {v[$2] = $3}
        END {
            bw = 2 * 2^30 / (v["hbm_copy_1GiB"] * 1e-3); # bytes/s
            printf "HBM copy bandwidth %.0f GB/s; limit = bytes a decode step must read / that bandwidth\n", bw / 1e9;
            printf "%-30s %9s %9s %9s %9s %9s %9s\n", "decode step (ms)", "hx", "tf", "tf/hx", "w-limit", "hx/w-lim", "w+kv-lim";
            srt = "sort -t\" \" -k1,1 -k2.3,2n -k3.3,3n"; # mawk has no asorti: rows go through sort(1)
            for (k in v) if (k ~ /^decode_step_/) {
                split(k, p, "_"); m = p[3]; B = substr(p[4], 2) + 0; T = substr(p[5], 2) + 0;
                la = m == "qwen3" ? 28 : 28 - kda; lk = m == "qwen3" ? 0 : kda;
                w = 2 * v["params_" m];                                  # bf16 weights, the tied lm_head once
                kv = B * T * la * 2 * 8 * 128 * 4 + B * lk * 16 * 128 * 128 * 4 * 2; # fp32 cache; KDA state r+w
                r = "ref_" k; sub("_0.6B", "", r); sub("qwen3", "qwen3_0.6B", r);
                tf = (r in v) ? sprintf("%9.3f", v[r]) : sprintf("%9s", "-");
                x = (r in v) ? sprintf("%9.2f", v[r] / v[k]) : sprintf("%9s", "-");
                printf "%-30s %9.3f %s %s %9.3f %9.1f %9.3f\n", m " B=" B " T=" T, v[k], tf, x, w / bw * 1e3,
                       v[k] / (w / bw * 1e3), (w + kv) / bw * 1e3 | srt }
            close(srt);
            printf "%-30s %9s %9s %9s\n", "TTFT (ms)", "hx", "tf", "tf/hx";
            for (k in v) if (k ~ /^ttft_/) {
                r = "ref_" k; sub("qwen3", "qwen3_0.6B", r);
                printf "%-30s %9.1f %s %s\n", k, v[k], (r in v) ? sprintf("%9.1f", v[r]) : sprintf("%9s", "-"),
                       (r in v) ? sprintf("%9.2f", v[r] / v[k]) : sprintf("%9s", "-") | "sort -V" }
            close("sort -V");
            printf "%-30s %9s %9s %9s\n", "eval items/s", "hx", "tf", "hx/tf";
            e = v["eval_items_per_s"]; re = v["ref_eval_items_per_s"];
            printf "%-30s %9.1f %9s %9s\n", "1024 x 40..80 tok, 32 new", e, (re > 0 ? sprintf("%9.1f", re) : "-"),
                   (re > 0 ? sprintf("%9.1f", e / re) : "-") }' "$g"
    exit 0
fi
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
