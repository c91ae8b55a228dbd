#!/usr/bin/env bash
# interp_readonly.sh - committed and imported entries are read-only (files 0444, directories 0555); hx still removes them.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_chain.yaml" chain.yaml
"$HX_TEST" run chain.yaml >/dev/null 2>&1
writable() { # STORE: files not 0444 and entry directories not 0555
    find "$1/store" -mindepth 3 -type f ! -perm 0444
    find "$1/store" -mindepth 2 -type d ! -perm 0555
}
expect_eq "$(find "$HX_STORE/store" -name manifest.json | wc -l | tr -d ' ')" 5 "entries"
expect_eq "$(writable "$HX_STORE" | wc -l | tr -d ' ')" 0 "writable files or directories in the store: $(writable "$HX_STORE")"
# a stage's nested output directories too: make one by hand through import of an export
"$HX_TEST" export latest -o run.tar.zst >/dev/null 2>&1
"$HX_TEST" import run.tar.zst --store "$W/B" >/dev/null 2>&1
expect_eq "$(find "$W/B/store" -name manifest.json | wc -l | tr -d ' ')" 5 "imported entries"
expect_eq "$(writable "$W/B" | wc -l | tr -d ' ')" 0 "writable imported entries: $(writable "$W/B")"
# hx removes read-only entries: a corrupted one is quarantined and executed again, gc deletes the rest
src=$(entry_dir "$(key_of chain.yaml src)")
chmod u+w "$src/data.txt"; echo more >>"$src/data.txt"
"$HX_TEST" run chain.yaml --json 2>/dev/null | grep -q '"status":"ok"' || fail "re-run after corruption"
expect_eq "$(writable "$HX_STORE" | wc -l | tr -d ' ')" 0 "re-executed entry is read-only"
"$HX_TEST" gc --keep 0 >/dev/null
expect_eq "$(find "$HX_STORE/store" -mindepth 2 | wc -l | tr -d ' ')" 0 "gc --keep 0 removed every entry"
"$HX_TEST" gc --keep 0 --store "$W/B" >/dev/null
expect_eq "$(find "$W/B/store" -mindepth 2 | wc -l | tr -d ' ')" 0 "gc of the imported store"
# the same as an ordinary user (root ignores permission bits): the entries cannot be written, and hx can
# still quarantine and remove them
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    N="$W/user"; mkdir -p "$N"; cp chain.yaml "$N/"; chmod 755 "$W"; chown -R 65534:65534 "$N"
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups env HX_STORE="$N/store" HX_TEST_LOG= "$@"; }
    as_user "$HX_TEST" run "$N/chain.yaml" >/dev/null 2>&1 || fail "run as an ordinary user"
    f=$(find "$N/store/store" -name data.txt | head -1)
    if as_user sh -c "echo x >'$f'" 2>/dev/null; then fail "an ordinary user could write a store entry"; fi
    d=$(dirname "$f"); as_user chmod u+w "$d"; as_user sh -c "echo x >'$d/extra.txt'"
    set +e; as_user "$HX_TEST" fsck --repair >fsck.txt 2>&1; set -e
    grep -q "^moved " fsck.txt || fail "fsck --repair as an ordinary user: $(cat fsck.txt)"
    as_user "$HX_TEST" gc --keep 0 >/dev/null 2>&1 || fail "gc as an ordinary user"
    expect_eq "$(find "$N/store/store" -mindepth 2 | wc -l | tr -d ' ')" 0 "gc as an ordinary user removed every entry"
fi
echo "interp_readonly: ok"
