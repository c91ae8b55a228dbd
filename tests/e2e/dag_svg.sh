#!/usr/bin/env bash
# dag_svg.sh - `hx dag --format svg` draws the plan through Graphviz's dot (scripts/deps.sh installs it): the SVG parses
# and holds one node per stage instance with its state and one edge per input; -o writes the file atomically; a clear
# error when dot is missing or fails.
. "$(dirname "$0")/lib_e2e.inc"
R=tests/e2e/recipes/model_refs.yaml
command -v dot >/dev/null || fail "Graphviz's dot is not installed: run make deps (scripts/deps.sh)"

check_svg() { # file, expected state of every node
    python3 - "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
assert root.find("s:g/s:title", ns).text == "model_refs"
nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
edges = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "edge"]
texts = [[t.text for t in g.iter("{http://www.w3.org/2000/svg}text")] for g in nodes]
assert len(nodes) == 4, texts
assert sorted(t[0] for t in texts) == ["base", "model", "model", "tok"], texts
assert sorted(t[1] for t in texts if t[0] == "model") == ["seed=1", "seed=2"], texts
assert all(t[-1] == sys.argv[2] for t in texts), texts
assert len(edges) == 3 and all("tokenizer" in [t.text for t in e.iter("{http://www.w3.org/2000/svg}text")] for e in edges), len(edges)
PY
}

"$HX" dag $R --store "$T/s" --format svg >"$T/new.svg" || fail "hx dag --format svg"
check_svg "$T/new.svg" new || fail "the SVG of a new plan"
"$HX" run $R --store "$T/s" >/dev/null 2>&1 || fail "hx run"
out=$("$HX" dag $R --store "$T/s" --format svg -o "$T/cached.svg") || fail "hx dag -o"
[ -z "$out" ] || fail "-o also printed to stdout"
check_svg "$T/cached.svg" cached || fail "the SVG of a cached plan"
[ ! -e "$T/cached.svg.tmp" ] || fail "temporary file left"
"$HX" dag $R --store "$T/s" | head -1 | grep -q '^digraph "model_refs" {$' || fail "--format dot is the default"

rc=0; PATH=/nonexistent "$HX" dag $R --store "$T/s" --format svg -o "$T/x.svg" 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "runs Graphviz's \`dot\`, which is not on PATH: install it" "$T/err" || { cat "$T/err"; fail "missing dot: $rc"; }
rc=0; HX_DOT=/bin/false "$HX" dag $R --store "$T/s" --format svg -o "$T/x.svg" 2>"$T/err" || rc=$?
[ $rc -eq 3 ] && grep -q "/bin/false -Tsvg failed (exit status 1); nothing written" "$T/err" || { cat "$T/err"; fail "dot failing: $rc"; }
[ ! -e "$T/x.svg" ] && [ ! -e "$T/x.svg.tmp" ] || fail "a failed render left a file"
rc=0; "$HX" dag $R --store "$T/s" --format png 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "expected dot or svg" "$T/err" || fail "--format png: $rc"
echo "ok"
