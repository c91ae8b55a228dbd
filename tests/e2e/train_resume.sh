#!/usr/bin/env bash
# train_resume.sh - resume equivalence at any step, for every training kind: each of pretrain, align, distill and
# finetune of tests/e2e/recipes/train_kinds.yaml is stopped at step 3 (HX_TEST_INTERRUPT_STEP: as Ctrl-C would; the
# checkpoints fall every 2 steps and the log lines every 4, so step 3 is neither) and resumed; a checkpoint with two
# flipped bytes is skipped for the one before it. Every entry's output files must equal an uninterrupted run's.
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
R=tests/e2e/recipes/train_kinds.yaml
digests() { (cd "$1/store" && find . -type f ! -name manifest.json -print0 | sort -z | xargs -0 sha256sum); }

"$HX" run "$R" --store "$T/u" >"$T/u.log" 2>&1 || { cat "$T/u.log"; fail "uninterrupted run"; }

# one training stage stops per run (its dependents are skipped); the next run resumes it and stops the next one
i=0
for st in teacher align distill finetune; do
    i=$((i + 1))
    HX_TEST_INTERRUPT_STEP=3 "$HX" run "$R" --store "$T/k" >"$T/k$i.log" 2>&1 && { cat "$T/k$i.log"; fail "run $i should stop"; }
    grep -q "$st: interrupted at step 3 (saved" "$T/k$i.log" || { cat "$T/k$i.log"; fail "$st did not stop at step 3"; }
    [ $i = 1 ] || grep -q "^\[$prev\(\[[^]]*\]\)\?\] resuming at step 3 of" "$T/k$i.log" || { cat "$T/k$i.log"; fail "$prev did not resume"; }
    prev=$st
done
# the teacher-stopped state is gone (committed); damage finetune's newest checkpoint: it falls back to step 2
ck=$(find "$T/k/partial" -name state-00000003.safetensors)
[ "$(echo "$ck" | wc -l)" = 1 ] && [ -n "$ck" ] || fail "expected finetune's step-3 checkpoint alone in partial/"
python3 tests/e2e/damage.py "$ck"
"$HX" run "$R" --store "$T/k" >"$T/k5.log" 2>&1 || { cat "$T/k5.log"; fail "the last resumed run"; }
grep -q "state-00000003.safetensors: damaged" "$T/k5.log" || { cat "$T/k5.log"; fail "the damaged checkpoint was not reported"; }
grep -q "^\[finetune\(\[[^]]*\]\)\?\] resuming at step 2 of" "$T/k5.log" || { cat "$T/k5.log"; fail "finetune did not fall back to step 2"; }
grep -q "ok (2 executed, 6 cached" "$T/k5.log" || { cat "$T/k5.log"; fail "expected finetune and eval to execute"; }

digests "$T/u" >"$T/u.sha"
digests "$T/k" >"$T/k.sha"
diff "$T/u.sha" "$T/k.sha" || fail "resumed outputs differ from the uninterrupted run's"
grep -c train_log.jsonl "$T/k.sha" | grep -qx 4 || fail "expected 4 train_log.jsonl"
echo ok
