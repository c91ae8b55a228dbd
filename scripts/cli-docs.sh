#!/usr/bin/env bash
# cli-docs.sh - writes docs/cli.md's option tables from the command table (`hx help --markdown`); --check only compares.
# Usage: scripts/cli-docs.sh [--check]   (HX: the hx binary, default build/hx)
set -euo pipefail
cd "$(dirname "$0")/.."
HX=${HX:-build/hx}
doc=docs/cli.md begin='<!-- BEGIN hx help --markdown -->' end='<!-- END hx help --markdown -->'
grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" || { echo "$doc: no '$begin' ... '$end' block" >&2; exit 2; }
tables=$(mktemp) new=$(mktemp)
trap 'rm -f "$tables" "$new"' EXIT
"$HX" help --markdown >"$tables"
awk -v b="$begin" -v e="$end" -v t="$tables" '
    $0 == b { print; print ""; while ((getline l < t) > 0) print l; skip = 1; next }
    $0 == e { skip = 0 }
    !skip' "$doc" >"$new"
if [ "${1:-}" = --check ]; then
    diff -u "$doc" "$new" || { echo "$doc: the option tables differ from the command table; run scripts/cli-docs.sh" >&2; exit 1; }
else
    cp "$new" "$doc"
fi
