/* memory.c - decode memory accounting per sequence (issue 6 item 5): KV cache grows with context, KDA state not. */
#include "nn/memory.h"

void nn_memory_per_seq(const nn_config *c, long long ctx, int kv_elem, nn_mem *m)
{
    const size_t K = (size_t)c->head_dim, Hq = (size_t)c->n_heads, Hkv = (size_t)c->n_kv_heads;
    m->n_attn = m->n_linear = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->mixer[l] == NN_MIX_ATTN) m->n_attn++;
        else m->n_linear++;
    }
    m->kv_per_token = (size_t)m->n_attn * 2 * Hkv * K * (size_t)kv_elem;
    m->kv_bytes = m->kv_per_token * (size_t)(ctx > 0 ? ctx : 0);
    size_t W1 = c->conv_size > 1 ? (size_t)c->conv_size - 1 : 0;
    m->state_bytes = (size_t)m->n_linear * (Hq * K * K * 4 + W1 * (Hq + 2 * Hkv) * K * (size_t)kv_elem);
}
