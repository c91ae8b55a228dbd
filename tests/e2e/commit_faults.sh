#!/usr/bin/env bash
# commit_faults.sh - fault injection on the commit path (tests/shim/hxfault.c, LD_PRELOAD): every write, fsync and
# rename hx makes under the store fails in turn (EIO). Each time the failure is reported, the store holds no torn or
# half-visible entry, and a plain re-run completes with outputs identical to a run that saw no fault.
. "$(dirname "$0")/lib_interp.inc"
SHIM="$(dirname "$HX_TEST")/tests/hxfault.so" # build/ or build-san/
[ -f "$SHIM" ] || fail "no $SHIM: build it with 'make build/tests/hxfault.so' (make test does)"
cp "$R/interp_chain.yaml" chain.yaml
run() { "$HX_TEST" run chain.yaml -S '~stages.last' -S '~axes' "$@"; } # 2 instances: src, mid

# The store's invariants (docs/architecture.md): every entry directory has a manifest that parses, lists exactly
# the files there, each with its size and sha256; nothing else sits in the shards; run records parse.
check_store() {
    python3 - "$1" <<'EOF'
import hashlib, json, os, sys
root = sys.argv[1]
def bad(msg):
    print("BAD STORE: " + msg); sys.exit(1)
store = os.path.join(root, "store")
for shard in sorted(os.listdir(store)) if os.path.isdir(store) else []:
    sp = os.path.join(store, shard)
    for key in sorted(os.listdir(sp)):
        d = os.path.join(sp, key)
        if not os.path.isdir(d) or len(key) != 64 or not key.startswith(shard):
            bad("%s: not an entry directory" % d)
        try:
            m = json.load(open(os.path.join(d, "manifest.json")))
        except Exception as e:
            bad("%s: manifest: %s" % (d, e))
        if m.get("key") != key:
            bad("%s: manifest names key %s" % (d, m.get("key")))
        listed = {o["path"]: o for o in m["outputs"]}
        found = set()
        for dp, dn, fn in os.walk(d):
            for f in fn:
                found.add(os.path.relpath(os.path.join(dp, f), d))
        found.discard("manifest.json")
        if found != set(listed):
            bad("%s: files %s, manifest lists %s" % (d, sorted(found), sorted(listed)))
        for p, o in listed.items():
            data = open(os.path.join(d, p), "rb").read()
            if len(data) != o["size"] or hashlib.sha256(data).hexdigest() != o["sha256"]:
                bad("%s/%s: differs from its manifest" % (d, p))
runs = os.path.join(root, "runs")
for r in os.listdir(runs) if os.path.isdir(runs) else []:
    p = os.path.join(runs, r)
    if r == "latest":
        if not os.path.exists(os.path.join(p, "run.json")):
            bad("runs/latest points at no run record")
        continue
    if not os.path.isdir(p):
        bad("%s: a stray file among the run records" % p)
    if os.path.exists(os.path.join(p, "run.json")):
        try:
            json.load(open(os.path.join(p, "run.json")))
        except Exception as e:
            bad("%s/run.json: %s" % (p, e))
EOF
}
# The outputs of every entry, as "key/path sha256" lines (manifests hold times and run ids: not compared).
outputs() { (cd "$1/store" && find . -type f ! -name manifest.json -exec sha256sum {} + | sort -k2); }

run --store "$W/ref" >/dev/null 2>&1 || fail "the reference run"
want=$(outputs "$W/ref")
expect_eq "$(wc -l <<<"$want" | tr -d ' ')" 2 "outputs of the reference run"

total=0
for op in write fsync rename; do
    rm -f "$W/count"
    HXFAULT_DIR="$W/c" HXFAULT_OP=$op HXFAULT_COUNT="$W/count" LD_PRELOAD="$SHIM" run --store "$W/c" >/dev/null 2>&1 ||
        fail "counting ${op}s"
    rm -rf "$W/c"
    n=$(cut -d' ' -f2 "$W/count")
    [ "$n" -ge 3 ] || fail "only $n ${op}s under the store: the shim does not see hx's calls"
    for i in $(seq 1 "$n"); do
        S="$W/s-$op-$i"
        rc=0
        HXFAULT_DIR="$S" HXFAULT_OP=$op HXFAULT_AT=$i LD_PRELOAD="$SHIM" run --store "$S" >"$W/out" 2>"$W/err" || rc=$?
        # reported: a failed stage or store error (exit 1 or 3), or, for a run record, a warning
        grep -q "Input/output error" "$W/err" || fail "$op #$i: exit $rc and no error reported: $(cat "$W/err")"
        case $rc in
        0) grep -q "^warning: run record: .*Input/output error" "$W/err" || fail "$op #$i: exit 0: $(cat "$W/err")" ;;
        1 | 3) ;;
        *) fail "$op #$i: exit $rc: $(tail -3 "$W/err")" ;;
        esac
        check_store "$S" || fail "$op #$i (exit $rc): $(grep -v '^\(src\|mid\|last\|run\)' "$W/err" | tail -3)"
        run --store "$S" >"$W/out" 2>&1 || fail "$op #$i: the run after the fault: $(tail -3 "$W/out")"
        [ "$(outputs "$S")" = "$want" ] || fail "$op #$i: outputs differ from the reference run"
        [ -z "$(ls -A "$S/partial" 2>/dev/null)" ] || fail "$op #$i: partial work left after a good re-run: $(ls "$S/partial")"
        rm -rf "$S"
        total=$((total + 1))
    done
done
echo "commit_faults: $total injected faults, each reported, no torn entry"
