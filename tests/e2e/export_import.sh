#!/usr/bin/env bash
# export_import.sh - hx export / hx import through build/hx-test: a run moves between stores (all cached there), keys with provenance, and tampered, truncated and hostile archives refused with the store left consistent.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_chain.yaml" chain.yaml
A="$W/A" B="$W/B"

# store A: run the chain (2 shared + 3 arm instances)
"$HX_TEST" run chain.yaml --store "$A" --json >/dev/null 2>&1
expect_eq "$(executions)" 5 "executions in A"
run=$("$HX_TEST" runs --store "$A" --json | grep -o '"run_id":"[^"]*"' | head -1 | cut -d'"' -f4)

# export the run; the same export twice is the same bytes; the index comes first
"$HX_TEST" export latest -o run.tar.zst --store "$A" >export.txt
grep -q "exported 5 entries (5 with outputs, 0 manifests only) and 1 run to run.tar.zst" export.txt || fail "export: $(cat export.txt)"
"$HX_TEST" export "$run" -o again.tar.zst --store "$A" >/dev/null
cmp -s run.tar.zst again.tar.zst || fail "export is not deterministic"
zstd -dcq run.tar.zst >run.tar
expect_eq "$(tar -tf run.tar | head -1)" "hx-export.json" "index first"
expect_eq "$(tar -tf run.tar | grep -c '/manifest.json$')" 5 "manifests in the archive"
expect_eq "$(tar -tf run.tar | grep -c '^runs/.*/run.json$')" 1 "run records in the archive"

