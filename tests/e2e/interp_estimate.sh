#!/usr/bin/env bash
# interp_estimate.sh - hx plan estimates each instance's time from the manifests of earlier executions of the same size
# (or scales one of the same shape by its steps), says when it cannot, and totals them serially and with --jobs.
source "$(dirname "$0")/lib_interp.inc"
"$HX_TEST" run "$R/interp_slow.yaml" -S params.steps=4 -S params.ms=50 >/dev/null 2>&1 || fail "run"
secs() { python3 -c "import json,glob; print([json.load(open(f))['seconds'] for f in glob.glob('$HX_STORE/store/*/*/manifest.json') if json.load(open(f))['stage']=='$1'][0])"; }
A=$(secs a) B=$(secs b) D=$(secs d)
# a runs 8 steps now (b and d depend on it; c is cached)
"$HX_TEST" plan "$R/interp_slow.yaml" -S params.steps=8 -S params.ms=50 --json >p.json
"$HX_TEST" plan "$R/interp_slow.yaml" -S params.steps=8 -S params.ms=50 --jobs 2 >p.txt
python3 - "$A" "$B" "$D" <<'PY' || fail "estimates: $(cat p.json p.txt)"
import json, sys
a, b, d = map(float, sys.argv[1:])
p = {i["stage"]: i for i in json.load(open("p.json"))}
est = {s: p[s]["estimate"] for s in p}
assert abs(est["a"]["seconds"] - 2 * a) < 1e-9 and est["a"]["how"].startswith("4 -> 8 steps from "), est["a"]
assert abs(est["b"]["seconds"] - b) < 1e-9 and est["b"]["how"].startswith("as "), est["b"]  # its input's shape is a's
assert est["c"] == {"seconds": 0, "how": "in the store"}, est["c"]
assert abs(est["d"]["seconds"] - d) < 1e-9, est["d"]
txt = open("p.txt").read()
serial = 2 * a + b + d
assert "time: %.2fs with --jobs 2, %.2fs one after another\n" % (2 * a + b + d, serial) in txt, txt  # a chain: no overlap
assert "        time %.2fs: 4 -> 8 steps from " % (2 * a) in txt, txt
assert 0.35 < 2 * a < 2.0, a  # 8 steps of 50 ms, measured
PY
# other step times: another size, not scaled; a kind never executed
cat >other.yaml <<'YAML'
hx: 1
name: other
stages:
  s1: {kind: t_slow, with: {steps: 2, step_ms: 7}}
  s2: {kind: t_slow, with: {steps: 2, step_ms: 7}, inputs: {in: s1}}
  f: {kind: t_fail, with: {fail: false}}
YAML
"$HX_TEST" plan other.yaml --json >o.json
"$HX_TEST" plan other.yaml >o.txt
python3 - <<'PY' || fail "no estimate: $(cat o.json o.txt)"
import json
p = {i["stage"]: i["estimate"] for i in json.load(open("o.json"))}
assert p["s1"] == {"seconds": None, "how": "no earlier execution of t_slow at this size"}, p
assert p["f"] == {"seconds": None, "how": "no earlier execution of kind t_fail"}, p
txt = open("o.txt").read()
assert "        time ?: no earlier execution of kind t_fail\n" in txt, txt
assert "(3 instances without an estimate)" in txt and "time: >= 0.00s with --jobs 1" in txt, txt
PY
# --jobs: two independent chains overlap
cat >two.yaml <<'YAML'
hx: 1
name: two
stages:
  x: {kind: t_slow, with: {steps: 8, step_ms: 50}}
  y: {kind: t_slow, with: {steps: 6, step_ms: 50}}
YAML
"$HX_TEST" plan two.yaml --jobs 2 >two.txt
python3 - "$A" <<'PY' || fail "--jobs total: $(cat two.txt)"
import sys
a = float(sys.argv[1])
txt = open("two.txt").read()
assert "time: %.2fs with --jobs 2, %.2fs one after another\n" % (2 * a, 3.5 * a) in txt, txt
PY
echo "ok interp_estimate"
