#!/usr/bin/env bash
# bench.sh - `make bench` (cpu) / `make bench-cuda` (cuda): the engine's benchmark commands in one table-producing
# run. Numbers go in notes, never in tests. Usage: scripts/bench.sh cpu [quick]   (quick: short lengths only)
set -euo pipefail
cd "$(dirname "$0")/.."
HX=${HX:-build/hx}
mode=${1:-cpu}; quick=${2:-}
if [ "$mode" = cuda ]; then exec bash scripts/bench_cuda.sh "${@:2}"; fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
lens=512,2048,8192; [ "$quick" = quick ] && lens=512,2048

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $($HX version)"
echo "== training step tokens/s (Qwen3, fwd + bwd + AdamW)"
$HX bench train --shape tiny --batch 8 --seq 128
$HX bench train --shape small --batch 4 --seq 128
echo "== inference tokens/s (prefill, KV-cache decode)"
$HX bench infer --shape tiny --batch 4 --seq 128
$HX bench infer --shape small --batch 4 --seq 128
echo "== KDA layer vs attention layer (d 1024, 16/8 heads x 128), tokens/s"
$HX bench kda --lengths $lens
echo "== decode memory per sequence, Qwen3-0.6B shape: teacher KV cache vs hybrid (paper layout)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/config.json" <<'JSON'
{"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
 "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
 "rms_norm_eps": 1e-6, "rope_theta": 1000000, "tie_word_embeddings": true, "torch_dtype": "bfloat16"}
JSON
$HX bench memory --config "$tmp/config.json" --lengths 4096,32768,131072
echo "== tokenizer: Qwen3 encoding MB/s on the Brown corpus"
$HX tokenize --bench --threads 1
$HX tokenize --bench --threads "$(nproc)"
