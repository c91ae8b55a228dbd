#!/usr/bin/env bash
# grade_cli.sh - `hx grade` end to end: the contract of docs/eval.md (mcq/cloze -> {pred, rule}; open/prose ->
# {correct, em, pred}), the audit's cases, --json-lines from a file and stdin, and usage errors.
set -euo pipefail
: "${HX:?}"
T=$(mktemp -d /tmp/hx-e2e-grade.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
want() { # expected-json, hx grade args...
    local exp=$1; shift
    local got; got=$("$HX" grade "$@") || fail "hx grade $* exited $?"
    [ "$got" = "$exp" ] || fail "hx grade $*: got $got, want $exp"
}
M=(--format mcq --choices 4)
want '{"pred":"A","rule":"leading"}' "${M[@]}" "A is the answer"
want '{"pred":"A","rule":"explicit"}' "${M[@]}" "Correct answer: A is right"
want '{"pred":null,"rule":"none"}' "${M[@]}" "A country in Africa"
want '{"pred":null,"rule":"ambiguous"}' "${M[@]}" "C or D"
want '{"pred":null,"rule":"ambiguous"}' "${M[@]}" "B, C"
want '{"pred":null,"rule":"ambiguous"}' "${M[@]}" "A and B"
want '{"pred":"C","rule":"explicit"}' "${M[@]}" "The answer is (C)."
want '{"pred":null,"rule":"none"}' "${M[@]}" "E"
want '{"pred":"B","rule":"choice"}' --format cloze --choices 3 --option "He left." --option "She sat down." \
    --option "It rained." "she sat down"
want '{"pred":"A","rule":"anywhere"}' --format mcq --choices 2 -- "-A-"
want '{"correct":false,"em":false,"pred":"Paris, London or Berlin"}' --format open --target Paris "Paris, London or Berlin"
want '{"correct":true,"em":false,"pred":"It is Paris, France."}' --format open --target Paris "It is Paris, France."
want '{"correct":true,"em":true,"pred":"Paris"}' --format open --target Paris "Answer: Paris"
want '{"correct":false,"em":false,"pred":"It is Paris, France."}' --format open --target Paris --match exact "It is Paris, France."
want '{"correct":true,"em":true,"pred":"the Big Apple"}' --format open --target "New York" --alias "Big Apple" "the Big Apple"
want '{"correct":true,"em":true,"pred":"Washington D.C"}' --format prose --target "Washington D.C." " Washington D.C. It is big."

# --json-lines: strings graded with the command line's settings, objects with their own
cat >"$T/replies.jsonl" <<'JL'
"B"
{"reply": "C or D"}

{"reply": "Paris or Rome", "format": "open", "target": "Paris"}
{"reply": "Tokyo", "format": "open", "target": "tokyo", "aliases": ["Edo"]}
{"reply": "second", "choices": ["first", "second"]}
JL
"$HX" grade "${M[@]}" --json-lines "$T/replies.jsonl" >"$T/out" || fail "--json-lines exited $?"
cat >"$T/want" <<'JL'
{"pred":"B","rule":"leading"}
{"pred":null,"rule":"ambiguous"}
{"correct":false,"em":false,"pred":"Paris or Rome"}
{"correct":true,"em":true,"pred":"Tokyo"}
{"pred":"B","rule":"choice"}
JL
diff "$T/want" "$T/out" || fail "--json-lines output"
printf '"D"\n' | "$HX" grade "${M[@]}" --json-lines - | grep -qx '{"pred":"D","rule":"leading"}' || fail "stdin"

# errors: usage (exit 2) with what to do; a bad line names file:line
set +e
"$HX" grade --format open "x" 2>"$T/e1"; [ $? -eq 2 ] && grep -q "needs --target" "$T/e1" || fail "open without target"
"$HX" grade --format mcq "x" 2>"$T/e2"; [ $? -eq 2 ] && grep -q "needs --choices" "$T/e2" || fail "mcq without choices"
"$HX" grade --format essay --choices 4 "x" 2>"$T/e3"; [ $? -eq 2 ] && grep -q "unknown format 'essay'" "$T/e3" || fail "format"
"$HX" grade "${M[@]}" 2>"$T/e4"; [ $? -eq 2 ] && grep -q "give one REPLY" "$T/e4" || fail "no reply"
printf '"A"\n{"reply": 3}\n' >"$T/bad.jsonl"
"$HX" grade "${M[@]}" --json-lines "$T/bad.jsonl" >"$T/o5" 2>"$T/e5"
[ $? -eq 2 ] && grep -q "bad.jsonl:2: expected a JSON string" "$T/e5" && [ "$(wc -l <"$T/o5")" -eq 1 ] || fail "bad line"
"$HX" grade "${M[@]}" --json-lines "$T/missing.jsonl" 2>"$T/e6"; [ $? -eq 2 ] && grep -q "missing.jsonl" "$T/e6" || fail "missing"
set -e
echo "grade_cli: ok"
