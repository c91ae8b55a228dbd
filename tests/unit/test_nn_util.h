/* test_nn_util.h - shared helpers of the engine's training unit tests (test_train.c, test_distill.c). */
#ifndef TEST_NN_UTIL_H
#define TEST_NN_UTIL_H

#include <stdint.h>
#include <string.h>

#include "base/base.h"
#include "nn/train.h"

/* N tokens of short "documents" (seed 3): each MIN_LEN + [0, SPREAD) tokens of an arithmetic pattern
 * 1 + (start + 3k) % MOD (start in [1, 20]), ended by eos = 0; the caller releases D (nn_data_release). */
static inline void tn_pattern_data(nn_data *d, size_t n, int min_len, int spread, int mod)
{
    memset(d, 0, sizeof *d);
    d->tok = xmalloc(n * sizeof(int32_t));
    d->n = n;
    d->eos = 0;
    hx_rng r;
    hx_rng_seed(&r, 3);
    size_t i = 0;
    while (i < n) {
        int len = min_len + (int)hx_rng_below(&r, (uint64_t)spread), start = 1 + (int)hx_rng_below(&r, 20);
        for (int k = 0; k < len && i < n; k++) d->tok[i++] = 1 + (start + 3 * k) % mod;
        if (i < n) d->tok[i++] = 0;
        d->n_docs++;
    }
}

#endif
