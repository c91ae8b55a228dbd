#!/usr/bin/env bash
# kda_variants.sh - the KDA op tests (cuda_ops kda) again on the CUDA paths that the defaults do not take:
# HX_KDA_SAVE=0 (the backward recomputes Aqk, A, (I+L)^-1), HX_KDA_VT=16 and 32 (both state-pass tile widths),
# HX_CUDA_KDA_SEQ=1 (the sequential kernels at the head dims kda_chunk.cu takes: 32, 64, 128).
set -euo pipefail
: "${TOP:?}"
cd "$TOP"
for v in HX_KDA_SAVE=0 HX_KDA_VT=16 HX_KDA_VT=32 HX_CUDA_KDA_SEQ=1; do
    echo "== $v"
    env "$v" build/tests/cuda_ops kda | tee /tmp/hx-kda-variant.log | grep -v '^ok'
    grep -q ', 0 failed' /tmp/hx-kda-variant.log || { echo "FAIL: cuda_ops kda with $v"; exit 1; }
done
