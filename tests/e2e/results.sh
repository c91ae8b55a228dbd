#!/usr/bin/env bash
# results.sh - the committed results regenerate docs/results.md's report blocks byte for byte (scripts/results.sh,
# make results); and the machinery round-trips on a tiny real run: `export --kinds eval` carries the run record and
# the eval entries only, `write` puts the report (tables + findings) into a page, `check` passes, an edit is caught.
set -euo pipefail
: "${HX:?} ${TOP:?}"
cd "$TOP"
fail() { echo "FAIL: $*"; exit 1; }
if ls results/*/run.tar.zst >/dev/null 2>&1; then
    HX=$HX bash scripts/results.sh check || fail "docs/results.md does not match results/"
fi
W=$(mktemp -d /tmp/hx-e2e-results.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/repo/scripts" "$W/repo/docs"
cp scripts/results.sh "$W/repo/scripts/"
printf '# Results\n\nbefore\n\n<!-- results:tiny begin -->\n<!-- results:tiny end -->\n\nafter\n' >"$W/repo/docs/results.md"
S="$W/store"
"$HX" run tests/e2e/recipes/results_e2e.yaml --store "$S" >"$W/run.log" 2>&1 || { cat "$W/run.log"; fail "hx run"; }
cd "$W/repo"
HX=$HX bash scripts/results.sh export latest tiny --store "$S" >/dev/null
# the archive holds the run record and the three eval entries whole, the rest as provenance manifests
"$HX" import results/tiny/run.tar.zst --store "$W/s2" --json >"$W/imp.json"
python3 - "$W/imp.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
stages = sorted(a["stage"] for a in r["added"])
assert stages == ["eval", "eval", "eval_teacher"], stages
assert len(r["runs_added"]) == 1 and len(r["provenance"]) == 5, r
PY
HX=$HX bash scripts/results.sh write tiny >/dev/null
grep -q '^## Findings (docs/results.md)' docs/results.md && fail "headings were not moved down"
grep -q '^#### Findings (docs/results.md)' docs/results.md || fail "no findings in the block: $(cat docs/results.md)"
grep -q '^| F5 | the duration axis has the largest effect on generation | no other axis has two arms | ' docs/results.md ||
    fail "no F5 row"
grep -q '^| F1 | LL underestimates the teacher-student gap | base: did ' docs/results.md || fail "no F1 row"
grep -q '^| F3 | longer helps | Gen base − short: ' docs/results.md || fail "no F3 row"
head -4 docs/results.md | grep -q '^before$' || fail "the text before the block changed"
tail -1 docs/results.md | grep -q '^after$' || fail "the text after the block changed"
HX=$HX bash scripts/results.sh check >"$W/check.log" || { cat "$W/check.log"; fail "check after write"; }
grep -q '^ok    results/tiny' "$W/check.log" || fail "check: $(cat "$W/check.log")"
# a hand edit of a number inside the block is caught
sed -i '0,/^| F1 |/s/did /did (edited) /' docs/results.md
if HX=$HX bash scripts/results.sh check >"$W/check2.log"; then fail "an edited block passed the check"; fi
grep -q '^FAIL  results/tiny' "$W/check2.log" || fail "check2: $(cat "$W/check2.log")"
echo "results: ok"
