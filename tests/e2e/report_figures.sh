#!/usr/bin/env bash
# report_figures.sh - `hx report` of a tiny run (two arms x two seeds, logged training curves): the report folder and
# the lines it prints, -o DIR, the figures (SVG parses; points, bars, letter shares and curves map back to the
# report's numbers), the CSV against the JSON, the PGF document, --format svg to stdout, and the HTML page in a
# headless Chromium (loads, no console message, every figure present). Chromium comes from scripts/deps.sh.
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || fail "Chromium is not installed: run make deps (scripts/deps.sh)"
S="$T/store"
"$HX" run tests/e2e/recipes/report_figures.yaml --store "$S" >"$T/run.log" 2>&1 || { cat "$T/run.log"; fail "hx run"; }
RUN=$(sed -n 's/^run \([0-9a-z-]*\): ok.*/\1/p' "$T/run.log")
[ -n "$RUN" ] || { cat "$T/run.log"; fail "no run id"; }

# the report folder: reports/<run>/ in the store, one printed line per file, every file there
"$HX" report --store "$S" >"$T/files.txt" || fail "hx report"
D="$S/reports/$RUN"
for f in report.md report.html report.json report.csv report.tex figures.tex duration__by_steps-accuracy.svg \
         duration__by_steps-deltas.svg duration__by_steps-letters.svg train-teacher.svg train-student.svg; do
    grep -qx "$D/$f" "$T/files.txt" || { cat "$T/files.txt"; fail "not printed: $D/$f"; }
done
[ "$(wc -l <"$T/files.txt")" -eq 11 ] || { cat "$T/files.txt"; fail "printed lines"; }
while read -r f; do [ -s "$f" ] || fail "missing or empty: $f"; done <"$T/files.txt"
"$HX" report "$RUN" --store "$S" -o "$T/out" >"$T/files2.txt" || fail "hx report -o DIR"
grep -qx "$T/out/report.html" "$T/files2.txt" && cmp "$D/report.csv" "$T/out/report.csv" || fail "-o DIR"
"$HX" report --store "$S" --format json >"$T/stdout.json" && cmp "$T/stdout.json" "$D/report.json" || fail "--format json to stdout"
out=$("$HX" report --store "$S" -o "$T/one.csv") && [ -z "$out" ] && cmp "$T/one.csv" "$D/report.csv" || fail "-o FILE.csv: that format"
if "$HX" report --store "$S" --format png 2>"$T/err"; then fail "--format png accepted"; fi
grep -q "expected md, json, tex, html, csv, svg or pgf" "$T/err" || { cat "$T/err"; fail "--format png message"; }
if "$HX" report --store "$S" -o /proc/hx-no 2>"$T/err"; then fail "unwritable folder accepted"; fi
grep -q "cannot create directory '/proc/hx-no'" "$T/err" && grep -q "hint: write the folder elsewhere with -o DIR" "$T/err" || { cat "$T/err"; fail "unwritable folder message"; }

# figures: parse, and map the drawn coordinates back to the report's numbers
python3 - "$D" <<'PY' || fail "figures"
import json, sys, glob, os, xml.etree.ElementTree as ET
d = sys.argv[1]
S = "{http://www.w3.org/2000/svg}"
rep = json.load(open(d + "/report.json"))
tab = rep["tables"][0]
rows = tab["rows"]
assert [r["label"] for r in rows] == ["teacher (eval_teacher)", "steps=2,seeds=2", "steps=4,seeds=2"], [r["label"] for r in rows]
def plots(root):
    return [g for g in root.iter(S + "g") if g.get("class") == "plot"]
def unmap(g, cx=None, cy=None):  # a coordinate back to data through the plot's range and area
    f = lambda k: float(g.get("data-" + k))
    x = f("xmin") + (cx - f("px")) / f("pw") * (f("xmax") - f("xmin")) if cx is not None else None
    y = f("ymin") + (f("py") + f("ph") - cy) / f("ph") * (f("ymax") - f("ymin")) if cy is not None else None
    return x, y
# (a) one point per model at (LL acc, Gen acc) in percent, the teacher marked, the diagonal
root = ET.parse(d + "/duration__by_steps-accuracy.svg").getroot()
assert root.get("width") == "237.6pt", root.get("width")  # 3.3 in
(g,) = plots(root)
pts = [e for e in g.iter() if e.get("class") == "point"]
assert len(pts) == len(rows), len(pts)
for e, r in zip(pts, rows):
    cx = float(e.get("cx") or e.get("data-cx")); cy = float(e.get("cy") or e.get("data-cy"))
    x, y = unmap(g, cx, cy)
    assert abs(x - 100 * r["ll_acc"]) < 0.05 and abs(y - 100 * r["gen_acc"]) < 0.05, (x, y, r["ll_acc"], r["gen_acc"])
    assert e.get("data-label") == r["label"] and e.get("data-teacher") == ("1" if r["teacher"] else "0")
