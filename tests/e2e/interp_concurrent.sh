#!/usr/bin/env bash
# interp_concurrent.sh - two `hx run` of one recipe at once execute each stage once; --jobs runs independent stages together.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_slow.yaml" slow.yaml
"$HX_TEST" run slow.yaml -S params.steps=8 -S params.ms=50 --json >r1.out 2>r1.err &
p1=$!
"$HX_TEST" run slow.yaml -S params.steps=8 -S params.ms=50 --json >r2.out 2>r2.err &
p2=$!
wait $p1 || fail "run 1: $(tail -3 r1.err)"
wait $p2 || fail "run 2: $(tail -3 r2.err)"
# 4 stages, each executed exactly once between the two processes
expect_eq "$(executions)" 4 "executions across two concurrent runs"
expect_eq "$(sort "$HX_TEST_LOG" | uniq | wc -l | tr -d ' ')" 4 "distinct executions"
e1=$(count executed "$(tail -n1 r1.out)"); e2=$(count executed "$(tail -n1 r2.out)")
expect_eq "$((e1 + e2))" 4 "executed states"
expect_eq "$(($(count cached "$(tail -n1 r1.out)") + $(count cached "$(tail -n1 r2.out)")))" 4 "cached states"

# --jobs 2: a (0.5s) and c (0.2s) are independent and overlap
: >"$HX_TEST_LOG"
t0=$(date +%s.%N)
"$HX_TEST" run slow.yaml -S params.steps=5 -S params.ms=100 -S stages.c.with.step_ms=100 --jobs 2 --json >j.out 2>j.err
dt=$(echo "$(date +%s.%N) - $t0" | bc)
expect_eq "$(count executed "$(tail -n1 j.out)")" 4 "--jobs executed"
echo "--jobs 2: ${dt}s (serial would take about 1.0s)"
[ "$(echo "$dt < 0.95" | bc)" = 1 ] || fail "--jobs 2 did not overlap stages (${dt}s)"
echo "interp_concurrent: ok"
