#!/usr/bin/env bash
# gpu_share.sh - GPU slots of the executor on a CPU machine (the guard device stands for one GPU): `--gpu-share N`
# runs at most N needs_gpu instances at once on it and all of them, `--jobs` alone never puts two on one GPU, and the
# outputs do not depend on the schedule. t_gpu (tests/kinds) records how many of its kind ran when it started.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/gpu_share.yaml" share.yaml
# the most t_gpu instances that ran at once in STORE, and the devices they ran on
peak() {
    python3 - "$1" <<'PY'
import glob, json, os, sys
ms = [json.load(open(p)) for p in glob.glob(os.path.join(sys.argv[1], "store", "*", "*", "manifest.json"))]
g = [m for m in ms if m["kind"] == "t_gpu"]
assert len(g) == 6, len(g)
print(max(m["metrics"]["running_at_start"] for m in g), ",".join(sorted({m["metrics"]["device"] for m in g})))
PY
}
outputs() { (cd "$1/store" && find . -name data.txt -print0 | sort -z | xargs -0 sha256sum); }
run() { # STORE ARGS...: every instance executed
    local st=$1; shift
    "$HX_TEST" run share.yaml --store "$st" --json "$@" >"$st.out" 2>"$st.err" || fail "run $*: $(tail -3 "$st.err")"
    expect_eq "$(count executed "$(tail -n1 "$st.out")")" 7 "executed with $*"
}
run "$W/one" --device guard
expect_eq "$(peak "$W/one")" "1 guard" "one job"
run "$W/jobs" --device guard --jobs 4
expect_eq "$(peak "$W/jobs")" "1 guard" "--jobs 4: still one GPU stage on the GPU"
run "$W/s3" --device guard --gpu-share 3
expect_eq "$(peak "$W/s3")" "3 guard" "--gpu-share 3 (its jobs by default)"
python3 - "$W/s3" <<'PY' || fail "the run record should hold gpu_share 3 and jobs 3"
import glob, json, sys
r = {x["run_id"]: x for x in (json.load(open(p)) for p in glob.glob(sys.argv[1] + "/runs/*/run.json"))}
assert [(x["gpu_share"], x["jobs"]) for x in r.values()] == [(3, 3)], r
PY
run "$W/s2" --device guard --gpu-share 2 --jobs 6
expect_eq "$(peak "$W/s2")" "2 guard" "--gpu-share 2 --jobs 6: the slots bound it"
run "$W/cpu" --device cpu --gpu-share 3
expect_eq "$(peak "$W/cpu")" "1 cpu" "--device cpu: no GPU slots, one job"
for st in jobs s3 s2 cpu; do
    [ "$(outputs "$W/$st")" = "$(outputs "$W/one")" ] || fail "outputs of $st differ from one at a time"
done
# bad values are usage errors, before anything runs
for v in 0 65 x; do
    "$HX_TEST" run share.yaml --store "$W/bad" --device guard --gpu-share "$v" >bad.log 2>&1 && fail "--gpu-share $v accepted"
    grep -q -- "--gpu-share" bad.log || fail "the error for --gpu-share $v should name the option: $(cat bad.log)"
done
[ ! -d "$W/bad/store" ] || [ -z "$(ls "$W/bad/store")" ] || fail "something ran with a bad --gpu-share"
echo "gpu_share: ok"
