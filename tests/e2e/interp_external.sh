#!/usr/bin/env bash
# interp_external.sh - files named in path parameters are part of the key: resolved against the recipe's folder,
# hashed by content (digests cached by stat identity in the store), shown in plan and why; a change re-executes.
. "$(dirname "$0")/lib_interp.inc"
mkdir -p proj/data/model elsewhere
printf 'first' >proj/data/in.txt
printf 'A' >proj/data/model/a.txt
printf 'B' >proj/data/model/b.txt
cat >proj/r.yaml <<'Y'
hx: 1
name: ext
stages:
  f: {kind: t_file, with: {file: data/in.txt, files: [data/model]}}
  g: {kind: t_slow, inputs: {in: f}, with: {steps: 1, step_ms: 1}}
  n: {kind: t_file, with: {file: builtin}}
Y
cd elsewhere # relative paths are the recipe's, not the working directory's
out_of() { cat "$(entry_dir "$(key_of ../proj/r.yaml "$1")")/data.txt"; }
"$HX_TEST" run ../proj/r.yaml --json >run1.json 2>/dev/null || fail "first run: $(cat run1.json)"
expect_eq "$(out_of f)" "first[a]A[b]B" "f read the recipe's files"
expect_eq "$(out_of n)" "(builtin)" "a name listed in the schema is passed as is"
"$HX_TEST" plan ../proj/r.yaml >plan1.txt
abs=$(cd ../proj && pwd)
grep -q "^        external file: $abs/data/in.txt sha256 $(sha256sum ../proj/data/in.txt | cut -c1-12)\.\.\.$" plan1.txt ||
    fail "plan shows the external file: $(cat plan1.txt)"
grep -q "^        external files: $abs/data/model sha256 " plan1.txt || fail "plan shows the external directory"
k1=$(key_of ../proj/r.yaml f)
n1=$(key_of ../proj/r.yaml n)

# an edit of the same size within the same mtime (restored): ctime changes, the cached digest is not trusted
stamp=$(stat -c %y ../proj/data/in.txt)
printf 'final' >../proj/data/in.txt; touch -d "$stamp" ../proj/data/in.txt
"$HX_TEST" plan ../proj/r.yaml --json >plan2.json
python3 - plan2.json <<'PY'
import json, sys
p = {i["stage"]: i for i in json.load(open(sys.argv[1]))}
assert p["f"]["state"] == "stale" and "external.file: content " in p["f"]["reason"], p["f"]
assert p["g"]["state"] == "stale" and "inputs.in" in p["g"]["reason"], p["g"]
assert p["n"]["state"] == "cached", p["n"]
PY
"$HX_TEST" why ../proj/r.yaml f >why.txt
grep -q "^    external.file: content [0-9a-f]\{12\} -> [0-9a-f]\{12\} (a file outside the store changed)$" why.txt ||
    fail "why: $(cat why.txt)"
grep -q "external file: $abs/data/in.txt sha256" why.txt || fail "why lists the external file"
out=$("$HX_TEST" run ../proj/r.yaml --json 2>/dev/null)
expect_eq "$(count executed "$out")" 2 "f and g execute again"
expect_eq "$(out_of f)" "final[a]A[b]B" "f read the edited file"
[ "$(key_of ../proj/r.yaml n)" = "$n1" ] || fail "an unrelated stage's key changed"
grep -q '"external"' "$(entry_dir "$(key_of ../proj/r.yaml f)")/manifest.json" || fail "the manifest records the external inputs"
"$HX_TEST" fsck >/dev/null || fail "fsck recomputes keys with external digests"

# a directory: a new file changes it, a hidden one (download metadata) does not
printf 'C' >../proj/data/model/c.txt
out=$("$HX_TEST" run ../proj/r.yaml --json 2>/dev/null)
expect_eq "$(count executed "$out")" 2 "a file added to the directory"
printf 'x' >../proj/data/model/.meta
out=$("$HX_TEST" run ../proj/r.yaml --json 2>/dev/null)
expect_eq "$(count cached "$out")" 3 "a hidden file is not content"
# going back to the first content finds the first entries again (keys name content, not edits)
printf 'first' >../proj/data/in.txt; rm ../proj/data/model/c.txt
expect_eq "$(key_of ../proj/r.yaml f)" "$k1" "same content, same key"

# the digest cache: one record per file in the store, reused while size, mtime, ctime and inode are the same
ls "$HX_STORE/cache/external/"*.json >/dev/null || fail "no digest cache in the store"
c=$(grep -l "$abs/data/in.txt\"" "$HX_STORE/cache/external/"*.json)
python3 - "$c" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["sha256"] = "f" * 64; json.dump(r, open(sys.argv[1], "w"))
PY
"$HX_TEST" plan ../proj/r.yaml >plan3.txt
grep -q "external file: $abs/data/in.txt sha256 ffffffffffff" plan3.txt || fail "the cached digest was not used: $(cat plan3.txt)"
touch ../proj/data/in.txt
"$HX_TEST" plan ../proj/r.yaml >plan4.txt
grep -q "external file: $abs/data/in.txt sha256 $(sha256sum ../proj/data/in.txt | cut -c1-12)" plan4.txt || fail "a touched file is hashed again"

# what cannot be an input: a device is refused at plan time with the recipe's position; a missing file fails its stage
set +e
"$HX_TEST" plan ../proj/r.yaml -S stages.f.with.file=/dev/zero 2>err.txt; rc=$?
set -e
expect_eq "$rc" 2 "plan with a device as input"
grep -q "<-S stages.f.with.file=/dev/zero>:1:[0-9]*: stage 'f': file: '/dev/zero': not a regular file or directory" err.txt || fail "$(cat err.txt)"
"$HX_TEST" plan ../proj/r.yaml -S stages.f.with.file=data/nope.txt | grep -q "external file: $abs/data/nope.txt (missing: the stage will fail)" ||
    fail "missing file in plan"
set +e; out=$("$HX_TEST" run ../proj/r.yaml -S stages.f.with.file=data/nope.txt --json 2>/dev/null); rc=$?; set -e
expect_eq "$rc" 1 "run with a missing external file"
expect_eq "$(count failed "$out")" 1 "f fails"
echo "interp_external: ok"
