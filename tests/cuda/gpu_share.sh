#!/usr/bin/env bash
# gpu_share.sh - on a GPU machine: `hx run --gpu-share 3` runs three GPU chains (tests/cuda/share.yaml: pretrain ->
# convert -> align -> eval, head dims 16, 64, 128) at once on one GPU, and every output file is byte-identical to
# a run that has them one after another (--jobs 1); at least two GPU stages overlapped. DEVICE=guard runs it on a
# CPU machine with the guard device.
. "$(dirname "$0")/../e2e/lib_e2e.inc"
dev=${DEVICE:-cuda}
R=tests/cuda/share.yaml
# the data and tokenizer made on the CPU machine (scripts/device_prep.sh: tests/cuda/chain_prep.yaml, same keys)
if [ -d .hxdev/store ]; then cp -r .hxdev/store "$T/one"; cp -r .hxdev/store "$T/three"
else
    "$HX" run tests/cuda/chain_prep.yaml --store "$T/one" >"$T/prep.log" 2>&1 || { cat "$T/prep.log"; fail "data/tokenizer"; }
    cp -r "$T/one" "$T/three"
fi
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(date +%s.%N)
"$HX" run "$R" --store "$T/one" --device "$dev" --jobs 1 >"$T/one.log" 2>&1 || { cat "$T/one.log"; fail "--jobs 1 on $dev"; }
t1=$(date +%s.%N)
"$HX" run "$R" --store "$T/three" --device "$dev" --gpu-share 3 >"$T/three.log" 2>&1 ||
    { cat "$T/three.log"; fail "--gpu-share 3 on $dev"; }
t2=$(date +%s.%N)
for f in one three; do
    grep -q "ok (12 executed, 2 cached, 0 failed" "$T/$f.log" || { cat "$T/$f.log"; fail "$f: expected 12 executed"; }
done
# the most GPU stages (pretrain, align, eval) running at once, from the executing/done lines in log order
overlap() {
    awk '/^(teacher|align|eval) .*: executing/ { n++; if (n > m) m = n } /^(teacher|align|eval) .*: done in/ { n-- }
         END { print m + 0 }' "$1"
}
o1=$(overlap "$T/one.log") o3=$(overlap "$T/three.log")
[ "$o1" = 1 ] || fail "--jobs 1 ran $o1 GPU stages at once"
[ "$o3" -ge 2 ] && [ "$o3" -le 3 ] || { cat "$T/three.log"; fail "--gpu-share 3 ran at most $o3 GPU stages at once (want 2 or 3)"; }
digests() { (cd "$1/store" && find . -type f ! -name manifest.json -print0 | sort -z | xargs -0 sha256sum); }
digests "$T/one" >"$T/one.sha"
digests "$T/three" >"$T/three.sha"
diff "$T/one.sha" "$T/three.sha" || fail "outputs with --gpu-share 3 differ from one stage at a time"
echo "gpu_share on $dev: $(wc -l <"$T/one.sha") files identical; one at a time $(secs "$t0" "$t1") s," \
     "--gpu-share 3 $(secs "$t1" "$t2") s (at most $o3 GPU stages at once)"
