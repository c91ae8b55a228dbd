#!/usr/bin/env bash
# interp_sweep.sh - `hx plan` of a 64-arm sweep (two axes of 8): 1 shared + 8 + 64 instances; prints the time.
. "$(dirname "$0")/lib_interp.inc"
t0=$(date +%s.%N)
plan=$("$HX_TEST" plan "$R/interp_sweep.yaml" --json)
dt=$(echo "$(date +%s.%N) - $t0" | bc)
expect_eq "$(grep -c '"stage":' <<<"$plan")" 73 "instances"
expect_eq "$(grep -c '"stage":"eval"' <<<"$plan")" 64 "eval arms"
expect_eq "$(grep -c '"stage":"model"' <<<"$plan")" 8 "model arms (seed only)"
expect_eq "$(grep -o '"key":"[0-9a-f]*"' <<<"$plan" | sort -u | wc -l | tr -d ' ')" 73 "distinct keys"
echo "hx plan of a 64-arm sweep: ${dt}s"
# hx works from any directory: the recipe path is resolved, includes relative to it
mkdir -p sub/base && printf 'params: {n: 2}\n' >sub/base/p.yaml
printf 'hx: 1\ninclude: [base/p.yaml]\nstages:\n  s: {kind: t_source, with: {seed: "${params.n}"}}\n' >sub/r.yaml
(cd / && "$HX_TEST" plan "$W/sub/r.yaml" >/dev/null) || fail "plan from another directory"
echo "interp_sweep: ok"
