/* memory.h - per-sequence decode memory of a model config: attention KV cache vs KDA recurrent + conv state. */
#ifndef NN_MEMORY_H
#define NN_MEMORY_H

#include <stddef.h>
#include "nn/model.h"

typedef struct nn_mem {
    int n_attn, n_linear;      /* layers by mixer kind */
    size_t kv_per_token;       /* bytes of K and V per token over all attention layers */
    size_t kv_bytes;           /* KV cache at the context length */
    size_t state_bytes;        /* KDA/GDN: fp32 state Hq*K*K + conv caches (W-1)*(Hq+2Hkv)*K, per layer; fixed */
} nn_mem;

/*
 * Bytes per sequence at ctx tokens. kv_elem: bytes of one cached K/V (and conv cache) element: 2 for bf16 (the
 * CUDA path and the spec's accounting), 4 for the fp32 CPU engine. The recurrent state is fp32 always.
 * Qwen3-0.6B: 28 * 2 * 8 * 128 * 2 = 114,688 bytes per token.
 */
void nn_memory_per_seq(const nn_config *c, long long ctx, int kv_elem, nn_mem *out);

#endif
