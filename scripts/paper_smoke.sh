#!/usr/bin/env bash
# paper_smoke.sh - the paper-scale smoke run (issue 14 item 9): recipes/paper.yaml at scale=paper, every token budget
# cut to ~1M tokens, on one GPU with a random-init Qwen3-0.6B (tests/reference/qwen3_random.py).
#   here (the CPU machine, after make and scripts/device_prep.sh):  scripts/paper_smoke.sh prep
#     world + Qwen3 tokenizer -> .hxdev-paper/paper.tar.zst (7 MB), with hx and the .debs of .hxdev (not the CUDA test
#     binaries nor their store: the working tree and the carry must stay under 64 MiB)
#   there (device tool, carry [".hxdev-paper"]):  HXDEV=.hxdev-paper bash scripts/device_run.sh bash scripts/paper_smoke.sh run
#     imports them, writes models/Qwen3-0.6B, runs every stage on cuda and prints seconds and peak memory per stage
#     (PAPER_SHARE=N: --gpu-share N, default 2; PAPER_ARMS: the arms, default [baseline,arch_gdn]).
# `scripts/paper_smoke.sh sets` prints the overrides (one place: SETS below), for `hx plan` or a run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
HX=${HX:-build/hx}
ARMS=${PAPER_ARMS:-[baseline,arch_gdn]}
# scales.paper with every budget ~1M tokens (16384 tokens per step at batch 8 x 2048: ~61 steps), warmups to 10
# steps, eval to 50 items per task and split; the tokenizer from the pinned Qwen3 copy (made on the CPU machine).
SETS=(-S params.scale=paper -S "axes.arm=$ARMS" -S scales.paper.tokenizer.path=qwen3
      -S scales.paper.teacher_sft.steps=60
      -S scales.paper.align.tokens=1000000 -S scales.paper.align.warmup=10
      -S scales.paper.align_block.tokens=1000000 -S scales.paper.align_block.warmup=10
      -S scales.paper.distill.tokens=1000000 -S scales.paper.distill.durations.short=200000
      -S scales.paper.distill.durations.base=1000000 -S scales.paper.distill.durations.long=4000000
      -S scales.paper.distill.warmup=10
      -S scales.paper.finetune.tokens=1000000 -S scales.paper.finetune.warmup=10
      -S scales.paper.eval.limit=50)
PACK=.hxdev-paper
# in the tree but not in the carry (a carried path is replaced on each call): a second call on a still-warm machine
# finds the stages the first one finished, and the model
STORE=${PAPER_STORE:-.hx-paper}
MODEL=models/Qwen3-0.6B                     # scales.paper.teacher.path (relative to recipes/)

case ${1:-} in
sets)
    printf '%q ' "${SETS[@]}"; echo ;;
prep)
    # only world and tok: every later stage removed (-S ~stages.X), so their keys are those of the full recipe
    drop=()
    for s in teacher teacher_sft student align align_block distill finetune eval_teacher eval; do drop+=(-S "~stages.$s"); done
    T=$(mktemp -d /tmp/hx-paper-prep.XXXXXX)
    trap 'rm -rf "$T"' EXIT
    "$HX" run recipes/paper.yaml "${SETS[@]}" "${drop[@]}" --store "$T" --device cpu
    [ -d .hxdev/debs ] || { echo "paper_smoke: .hxdev/debs missing: run scripts/device_prep.sh first" >&2; exit 1; }
    rm -rf "$PACK"
    mkdir -p "$PACK/build"
    cp -r .hxdev/debs "$PACK/debs"
    cp -f build/hx "$PACK/build/hx" && strip --strip-debug "$PACK/build/hx"
    "$HX" export latest -o "$PACK/paper.tar.zst" --store "$T"
    du -sh "$PACK" ;;
run)
    [ -f "$PACK/paper.tar.zst" ] || { echo "paper_smoke: $PACK/paper.tar.zst missing: run 'scripts/paper_smoke.sh prep' here first" >&2; exit 1; }
    t0=$(date +%s)
    "$HX" import "$PACK/paper.tar.zst" --store "$STORE" >/dev/null
    if [ ! -f "$MODEL/model.safetensors" ]; then
        tok=$(find "$STORE/store" -name tokenizer.json | head -n1)
        [ -n "$tok" ] || { echo "paper_smoke: no tokenizer.json in the imported store" >&2; exit 1; }
        python3 tests/reference/qwen3_random.py "$MODEL" --tokenizer "$tok"
    fi
    echo "# prepared in $(( $(date +%s) - t0 )) s"
    mem=$(mktemp /tmp/hx-paper-mem.XXXXXX)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$mem" 2>/dev/null &
    smi=$!
    rc=0
    "$HX" run recipes/paper.yaml "${SETS[@]}" --device cuda --gpu-share "${PAPER_SHARE:-2}" --recompute \
        --store "$STORE" 2>&1 | tee "${OUT:-/tmp}/paper_run.log" || rc=$?
    kill "$smi" 2>/dev/null || true
    echo "# hx run ended with status $rc after $(( $(date +%s) - t0 )) s in all"
    echo "# most device memory in use (nvidia-smi, every 0.5 s): $(sort -n "$mem" | tail -n1) MiB"
    # seconds and peak backend memory of every stage of the last run (the manifests' metrics.peak_mem_bytes)
    python3 - "$STORE" <<'PY' | tee "${OUT:-/tmp}/paper_stages.txt"
import json, os, sys
store = sys.argv[1]
run = json.load(open(os.path.join(store, "runs", "latest", "run.json")))
print(f"{'stage':<14} {'axes':<26} {'state':<9} {'seconds':>8} {'device':<8} {'peak GiB':>9} {'tok/s':>9}")
for s in run["stages"]:
    mf = os.path.join(store, "store", s["key"][:2], s["key"], "manifest.json")
    m = json.load(open(mf)).get("metrics", {}) if os.path.exists(mf) else {}
    peak = m.get("peak_mem_bytes")
    axes = ",".join(f"{k}={v}" for k, v in s["axes"].items())
    print(f"{s['stage']:<14} {axes:<26} {s['state']:<9} {s['seconds']:8.1f} {s.get('device', ''):<8} "
          f"{peak / 2**30 if peak else 0:9.2f} {m.get('tokens_per_s', 0):9.0f}" + (f"  {s['error']}" if s.get("error") else ""))
print(f"run {run['run_id']}: {run['status']} in {run['seconds']:.0f} s")
PY
    exit $rc ;;
*)
    echo "usage: scripts/paper_smoke.sh prep|run|sets" >&2; exit 2 ;;
esac
