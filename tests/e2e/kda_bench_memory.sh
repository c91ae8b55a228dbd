#!/usr/bin/env bash
# kda_bench_memory.sh - hx bench memory on the Qwen3-0.6B shape: the paper hybrid keeps exactly 25% of the KV cache
# (7 of 28 attention layers) plus a fixed state of 21 x (16*128*128*4 + 3*(16+2*8)*128*2) bytes.
set -euo pipefail
HX=${HX:-build/hx}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/config.json" <<'JSON'
{"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024,
 "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
 "head_dim": 128, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06, "rope_theta": 1000000,
 "tie_word_embeddings": true, "torch_dtype": "bfloat16"}
JSON
"$HX" bench memory --config "$tmp/config.json" --lengths 4096,32768,131072 | tee "$tmp/out"
# teacher: 114,688 bytes per token; hybrid: 28,672 per token + 21 * (1,048,576 + 24,576)
awk '$1 == "teacher" && $5 == 131072 { if ($6 != 114688 * 131072) { print "teacher KV wrong: " $6; exit 1 } }
     $1 == "hybrid" && $3 == 131072 { if ($4 != 28672 * 131072 || $5 != 21 * (1048576 + 24576) || $7 != "0.2500") {
         print "hybrid row wrong: " $0; exit 1 } ; ok = 1 }
     END { if (!ok) { print "no hybrid row at 131072"; exit 1 } }' "$tmp/out"
# without the user's OpenMP waiting settings, a compute command re-executes itself once with GOMP_SPINCOUNT
# (cli/main.c): same output, and the re-executed process does not do it again
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$HX" bench memory --config "$tmp/config.json" --lengths 4096,32768,131072 \
    > "$tmp/out2"
cmp "$tmp/out" "$tmp/out2" || { echo "re-executed bench memory differs"; exit 1; }
# bad input is a usage error naming the problem
if "$HX" bench memory --config "$tmp/missing.json" 2>"$tmp/err"; then echo "missing config accepted"; exit 1; fi
grep -q missing.json "$tmp/err"
echo ok
