#!/usr/bin/env bash
# interp_collapse.sh - `hx plan` refuses an axis that changes nothing: two of its values for which every stage
# referencing the axis gets the same key; names the axis, the values and the stages (interp/plan_instances.c).
. "$(dirname "$0")/lib_interp.inc"
: "${HX:?set HX=build/hx}"
# expect_refused RECIPE PATTERN...: plan fails with exit 2 and its message holds every PATTERN
expect_refused() {
    local r=$1 out rc=0
    shift
    out=$("$HX_TEST" plan "$r" 2>&1) || rc=$?
    expect_eq "$rc" 2 "exit status of plan $r"
    for p in "$@"; do grep -qF -- "$p" <<<"$out" || fail "plan $r: '$p' not in: $out"; done
}
# two values that resolve to the same text: the axis is used, but changes nothing
cat >same.yaml <<'Y'
hx: 1
params: {texts: {a: hello, b: hello, c: world}}
axes: {x: [a, b, c]}
stages:
  src: {kind: t_source, with: {text: "${params.texts.${axes.x}}"}}
  end: {kind: t_concat, inputs: {a: src}}
Y
expect_refused same.yaml "same.yaml:3:8: axis 'x' changes nothing between 'a' and 'b'" "(src)"
# a number written two ways is one value (keys normalise numbers)
printf 'hx: 1\naxes: {s: [1, 1.0]}\nstages:\n  src: {kind: t_source, with: {scale: "${axes.s}"}}\n' >num.yaml
expect_refused num.yaml "axis 's' changes nothing between '1' and '1'"
# a zip group is one axis: its values move together
cat >zip.yaml <<'Y'
hx: 1
axes: {x: [a, b], y: [1, 1]}
zip: [[x, y]]
stages:
  src: {kind: t_source, with: {seed: "${axes.y}"}}
Y
expect_refused zip.yaml "axis 'x' changes nothing between 'a' and 'b'"
# accepted: an arm that changes nothing at one stage but something at another (paper.yaml's arms)
cat >ok.yaml <<'Y'
hx: 1
params: {arms: {base: {t: hi, s: 1}, seedy: {t: hi, s: 2}, texty: {t: ho, s: 1}}}
axes: {arm: [base, seedy, texty], other: [p, q]}
stages:
  src: {kind: t_source, with: {text: "${params.arms.${axes.arm}.t}"}}
  mid: {kind: t_concat, inputs: {a: src}, with: {sep: "${axes.other}"}}
  end: {kind: t_source, with: {seed: "${params.arms.${axes.arm}.s}", tags: ["${axes.other}"]}}
Y
"$HX_TEST" plan ok.yaml >/dev/null || fail "ok.yaml must plan"
# a real recipe mistake: a duration axis on `steps` while the stage is budgeted by `tokens` (which overrides
# steps): every arm trains the same (paper.yaml before issue 14)
cat >"$W/dur.yaml" <<Y
hx: 1
include: [$TOP/recipes/base/gendistill.yaml]
axes: {distill_steps: [50, 200, 800]}
stages:
  distill: {with: {steps: "\${axes.distill_steps}"}}
Y
rc=0; out=$("$HX" plan "$W/dur.yaml" --store "$W/real" 2>&1) || rc=$?
expect_eq "$rc" 2 "exit status of the steps-under-tokens axis"
grep -qF "axis 'distill_steps' changes nothing between '50' and '200': every stage that references it (distill)" \
    <<<"$out" || fail "steps-under-tokens: $out"
# the same axis on `tokens` plans, three distinct distill keys
sed -i 's/steps: "\${axes.distill_steps}"/tokens: "${axes.distill_steps}"/' "$W/dur.yaml"
"$HX" plan "$W/dur.yaml" --store "$W/real" --json >plan.json || fail "tokens axis must plan"
expect_eq "$(python3 -c "import json; print(len({i['key'] for i in json.load(open('plan.json')) if i['stage']=='distill'}))")" 3 \
    "distinct distill keys"
# `steps` under `tokens` does not reach the key: with 2048 tokens (2 steps of 8 x 128) any steps gives one key
k1=$("$HX" plan "$W/dur.yaml" --store "$W/real" --json -S 'axes.distill_steps=[2048]' -S stages.distill.with.steps=7 |
     python3 -c "import json,sys; print([i['key'] for i in json.load(sys.stdin) if i['stage']=='distill'][0])")
k2=$("$HX" plan "$W/dur.yaml" --store "$W/real" --json -S 'axes.distill_steps=[2048]' -S stages.distill.with.steps=900 |
     python3 -c "import json,sys; print([i['key'] for i in json.load(sys.stdin) if i['stage']=='distill'][0])")
expect_eq "$k1" "$k2" "distill key with steps 7 and 900 under tokens 2048"
echo "interp_collapse: ok"