assert pts[0].tag == S + "polygon" and all(e.tag == S + "circle" for e in pts[1:])  # the teacher's diamond
assert len([e for e in g.iter() if e.get("class") == "diagonal"]) == 1
assert len([e for e in g.iter() if e.get("class") == "errbar"]) == 2 * len(rows) - sum(
    r["ll_acc_ci"][0] == r["ll_acc_ci"][1] for r in rows) - sum(r["gen_acc_ci"][0] == r["gen_acc_ci"][1] for r in rows)
# (b) two bars per arm (Δ LL, Δ Gen), each ending at its value
root = ET.parse(d + "/duration__by_steps-deltas.svg").getroot()
(g,) = plots(root)
bars = [e for e in g.iter(S + "rect") if e.get("class") == "bar"]
arms = [r for r in rows if not r["teacher"]]
assert len(bars) == 2 * len(arms), len(bars)
for e in bars:
    r = [a for a in arms if a["label"] == e.get("data-arm")][0]
    v = 100 * r[e.get("data-measure")]
    assert abs(float(e.get("data-value")) - v) < 1e-3
    x0, _ = unmap(g, float(e.get("x"))); x1, _ = unmap(g, float(e.get("x")) + float(e.get("width")))
    assert abs(min(x0, x1) - min(v, 0)) < 0.05 and abs(max(x0, x1) - max(v, 0)) < 0.05, (x0, x1, v)
# (c) per model and kind (gold, ll, gen) the letter shares add up to 100, gen's "none" share = invalid / n
root = ET.parse(d + "/duration__by_steps-letters.svg").getroot()
segs = [e for e in root.iter(S + "rect") if e.get("class") == "seg"]
for r in rows:
    L = r["letters"]
    for kind in ("gold", "ll", "gen"):
        share = sum(float(e.get("data-share")) for e in segs if e.get("data-model") == r["label"] and e.get("data-kind") == kind)
        assert abs(share - 100) < 1e-3, (r["label"], kind, share)
    for e in segs:
        if e.get("data-model") == r["label"] and e.get("data-kind") == "gen" and e.get("data-letter") == "none":
            assert abs(float(e.get("data-share")) - 100 * L["invalid"] / L["n"]) < 1e-3
# (d) per training stage: a panel per logged quantity, a curve per instance with one point per train_log line
for st, n_inst in (("teacher", 1), ("student", 4)):
    root = ET.parse(d + "/train-%s.svg" % st).getroot()
    tr = [t for t in rep["training"] if t["stage"] == st][0]
    assert len(tr["instances"]) == n_inst
    qs = [q for q in tr["instances"][0]["log"] if q not in ("step", "tokens")]
    assert qs[0] == "loss" and len(plots(root)) == len(qs), qs
    curves = [e for e in root.iter(S + "polyline") if e.get("class") == "curve"]
    assert len(curves) == n_inst * len(qs)
    for e in curves:
        i = [x for x in tr["instances"] if x["label"] == e.get("data-label")][0]
        lines = open(glob.glob(os.path.dirname(os.path.dirname(d)) + "/store/*/%s/train_log.jsonl" % i["key"])[0]).read().splitlines()
        assert int(e.get("data-n")) == len(lines) == len(i["log"]["step"]) >= 2, (e.get("data-n"), len(lines))
        assert len(e.get("points").split()) == len(lines)
PY

# CSV: long format, one line per (row, metric), the same numbers as the JSON
python3 - "$D" <<'PY' || fail "csv"
import csv, json, sys
d = sys.argv[1]
rep = json.load(open(d + "/report.json"))
raw = open(d + "/report.csv", newline="").read()
assert raw.endswith("\r\n") and "\n" not in raw.replace("\r\n", "")  # RFC 4180 line ends
lines = list(csv.DictReader(open(d + "/report.csv", newline="")))
head = list(csv.reader(open(d + "/report.csv", newline="")))[0]
assert head == ["run", "recipe", "table", "stage", "steps", "seed", "label", "seeds", "teacher", "task", "split", "metric",
                "value", "ci_lo", "ci_hi", "n"], head
