#!/usr/bin/env bash
# crash_inputs.sh - inputs that crashed hx: NaN log-probabilities in `hx score` (written as JSON null), thread
# counts beyond HX_MAX_THREADS (refused, or clamped from OMP_NUM_THREADS), and `hx export -o` onto a FIFO, a
# directory or a symlink (refused, the target untouched).
. "$(dirname "$0")/lib_interp.inc"
: "${HX:?}"

# A Qwen3 checkpoint whose every weight is NaN, with the pinned tokenizer's vocabulary: its log-probabilities
# are NaN. (Made here: 1 layer, hidden 8, bf16 NaN = 0x7fc0; 2.4 MB.)
python3 - "$W/nan" <<'EOF'
import json, os, struct, sys
d = sys.argv[1]; os.makedirs(d)
V, H, F = 151936, 8, 8
cfg = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": V, "hidden_size": H,
       "intermediate_size": F, "num_hidden_layers": 1, "num_attention_heads": 1, "num_key_value_heads": 1,
       "head_dim": H, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": True,
       "max_position_embeddings": 64, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
p = "model.layers.0."
shapes = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H], p + "input_layernorm.weight": [H],
          p + "post_attention_layernorm.weight": [H], p + "mlp.down_proj.weight": [H, F],
          p + "mlp.gate_proj.weight": [F, H], p + "mlp.up_proj.weight": [F, H], p + "self_attn.k_norm.weight": [H],
          p + "self_attn.q_norm.weight": [H], p + "self_attn.k_proj.weight": [H, H],
          p + "self_attn.q_proj.weight": [H, H], p + "self_attn.v_proj.weight": [H, H],
          p + "self_attn.o_proj.weight": [H, H]}
hdr, off = {}, 0
for k, s in shapes.items():
    n = 2 * s[0] * (s[1] if len(s) > 1 else 1)
    hdr[k] = {"dtype": "BF16", "shape": s, "data_offsets": [off, off + n]}
    off += n
h = json.dumps(hdr).encode()
with open(os.path.join(d, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"\xc0\x7f" * (off // 2))
EOF
"$HX" score "$W/nan" --tokenizer qwen3 -c "The cat" -x " sat" -c "A" -x " b" >score.jsonl 2>score.err ||
    fail "hx score on NaN weights: exit $?: $(tail -3 score.err)"
python3 - score.jsonl <<'EOF' || fail "hx score output: $(cat score.jsonl)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
assert all(r["logp"] is None and r["n_tokens"] >= 1 and r["context"] for r in rows), rows
EOF

# Every JSON writer goes through hx_json_num / hx_json_numf (base.h): no other json_real() and no json_pack "f"
# (canon.c and recipe_yaml.c build reals only from finite values they checked)
bad=$(cd "$TOP" && grep -rn --include=*.c -E '\bjson_real\(' base cli interp stages nn world evalsuite reports kernels |
      grep -v -E '^(base/files.c|interp/canon.c|interp/recipe_yaml.c):' || true)
[ -z "$bad" ] || fail "json_real outside hx_json_num: $bad"
bad=$(cd "$TOP" && grep -rn --include=*.c -E 'json_pack\("[^"]*(:|\[|,)f' base cli interp stages nn world evalsuite reports kernels || true)
[ -z "$bad" ] || fail "json_pack with a double (use \"o\" and hx_json_num): $bad"

# --threads: beyond HX_MAX_THREADS (1024) is a usage error for every command that takes it
for cmd in "score $W/nan --tokenizer qwen3 -c a -x b" "generate $W/nan --tokenizer qwen3 -p a" \
           "tokenize --bench" "conform $TOP/tests/fixtures/qwen3_tiny_tied" "bench kda"; do
    rc=0; timeout 60 "$HX" $cmd --threads 100000 >out.txt 2>&1 || rc=$?
    expect_eq "$rc" 2 "hx $cmd --threads 100000"
    grep -q -- "--threads expects an integer from 1 to 1024, got '100000'" out.txt || fail "hx $cmd: $(cat out.txt)"
done
rc=0; "$HX" run "$R/interp_chain.yaml" --threads 100000 --store "$W/t" >out.txt 2>&1 || rc=$?
expect_eq "$rc" 2 "hx run --threads 100000"
grep -q -- "--threads expects an integer from 1 to 1024" out.txt || fail "hx run --threads: $(cat out.txt)"
# ... and OMP_NUM_THREADS beyond it is clamped where hx takes its default from it
OMP_NUM_THREADS=100000 timeout 60 "$HX" score "$W/nan" --tokenizer qwen3 -c a -x " b" >out.txt 2>&1 ||
    fail "OMP_NUM_THREADS=100000 hx score: exit $?: $(tail -3 out.txt)"
grep -q '"logp":null' out.txt || fail "OMP_NUM_THREADS=100000 hx score: $(cat out.txt)"

# hx export -o: the target may be a new name or a regular file, nothing else; a refused target is untouched
cp "$R/interp_chain.yaml" chain.yaml
"$HX_TEST" run chain.yaml --store "$W/s" >/dev/null 2>&1 || fail "run chain"
mkfifo fifo && mkdir dir && echo keep >target.txt && ln -s target.txt link
for t in fifo dir link; do
    rc=0; "$HX_TEST" export latest -o "$t" --store "$W/s" >out.txt 2>&1 || rc=$?
    expect_eq "$rc" 2 "export -o $t"
    grep -q "'$t' exists and is not a regular file" out.txt || fail "export -o $t: $(cat out.txt)"
done
[ -p fifo ] && [ -d dir ] && [ -L link ] || fail "a refused target was replaced"
expect_eq "$(cat target.txt)" keep "the link's target"
echo old >old.tar.zst
"$HX_TEST" export latest -o old.tar.zst --store "$W/s" >/dev/null || fail "export over a regular file"
zstd -dcq old.tar.zst | tar -tf - >members.txt || fail "the regular file was not replaced by an archive"
grep -qx hx-export.json members.txt || fail "the regular file was not replaced by the archive: $(head -3 members.txt)"
# an entry whose manifest is empty: export names it (the message read freed memory; found by fuzz_manifest)
m=$(find "$W/s/store" -name manifest.json | head -1); k=$(basename "$(dirname "$m")")
: >"$m"
rc=0; "$HX_TEST" export "${k:0:12}" -o empty_manifest.tar.zst --store "$W/s" >out.txt 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "export of an entry with an empty manifest succeeded"
grep -q "store entry ${k:0:12}: $m:" out.txt || fail "export with an empty manifest: $(cat out.txt)"
"$HX_TEST" run chain.yaml --store "$W/s" >/dev/null 2>&1 || fail "re-run after the manifest was emptied"
# an output in the store replaced by a FIFO: export refuses it instead of blocking on open
f=$(find "$W/s/store" -name data.txt | head -1)
rm -f "$f" && mkfifo "$f"
rc=0; timeout 30 "$HX_TEST" export latest -o fifo_out.tar.zst --store "$W/s" >out.txt 2>&1 || rc=$?
expect_eq "$rc" 3 "export of an entry whose output is a FIFO"
grep -q "'$f' is not a regular file (a FIFO)" out.txt || fail "export with a FIFO output: $(cat out.txt)"
echo "crash_inputs: ok"
