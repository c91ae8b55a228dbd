#!/usr/bin/env bash
# set_rule.sh - -S follows Hydra's rule (docs/cli.md): overriding a field that does not exist is an error with
# "did you mean" (params, scales, axes, stage names, parameters, input roles), +key=value adds one, and a value
# naming no scale lists the scales. Plans only: seconds.
. "$(dirname "$0")/lib_e2e.inc"
R=recipes/ablate_masking.yaml
# expect_error ARG TEXT: hx plan R -S ARG exits 2 (a recipe error) and says TEXT
expect_error() {
    local rc=0
    "$HX" plan "$R" --store "$T/s" -S "$1" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || { cat "$T/err"; fail "-S $1: exit $rc, expected 2"; }
    grep -qF -- "$2" "$T/err" || { cat "$T/err"; fail "-S $1: expected: $2"; }
}
expect_ok() { "$HX" plan "$R" --store "$T/s" "$@" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "$*: refused"; }; }
expect_error stages.finetun.with.steps=1 \
    "error: <-S stages.finetun.with.steps=1>:1:8: no stage 'finetun' (did you mean 'finetune'?)"
expect_error params.sead=1 "<-S params.sead=1>:1:8: no field 'params.sead' to override (did you mean 'seed'?); -S +params.sead=1 adds it"
expect_error scales.tiny.teacher.stesp=4 "no field 'scales.tiny.teacher.stesp' to override (did you mean 'steps'?)"
expect_error 'axes.masknig=[all_tokens]' "no field 'axes.masknig' to override (did you mean 'masking'?)"
expect_error stages.finetune.with.stepz=4 "<-S stages.finetune.with.stepz=4>:1:22: stage 'finetune': no parameter 'stepz' (did you mean 'steps'?)"
expect_error stages.eval.inputs.modle=teacher "no field 'stages.eval.inputs.modle' (did you mean 'model'?)"
expect_error +params.seed=1 "'params.seed' exists: -S params.seed=1 overrides it (without '+')"
expect_error params.scale=huge "no field 'huge' in 'scales' (it has: tiny, small, paper)"
expect_error params.scale=smal "no field 'smal' in 'scales' (did you mean 'small'?)"
# a parameter the recipe leaves at its default exists (the kind's schema), so does an input role, a resource
expect_ok -S stages.eval.with.bootstrap=50 -S stages.finetune.resources.gpus=1 -S stages.eval.inputs.model=teacher_sft
grep -q "12 instances" "$T/out" || { cat "$T/out"; fail "plan with defaults overridden (eval of teacher_sft: shared)"; }
# + adds a field, and the addition is used: the same keys as the value written in place
expect_ok -S +params.steps=3 -S 'stages.teacher_sft.with.steps=${params.steps}' --json
mv "$T/out" "$T/added.json"
expect_ok -S stages.teacher_sft.with.steps=3 --json
cmp -s "$T/added.json" "$T/out" || fail "+params.steps=3 planned other keys than steps=3 written in place"
expect_ok --json
cmp -s "$T/added.json" "$T/out" && fail "steps=3 changed no key"
echo "ok: set_rule"