tab = rep["tables"][0]
want = 0
for r in tab["rows"]:
    for m in ("ll_acc", "gen_acc", "delta_ll", "did", "gap"):
        got = [l for l in lines if l["label"] == r["label"] and l["metric"] == m]
        assert len(got) == 1, (r["label"], m)
        l = got[0]
        assert l["table"] == "duration, by steps" and l["run"] == rep["run_id"] and l["split"] == "eval" and l["task"] == "all"
        if r[m] is None: assert l["value"] == "", l
        else: assert abs(float(l["value"]) - r[m]) < 1e-6, (l, r[m])
        ci = r.get(m + "_ci")
        if ci: assert abs(float(l["ci_lo"]) - ci[0]) < 1e-6 and abs(float(l["ci_hi"]) - ci[1]) < 1e-6, (l, ci)
    assert [l["steps"] for l in lines if l["label"] == r["label"]][0] == (str(r["axes"]["steps"]) if "steps" in r["axes"] else "")
    per = r.get("per_seed") or []
    assert {l["seeds"] for l in lines if l["label"] == r["label"]} == {str(len(per) or 1)}
    for p in per:  # each seed's own row after the row over seeds, with its seed
        got = [l for l in lines if l["label"] == p["label"] and l["metric"] == "ll_acc"]
        assert len(got) == 1 and got[0]["seeds"] == "1" and got[0]["seed"] == str(p["axes"]["seed"]), got
        assert abs(float(got[0]["value"]) - p["ll_acc"]) < 1e-6
assert {l["label"] for l in lines} == {r["label"] for r in tab["rows"]} | {p["label"] for r in tab["rows"] for p in r.get("per_seed") or []}
PY

# PGF: a LaTeX document whose environments and braces balance, one tikzpicture per figure; pdflatex when present
python3 - "$D/figures.tex" <<'PY' || fail "pgf"
import re, sys
t = open(sys.argv[1]).read()
assert t.count("\\begin{tikzpicture}") == t.count("\\end{tikzpicture}") == 5
body = re.sub(r"\\[{}%$&#_]", "", t)
body = "\n".join(l for l in body.splitlines() if not l.startswith("%"))
depth = 0
for c in body:
    depth += (c == "{") - (c == "}")
    assert depth >= 0
assert depth == 0
stack = []
for kind, env in re.findall(r"\\(begin|end)\{([a-z]+)\}", body):
    if kind == "begin": stack.append(env)
    else: assert stack.pop() == env, env
assert not stack and body.lstrip().startswith("\\documentclass") and body.rstrip().endswith("\\end{document}")
assert "\\definecolor{hxc0}{HTML}{E69F00}" in t
PY
if command -v pdflatex >/dev/null; then
    (cd "$T" && pdflatex -interaction=nonstopmode -halt-on-error "$D/figures.tex" >pdflatex.log 2>&1) || { tail -20 "$T/pdflatex.log"; fail "pdflatex"; }
fi

# --format svg to stdout: every figure in one document
"$HX" report "$RUN" --store "$S" --format svg >"$T/all.svg" || fail "--format svg"
python3 - "$T/all.svg" <<'PY' || fail "svg document"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
figs = [e for e in root if e.get("class") == "hx-figure"]
assert len(figs) == 5 and float(figs[1].get("y")) == float(figs[0].get("height")), [f.get("id") for f in figs]
PY

# the HTML page in Chromium: it loads, logs nothing to the console, and holds every figure
chrome() { # page -> DOM on stdout, Chromium's log on $T/chrome.err
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$T/chrome" --enable-logging=stderr \
        --v=0 --dump-dom "file://$1" 2>"$T/chrome.err"
}
printf '<html><body><script>console.error("hx-probe")</script></body></html>' >"$T/probe.html"
chrome "$T/probe.html" >/dev/null || fail "chromium did not run"
grep -q 'CONSOLE.*hx-probe' "$T/chrome.err" || { cat "$T/chrome.err"; fail "chromium does not report console messages"; }
chrome "$D/report.html" >"$T/dom.html" || { cat "$T/chrome.err"; fail "chromium on report.html"; }
if grep -q 'CONSOLE' "$T/chrome.err"; then grep CONSOLE "$T/chrome.err"; fail "console messages on report.html"; fi
python3 - "$T/dom.html" "$D" <<'PY' || fail "html figures"
import sys, glob, os, re
dom = open(sys.argv[1]).read()
assert "<table>" in dom and "Training curves" in dom
ids = set(re.findall(r'<svg [^>]*id="(fig-[^"]+)"', dom))
want = {"fig-" + os.path.basename(f)[:-4] for f in glob.glob(sys.argv[2] + "/*.svg")}
assert ids == want and len(want) == 5, (ids, want)
assert dom.count('class="point"') == 3 and dom.count('class="bar"') == 4
PY
echo "ok"
