#!/usr/bin/env bash
# interp_fsck.sh - hx fsck finds forged and damaged entries and run records, --repair quarantines them; run --verify too.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_chain.yaml" chain.yaml
"$HX_TEST" run chain.yaml >/dev/null 2>&1
"$HX_TEST" fsck >fsck0.txt || fail "fsck of a sound store: $(cat fsck0.txt)"
grep -q "^5 entries checked: 0 bad; 0 run record problems; 0 other problems$" fsck0.txt || fail "$(cat fsck0.txt)"
keys=$("$HX_TEST" plan chain.yaml --json | python3 -c "import json,sys; print(' '.join(i['key'] for i in json.load(sys.stdin)))")
read -r src mid l1 l2 l3 <<<"$keys"
# edit a manifest in place (entries are read-only: a forger makes them writable first)
forge() { # KEY PYTHON-EXPRESSION-ON-m
    local d; d=$(entry_dir "$1"); chmod u+w "$d" "$d/manifest.json"
    python3 - "$d/manifest.json" "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); exec(sys.argv[2]); json.dump(m, open(sys.argv[1], "w"), indent=2)
PY
}
forge "$mid" 'm["with"]["times"] = 3'
forge "$l1" 'm["key"] = "0" * 64'
forge "$l2" 'm["outputs"] = []'
d=$(entry_dir "$l3"); chmod u+w "$d"; echo extra >"$d/extra.txt"
forge "$src" 'm["outputs"].append(dict(path="../../../../etc/hostname", size=1, mtime_ns=0, sha256="0"*64))'
mkdir -p "$HX_STORE/runs/20250101-000000-00000"; echo '{"run_id": "20250101-000000-000' >"$HX_STORE/runs/20250101-000000-00000/run.json"

set +e; "$HX_TEST" fsck >fsck1.txt; rc=$?; set -e
expect_eq "$rc" 3 "fsck exit status with problems"
grep -q "^bad      ${mid:0:12}  mid .*hash to .*, not to its key" fsck1.txt || fail "edited with: $(cat fsck1.txt)"
grep -q "^bad      ${l1:0:12}  last .*key '0000000000000000000000000000000000000000000000000000000000000000' is not the entry's key" fsck1.txt || fail "zeroed key"
grep -q "^bad      ${l2:0:12}  last .*/data.txt: a file the manifest does not list" fsck1.txt || fail "outputs: []"
grep -q "^bad      ${l3:0:12}  last .*/extra.txt: a file the manifest does not list" fsck1.txt || fail "extra file"
grep -q "^bad      ${src:0:12}  src .*output path '../../../../etc/hostname' is not a file inside the entry" fsck1.txt || fail "path outside"
grep -q "^bad run  .*20250101-000000-00000/run.json" fsck1.txt || fail "malformed run record: $(cat fsck1.txt)"
grep -q "^5 entries checked: 5 bad; 1 run record problem; 0 other problems" fsck1.txt || fail "summary: $(tail -2 fsck1.txt)"
# some keys only (prefixes accepted)
set +e; "$HX_TEST" fsck "${l3:0:8}" --json >fsck2.json; rc=$?; set -e
expect_eq "$rc" 3 "fsck KEY exit status"
python3 -c "
import json; r = json.load(open('fsck2.json'))
assert r['entries_checked'] == 1 and [b['key'] for b in r['bad_entries']] == ['$l3'] and not r['run_problems'], r"

# a symbolic link leading out of an entry
d=$(entry_dir "$l3"); rm -f "$d/extra.txt"; mv "$d/data.txt" "$W/outside.txt"; ln -s "$W/outside.txt" "$d/data.txt"
set +e; "$HX_TEST" fsck "$l3" >fsck3.txt; set -e
grep -q "data.txt: not a regular file" fsck3.txt || fail "symlink: $(cat fsck3.txt)"
d=$(entry_dir "$l2"); mv "$d/manifest.json" "$W/manifest.json"; ln -s "$W/manifest.json" "$d/manifest.json"
set +e; "$HX_TEST" fsck "$l2" >fsck3b.txt; set -e
grep -q "manifest.json: missing, or not a regular file" fsck3b.txt || fail "symlinked manifest: $(cat fsck3b.txt)"

# --repair moves every bad entry and record to quarantine/ (nothing is deleted); then the store is sound
set +e; "$HX_TEST" fsck --repair >fsck4.txt; rc=$?; set -e
expect_eq "$rc" 3 "fsck --repair still reports what it found"
expect_eq "$(grep -c '^moved ' fsck4.txt)" 6 "entries and records moved"
expect_eq "$(find "$HX_STORE/store" -name manifest.json | wc -l | tr -d ' ')" 0 "bad entries left store/"
expect_eq "$(find "$HX_STORE/quarantine" -mindepth 1 -maxdepth 1 -name '[0-9a-f]*' | wc -l | tr -d ' ')" 5 "quarantined entries"
[ -f "$(find "$HX_STORE/quarantine/runs" -name run.json)" ] || fail "quarantined run record"
"$HX_TEST" fsck >fsck5.txt || fail "after --repair: $(cat fsck5.txt)"
out=$("$HX_TEST" run chain.yaml --json 2>/dev/null)
expect_eq "$(count executed "$out")" 5 "everything executes again after the repair"

# run (cheap check) refuses an output path outside the entry; run --verify does what fsck does for the entries it uses
forge "$src" 'm["outputs"].append(dict(path="../../../../etc/hostname", size=1, mtime_ns=0, sha256="0"*64))'
out=$("$HX_TEST" run chain.yaml --json 2>err.txt)
grep -q "is corrupted: .*output path '../../../../etc/hostname' is not a file inside the entry; moved to .*/quarantine/" err.txt ||
    fail "run with a path outside: $(cat err.txt)"
expect_eq "$(count executed "$out")" 1 "src executes again"
forge "$mid" 'm["with"]["times"] = 3'
d=$(entry_dir "$l2"); chmod u+w "$d"; echo extra >"$d/extra.txt"
out=$("$HX_TEST" run chain.yaml --json 2>err.txt)
expect_eq "$(count cached "$out")" 5 "the cheap check does not re-hash manifests"
out=$("$HX_TEST" run chain.yaml --verify --json 2>err.txt)
grep -q "store entry ${mid:0:12} of stage 'mid' is corrupted: .*not to its key" err.txt || fail "--verify, edited with: $(cat err.txt)"
grep -q "store entry ${l2:0:12} .*extra.txt: a file the manifest does not list" err.txt || fail "--verify, extra file: $(cat err.txt)"
expect_eq "$(count executed "$out")" 2 "--verify executes both again"
expect_eq "$(cat "$(entry_dir "$mid")/data.txt")" "hello:3:1+hello:3:1" "mid recomputed"
"$HX_TEST" fsck >/dev/null || fail "sound after run --verify"
echo "interp_fsck: ok"
