#!/usr/bin/env bash
# interp_corrupt.sh - an output that no longer matches its digest is reported and executed again.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_chain.yaml" chain.yaml
"$HX_TEST" run chain.yaml >/dev/null 2>&1
src=$(find "$HX_STORE/store" -name data.txt -path "*$("$HX_TEST" plan chain.yaml --json | grep '"stage":"src"' | grep -o '[0-9a-f]\{64\}' | head -1)*")
[ -f "$src" ] || fail "src output not found"
# a changed file (size differs): found by the cheap check on the next run, reported, re-executed
echo "garbage" >>"$src"
out=$("$HX_TEST" run chain.yaml --json 2>err.txt)
grep -q "is corrupted: .*data.txt: size" err.txt || fail "corruption not reported: $(cat err.txt)"
expect_eq "$(count executed "$out")" 1 "only the corrupted entry re-executes"
expect_eq "$(count cached "$out")" 4 "the rest stays cached"
grep -q "^hello:3:1$" "$src" || fail "re-executed output: $(cat "$src")"
# same size and mtime, other bytes: only --verify re-hashes and sees it
stamp=$(stat -c %y "$src")
printf 'jello:3:1' >"$src"
touch -d "$stamp" "$src"
out=$("$HX_TEST" run chain.yaml --json 2>/dev/null)
expect_eq "$(count cached "$out")" 5 "cheap check trusts size+mtime"
out=$("$HX_TEST" run chain.yaml --verify --json 2>err.txt)
grep -q "is corrupted: .*sha256" err.txt || fail "--verify did not report: $(cat err.txt)"
expect_eq "$(count executed "$out")" 1 "--verify re-executes the corrupted entry"
grep -q "^hello:3:1$" "$src" || fail "restored output"
echo "interp_corrupt: ok"
