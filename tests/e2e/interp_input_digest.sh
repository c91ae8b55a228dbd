#!/usr/bin/env bash
# interp_input_digest.sh - nothing is computed from corrupted bytes, and an entry whose input's content changed is stale.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_chain.yaml" chain.yaml
"$HX_TEST" run chain.yaml >/dev/null 2>&1
src=$(entry_dir "$(key_of chain.yaml src)")
mid=$(entry_dir "$(key_of chain.yaml mid)")
expect_eq "$(cat "$mid/data.txt")" "hello:3:1+hello:3:1" "mid's output"
grep -q '"input_digests"' "$mid/manifest.json" || fail "mid's manifest records no input digests"

# 1. src's bytes change behind the store's back (same size, mtime restored): the cheap check cannot see it.
#    When mid must be computed again (here: its entry is gone), src is re-hashed in full first, found
#    corrupted and executed again, so mid is computed from the right bytes.
stamp=$(stat -c %y "$src/data.txt")
chmod u+w "$src/data.txt"; printf 'jello:3:1' >"$src/data.txt"; touch -d "$stamp" "$src/data.txt"; chmod a-w "$src/data.txt"
rm_entry "$mid"
: >"$HX_TEST_LOG"
out=$("$HX_TEST" run chain.yaml --json 2>err.txt)
grep -q "is corrupted: .*data.txt: sha256" err.txt || fail "corrupted input not found before its dependent ran: $(cat err.txt)"
grep -q "^src " "$HX_TEST_LOG" || fail "src was not executed again"
expect_eq "$(cat "$mid/data.txt")" "hello:3:1+hello:3:1" "mid computed from src's true bytes"
"$HX_TEST" run chain.yaml --verify --json 2>/dev/null | grep -q '"status":"ok"' || fail "--verify after the repair"

# 2. src is executed again elsewhere (its entry was removed) and its bytes differ this time, as a stage with
#    timings in its outputs would: mid and last were computed from other bytes. They are stale:
#    plan and why say so, and run executes them again.
cat >src.yaml <<'Y'
hx: 1
name: only_src
stages:
  src: {kind: t_source, with: {text: hello, seed: 3}}
Y
expect_eq "$(key_of src.yaml src)" "$(key_of chain.yaml src)" "same key for src in both recipes"
rm_entry "$src"
HX_TEST_NONDET=again "$HX_TEST" run src.yaml >/dev/null 2>&1
expect_eq "$(cat "$src/data.txt")" "hello:3:1:again" "src's new bytes"
"$HX_TEST" plan chain.yaml --json >plan.json
python3 - plan.json <<'PY'
import json, sys
p = {(i["stage"], json.dumps(i["axes"])): i for i in json.load(open(sys.argv[1]))}
assert p[("src", "{}")]["state"] == "cached", p[("src", "{}")]
mid = p[("mid", "{}")]
assert mid["state"] == "stale", mid
assert mid["reason"].startswith("input 'a' (stage src, key ") and "has other content than when this entry was computed" in mid["reason"], mid["reason"]
assert sum(1 for (s, _), i in p.items() if s == "last" and i["state"] == "stale") == 3, p
PY
"$HX_TEST" why chain.yaml mid >why.txt
grep -q "input 'a' (stage src, key .*) has other content than when this entry was computed.*: it executes again" why.txt ||
    fail "hx why: $(cat why.txt)"
out=$("$HX_TEST" run chain.yaml --json 2>err.txt)
expect_eq "$(count cached "$out")" 1 "src stays cached"
expect_eq "$(count executed "$out")" 4 "mid and the 3 arms of last execute again"
grep -q "is stale: input 'a'" err.txt || fail "run does not say why: $(cat err.txt)"
expect_eq "$(cat "$mid/data.txt")" "hello:3:1:again+hello:3:1:again" "mid from src's new bytes"
out=$("$HX_TEST" run chain.yaml --json 2>/dev/null)
expect_eq "$(count cached "$out")" 5 "then everything is cached"
echo "interp_input_digest: ok"
