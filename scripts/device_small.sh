#!/usr/bin/env bash
# device_small.sh - ON the GPU machine, through scripts/device_run.sh: the pre-registered small-scale run
# (docs/results.md Part 1) in time-boxed calls that resume one another. The store is .hx-small/ in the tree
# (git-ignored, not carried), so a call on a still-warm machine finds every stage the last one finished; a
# fresh machine starts again from the carried world and tokenizer (.hxdev/small.tar.zst).
#   here:   scripts/device_prep.sh; hx run recipes/teacher_check.yaml -S params.scale=small -S '~stages.teacher'
#           -S '~stages.teacher_sft' -S '~stages.eval_teacher' --store T; hx export latest --store T -o .hxdev/small.tar.zst
#   there:  bash scripts/device_run.sh bash scripts/device_small.sh SECONDS [teacher|paper]...
# Each named recipe runs within what is left of SECONDS (killed at the end: hx resumes from partial/ next time);
# every call ends by exporting each finished recipe's eval entries under $OUT, then its report (time-boxed).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/hx-device-out}
mkdir -p "$OUT"
HX=build/hx
S=.hx-small
budget=${1:?usage: device_small.sh SECONDS [teacher|paper]...}
shift
[ $# -gt 0 ] || set -- teacher paper
t_end=$(( $(date +%s) + budget ))
if [ ! -d "$S/store" ]; then
    "$HX" import .hxdev/small.tar.zst --store "$S" >/dev/null || { echo "device_small: import failed" >&2; exit 1; }
    echo "# fresh store from .hxdev/small.tar.zst"
else
    echo "# store found: $(find "$S/store" -name manifest.json | wc -l) entries"
fi
for what in "$@"; do
    case $what in
    teacher) recipe=recipes/teacher_check.yaml; extra=() ;;
    paper) recipe=recipes/paper.yaml; extra=(--gpu-share "${SMALL_SHARE:-12}") ;;
    *) echo "device_small: unknown recipe $what" >&2; exit 2 ;;
    esac
    left=$(( t_end - $(date +%s) - 25 ))   # keep 25 s for the export and the report
    [ "$left" -gt 10 ] || { echo "# $what: no time left"; break; }
    echo "== $what: hx run $recipe (at most ${left}s) $(date -u +%H:%M:%S)"
    t0=$(date +%s)
    timeout -s INT -k 10 "$left" "$HX" run "$recipe" -S params.scale=small --device cuda "${extra[@]}" --store "$S" \
        >"$OUT/$what.log" 2>&1
    rc=$?
    echo "== $what: rc=$rc in $(( $(date +%s) - t0 ))s"
    grep -E '^(run |executed|cached|failed|skipped)|error|BUG' "$OUT/$what.log" | tail -60
    if [ $rc = 0 ]; then
        # the export first: it is what the results are made from (scripts/results.sh), and a report can take minutes
        "$HX" export latest --kinds eval --store "$S" -o "$OUT/$what.tar.zst" >/dev/null 2>&1
        ls -l "$OUT/$what.tar.zst"
        timeout $(( t_end - $(date +%s) > 5 ? t_end - $(date +%s) : 5 )) \
            "$HX" report latest --store "$S" --format md >"$OUT/$what.md" 2>&1
        head -c 6000 "$OUT/$what.md"
    else
        "$HX" plan "$recipe" -S params.scale=small --store "$S" 2>&1 | tail -25
        break
    fi
done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