# import into an empty store B: everything added; hx run there executes nothing
out=$("$HX_TEST" import run.tar.zst --store "$B" --json)
expect_eq "$(grep -o '"key":' <<<"$out" | wc -l | tr -d ' ')" 5 "entries added"
grep -q "\"runs_added\":\[\"$run\"\]" <<<"$out" || fail "run record added: $out"
grep -q '"present":\[\]' <<<"$out" || fail "nothing present before"
"$HX_TEST" show "$run" --json --store "$B" | grep -q '"status": "ok"' || fail "show RUN in B"
"$HX_TEST" show latest --json --store "$B" | grep -q "\"run_id\": \"$run\"" || fail "latest points at the imported run"
key=$(grep -o '"key":"[0-9a-f]*"' <<<"$out" | head -1 | cut -d'"' -f4)
"$HX_TEST" show "${key:0:10}" --store "$B" | grep -q '"sha256"' || fail "show KEY in B"
"$HX_TEST" report "$run" --store "$B" --format md | grep -q "Report: interp_chain" || fail "report in B"
"$HX_TEST" diff "$run" latest --store "$B" >/dev/null || fail "diff in B"
f=$(find "$A/store" -name data.txt | head -1); g=$B/store/${f#"$A"/store/}
expect_eq "$(stat -c %y "$g")" "$(stat -c %y "$f")" "output mtime restored (the cheap check holds)"
out=$("$HX_TEST" run chain.yaml --store "$B" --json 2>/dev/null | tail -n1)
expect_eq "$(count cached "$out")" 5 "all cached in B"
expect_eq "$(count executed "$out")" 0 "nothing executed in B"
expect_eq "$(executions)" 5 "executions after the run in B"
"$HX_TEST" run chain.yaml --store "$B" --verify --json >/dev/null 2>&1 || fail "--verify re-hashes the imported entries"
expect_eq "$(executions)" 5 "executions after --verify in B"

# importing again adds nothing and says so
"$HX_TEST" import run.tar.zst --store "$B" >again.txt
grep -q "0 entries added (0.0 KiB unpacked), 5 already present (" again.txt || fail "re-import: $(cat again.txt)"

# --dry-run: what would be added and what is there, with each entry's real unpacked size; nothing added
"$HX_TEST" import run.tar.zst --store "$W/D" --dry-run --json >dry_new.json
"$HX_TEST" import run.tar.zst --store "$B" --dry-run --json >dry_have.json
"$HX_TEST" import run.tar.zst --store "$W/D" --dry-run >dry_new.txt
python3 - "$A" "$W/D" <<'PY' || fail "import --dry-run sizes: $(cat dry_new.json dry_have.json dry_new.txt)"
import json, sys, glob, os
A, D = sys.argv[1:]
size = {}
for m in glob.glob(A + "/store/*/*/manifest.json"):
    j = json.load(open(m))
    # an entry's unpacked size: its files, outputs and manifest
    size[j["key"]] = sum(o["size"] for o in j["outputs"]) + os.path.getsize(m)
    assert size[j["key"]] == sum(os.path.getsize(f) for f in glob.glob(os.path.dirname(m) + "/**", recursive=True) if os.path.isfile(f))
new, have = json.load(open("dry_new.json")), json.load(open("dry_have.json"))
assert new["dry_run"] and {r["key"]: r["bytes"] for r in new["added"]} == size and new["present"] == [], new
assert new["bytes"] == sum(size.values()) > 0 and new["bytes_present"] == 0, new
assert have["added"] == [] and {r["key"]: r["bytes"] for r in have["present"]} == size, have
assert have["bytes"] == 0 and have["bytes_present"] == sum(size.values()), have
assert not glob.glob(D + "/store/*/*") and not glob.glob(D + "/runs/2*"), "dry run added something"
txt = open("dry_new.txt").read()
k = sorted(size)[0]
assert any(l.startswith("would add    %s " % k[:12]) and l.endswith(" %.1f KiB" % (size[k] / 1024)) for l in txt.splitlines()), txt
assert "(dry run) 5 entries to add (%.1f KiB unpacked), 0 already present (0.0 KiB)" % (sum(size.values()) / 1024) in txt, txt
PY
grep -q "1 already present" again.txt || fail "re-import run present"

# two imports at once share the work through the per-key locks; a killed import's staging is swept
true & dead=$!; wait $dead
mkdir -p "$W/P/partial/.import-$dead-1/x" && : >"$W/P/partial/.import-$dead-1/x/debris"
"$HX_TEST" import run.tar.zst --store "$W/P" --json >p1.json & p1=$!
"$HX_TEST" import run.tar.zst --store "$W/P" --json >p2.json & p2=$!
wait $p1 || fail "concurrent import 1"
wait $p2 || fail "concurrent import 2"
expect_eq "$(cat p1.json p2.json | grep -o '"added":\[[^]]*\]' | grep -o '"key"' | wc -l | tr -d ' ')" 5 "each entry added once"
[ ! -e "$W/P/partial/.import-$dead-1" ] || fail "stale staging not swept"
expect_eq "$(ls -A "$W/P/partial" | wc -l | tr -d ' ')" 0 "no staging after concurrent imports"
"$HX_TEST" run chain.yaml --store "$W/P" --verify --json 2>/dev/null | tail -n1 | grep -q '"executed"' && fail "P: something executed"
expect_eq "$(executions)" 5 "executions after the concurrent imports"

# a key: the entry whole, its inputs' manifests for provenance (not added); --with-inputs: whole
last=$(find "$A/store" -mindepth 2 -maxdepth 2 -type d | while read -r d; do grep -q '"stage": "last"' "$d/manifest.json" && basename "$d"; done | sort | head -1)
"$HX_TEST" export "${last:0:8}" -o key.tar.zst --store "$A" | grep -q "3 entries (1 with outputs, 2 manifests only) and 0 runs" || fail "key export"
"$HX_TEST" import key.tar.zst --store "$W/K" >key.txt
grep -q "1 entry added" key.txt || fail "key import: $(cat key.txt)"
grep -q "2 provenance manifests verified but not added" key.txt || fail "provenance: $(cat key.txt)"
expect_eq "$(find "$W/K/store" -name manifest.json | wc -l | tr -d ' ')" 1 "one entry in K"
"$HX_TEST" export "$last" --with-inputs -o keyin.tar.zst --store "$A" | grep -q "3 entries (3 with outputs, 0 manifests only)" || fail "--with-inputs"
"$HX_TEST" import keyin.tar.zst --store "$W/K" | grep -q "2 entries added (.*), 1 already present" || fail "--with-inputs import"

# hostile and damaged archives: refused, nothing added, no staging left behind
mangle() { # MODE OUT.tar.zst: a copy of run.tar changed by python's tarfile, compressed with the zstd CLI
    python3 - "$1" run.tar "${2%.zst}" <<'PY'
import io, sys, tarfile
mode, src, dst = sys.argv[1:]
t = tarfile.open(src)
w = tarfile.open(dst, "w", format=tarfile.PAX_FORMAT)
for m in t.getmembers():
    d = t.extractfile(m).read()
    if mode == "tamper" and m.name.endswith("/data.txt") and not getattr(w, "done", False):
        d, w.done = bytes([d[0] ^ 1]) + d[1:], True
        print(m.name.split("/")[2])
    if mode == "missing" and m.name.endswith("/data.txt") and not getattr(w, "done", False):
        w.done = True
        print(m.name.split("/")[2])
        continue
    w.addfile(m, io.BytesIO(d))
    if m.name == "hx-export.json" and mode in ("dotdot", "absolute", "symlink"):
        e = tarfile.TarInfo({"dotdot": "store/../../../escaped.txt", "absolute": "/tmp/hx-escaped.txt",
                             "symlink": "store/ab/link"}[mode])
        if mode == "symlink":
            e.type, e.linkname = tarfile.SYMTYPE, "/etc/passwd"
            w.addfile(e)
        else:
            e.size = 4
            w.addfile(e, io.BytesIO(b"evil"))
    if m.name.endswith("/manifest.json") and mode in ("inner", "backslash") and not getattr(w, "done", False):
        w.done = True  # a real entry's prefix, then a tail the store's path rule refuses
        e = tarfile.TarInfo(m.name[:-len("manifest.json")] + {"inner": "sub/../../../../../escaped.txt",
                                                                  "backslash": "a\\b.txt"}[mode])
        e.size = 4
        w.addfile(e, io.BytesIO(b"evil"))
w.close()
PY
    zstd -qf "${2%.zst}" -o "$2"
}
refused() { # ARCHIVE STORE PATTERN: exit 3, the message matches, the store is untouched
    set +e
    "$HX_TEST" import "$1" --store "$2" 2>err.txt; local rc=$?
    set -e
    head -n1 err.txt
    expect_eq "$rc" 3 "$1 exit status"
    grep -q -- "$3" err.txt || fail "$1: message: $(cat err.txt)"
    expect_eq "$(find "$2/store" "$2/runs" -type f | wc -l | tr -d ' ')" 0 "$1 added nothing"
    expect_eq "$(ls -A "$2/partial" | wc -l | tr -d ' ')" 0 "$1 left no staging"
}
bad=$(mangle tamper tampered.tar.zst)
refused tampered.tar.zst "$W/C" "entry ${bad:0:12} (stage [a-z]*): output data.txt has sha256 .*the archive is corrupt or was altered"
bad=$(mangle missing missing.tar.zst)
refused missing.tar.zst "$W/C" "entry ${bad:0:12} (stage [a-z]*): output data.txt is missing from the archive"
mangle dotdot dotdot.tar.zst
refused dotdot.tar.zst "$W/C" "member 2 'store/../../../escaped.txt': outside the hx export layout"
mangle absolute absolute.tar.zst
refused absolute.tar.zst "$W/C" "outside the hx export layout"
mangle symlink symlink.tar.zst
refused symlink.tar.zst "$W/C" "not a regular file"
mangle inner inner.tar.zst
refused inner.tar.zst "$W/C" "store/[0-9a-f/]*/sub/../../../../../escaped.txt': outside the hx export layout"
mangle backslash backslash.tar.zst
refused backslash.tar.zst "$W/C" "/a.b.txt': outside the hx export layout"
[ ! -e "$W/escaped.txt" ] && [ ! -e /tmp/hx-escaped.txt ] || fail "a hostile member was written outside the store"
head -c $(($(stat -c %s run.tar.zst) / 2)) run.tar.zst >cut.tar.zst
refused cut.tar.zst "$W/C" "truncated or corrupt"
head -c 5000 run.tar | zstd -q >cut2.tar.zst
refused cut2.tar.zst "$W/C" "cut2.tar.zst: member [0-9]*.*(truncated or corrupt archive)"
printf 'not an archive' | zstd -q >junk.tar.zst
refused junk.tar.zst "$W/C" "junk.tar.zst"

# usage
set +e
"$HX_TEST" export latest --store "$A" 2>/dev/null; rc1=$?
"$HX_TEST" export ffff0000 -o x.tar.zst --store "$A" 2>/dev/null; rc2=$?
"$HX_TEST" import nothere.tar.zst --store "$A" 2>/dev/null; rc3=$?
set -e
expect_eq "$rc1" 2 "export without -o"
expect_eq "$rc2" 2 "export of an unknown key"
expect_eq "$rc3" 2 "import of a missing file"
echo "export_import: ok"
