#!/usr/bin/env bash
# results.sh - the committed results of docs/results.md: each results/<name>/ holds run.tar.zst (an `hx export
# --kinds eval` of a run: its run record and eval entries, no checkpoints) and README.md (command, card, date).
# `make results` re-imports every archive into a temporary store, regenerates the report (tables and findings) and
# checks it against the block of docs/results.md between `<!-- results:<name> begin -->` and `<!-- results:<name> end -->`.
# Usage: scripts/results.sh check [NAME...]      regenerate and compare (exit 1 on a difference)
#        scripts/results.sh write [NAME...]      regenerate and write the blocks into docs/results.md
#        scripts/results.sh export RUN NAME [--store DIR]   make results/NAME/run.tar.zst from a run of the store
set -euo pipefail
cd "$(dirname "$0")/.."
HX=${HX:-$PWD/build/hx}
doc=docs/results.md
mode=${1:-check}; shift || true

# The report of results/NAME's run as the markdown block of docs/results.md (headings moved two levels down).
render() {
    local name=$1 tmp
    tmp=$(mktemp -d /tmp/hx-results-XXXXXX)
    "$HX" import "results/$name/run.tar.zst" --store "$tmp/store" --json >/dev/null
    local id
    id=$(ls "$tmp/store/runs" | grep -v '^latest$' | head -1)
    "$HX" report "$id" --store "$tmp/store" --format md | sed -E 's/^(#+) /\1## /'
    rm -rf "$tmp"
}

# The block of NAME in docs/results.md, without its marker lines.
block() { awk -v b="<!-- results:$1 begin -->" -v e="<!-- results:$1 end -->" '$0==e{p=0} p{print} $0==b{p=1}' "$doc"; }

names() {
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; return; fi
    for d in results/*/; do [ -f "$d/run.tar.zst" ] && basename "$d"; done
}

case $mode in
export)
    [ $# -ge 2 ] || { echo "usage: scripts/results.sh export RUN NAME [--store DIR]" >&2; exit 2; }
    run=$1 name=$2; shift 2
    mkdir -p "results/$name"
    "$HX" export "$run" --kinds eval -o "results/$name/run.tar.zst" "$@"
    ls -l "results/$name/run.tar.zst"
    ;;
check)
    bad=0 n=0
    for name in $(names "$@"); do
        n=$((n + 1))
        grep -qx "<!-- results:$name begin -->" "$doc" || { echo "results: $doc has no block for results/$name (scripts/results.sh write $name)"; bad=1; continue; }
        # compared as text up to trailing newlines (a shell substitution drops them on both sides)
        have=$(block "$name") want=$(render "$name")
        if [ "$have" = "$want" ]; then
            echo "ok    results/$name: docs/results.md matches the regenerated report"
        else
            echo "FAIL  results/$name: docs/results.md differs from the report regenerated from results/$name/run.tar.zst:"
            diff -u <(printf '%s\n' "$have") <(printf '%s\n' "$want") | head -40 || true
            bad=1
        fi
    done
    [ $n -gt 0 ] || echo "results: no results/*/run.tar.zst"
    exit $bad
    ;;
write)
    for name in $(names "$@"); do
        new=$(render "$name")
        if grep -qx "<!-- results:$name begin -->" "$doc"; then
            NEW="$new" awk -v b="<!-- results:$name begin -->" -v e="<!-- results:$name end -->" \
                '$0==b{print; print ENVIRON["NEW"]; skip=1; next} $0==e{skip=0} !skip{print}' "$doc" >"$doc.tmp"
        else
            { cat "$doc"; printf '\n<!-- results:%s begin -->\n%s\n<!-- results:%s end -->\n' "$name" "$new" "$name"; } >"$doc.tmp"
        fi
        mv "$doc.tmp" "$doc"
        echo "wrote the results/$name block of $doc"
    done
    ;;
*) echo "usage: scripts/results.sh check|write|export ..." >&2; exit 2 ;;
esac
