/* cuda_stream.c - continuous batching on the GPU: nn_generate_stream through 1, 7 and 64 slots == each prompt alone;
 * frozen inference weights (bf16 copy read by the matmuls; gemv.cu at M <= 16) == converting them on every matmul,
 * and through 1, 7 and 64 slots == each prompt alone with them too. */
#include "tests/cuda/model_check.h"

enum { NP = 80, MAXP = 70, NEW = 16 };

/* Item b stops after 1 + (b * 5) % NEW tokens: slots free at different steps and the next prompts refill them. */
static int stop_after(void *ud, int b, const int32_t *gen, int n)
{
    (void)ud;
    (void)gen;
    return n >= 1 + (b * 5) % NEW;
}

/*
 * The same tokens as nn_generate of each prompt alone on the same device. A GEMM whose result for a row depended on
 * the other rows (another cuBLASLt algorithm for another M) could flip an argmax only at a near-tie: a difference
 * counts as a failure unless the alone run's logits of the two tokens at the first differing position are within
 * TIE of its largest logit (reported; the CPU test, tests/unit/test_generate_stream.c, asserts exact equality).
 */
#define TIE 2e-2
static int check(k_backend *dev, const nn_config *c, const char *name, int frozen)
{
    nn_model *m = mc_model(dev, c, 21, 10);
    if (frozen) nn_model_freeze(m); /* alone (M = 1) and up to 16 slots: gemv.cu; 64 slots: cuBLASLt, both */
    int32_t *pr[NP];
    int lens[NP];
    hx_rng r;
    hx_rng_seed(&r, 42);
    for (int b = 0; b < NP; b++) {
        lens[b] = b == 0 ? MAXP : 1 + (int)hx_rng_below(&r, MAXP);
        pr[b] = xmalloc((size_t)lens[b] * sizeof(int32_t));
        for (int t = 0; t < lens[b]; t++) pr[b][t] = (int32_t)hx_rng_below(&r, (uint64_t)c->vocab);
    }
    int32_t *alone[NP], *one[1];
    int n_alone[NP], fails = 0;
    for (int b = 0; b < NP; b++) {
        nn_gen_opts ob = {.max_new = 1 + (b * 5) % NEW};
        if (nn_generate(m, (const int32_t *const *)&pr[b], &lens[b], 1, &ob, one, &n_alone[b])) {
            fprintf(stderr, "%s generate: %s\n", name, hx_last_error());
            exit(1);
        }
        alone[b] = one[0];
    }
    static const int slots[3] = {1, 7, 64};
    nn_gen_opts o = {.max_new = NEW, .stop = stop_after};
    for (int k = 0; k < 3; k++) {
        int32_t *out[NP];
        int n_out[NP], exact = 0;
        double worst = 0;
        if (nn_generate_stream(m, (const int32_t *const *)pr, lens, NP, slots[k], &o, out, n_out)) {
            fprintf(stderr, "%s stream: %s\n", name, hx_last_error());
            exit(1);
        }
        for (int b = 0; b < NP; b++) {
            int j = 0;
            while (j < n_out[b] && j < n_alone[b] && out[b][j] == alone[b][j]) j++;
            if (j == n_alone[b] && n_out[b] == n_alone[b]) {
                exact++;
            } else if (j < n_out[b] && j < n_alone[b]) { /* a different token at j: how near a tie was it? */
                int32_t *seq = xmalloc((size_t)(lens[b] + j) * sizeof(int32_t));
                memcpy(seq, pr[b], (size_t)lens[b] * sizeof(int32_t));
                memcpy(seq + lens[b], alone[b], (size_t)j * sizeof(int32_t));
                float *lg = mc_last_logits(m, seq, lens[b] + j);
                double mx = 0;
                for (int v = 0; v < c->vocab; v++) mx = fmax(mx, fabs(lg[v]));
                worst = fmax(worst, fabs(lg[alone[b][j]] - lg[out[b][j]]) / mx);
                free(lg);
                free(seq);
            } else {
                worst = INFINITY; /* the same tokens but another count: the stop bookkeeping is wrong */
            }
            free(out[b]);
        }
        char what[96];
        snprintf(what, sizeof what, "%s: %d slots, %d/%d items exact (near-tie gap)", name, slots[k], exact, NP);
        fails += mc_report(what, worst, TIE);
    }
    for (int b = 0; b < NP; b++) {
        free(alone[b]);
        free(pr[b]);
    }
    nn_model_free(m);
    return fails;
}

/*
 * nn_model_freeze: the matmuls read the weights' bf16 copy instead of converting them. The bf16 operands are the
 * same values, so only cuBLASLt's algorithm (chosen per operand alignment) can change the fp32 sums: logits within
 * 1e-4 (relative norm), greedy tokens of 80 prompts through 64 slots equal up to near-ties (TIE).
 */
static int check_frozen(k_backend *dev, const nn_config *c, const char *name)
{
    nn_model *m = mc_model(dev, c, 21, 10);
    int32_t *pr[NP], *out[2][NP];
    int lens[NP], n_out[2][NP], fails = 0;
    hx_rng r;
    hx_rng_seed(&r, 7);
    for (int b = 0; b < NP; b++) {
        lens[b] = 1 + (int)hx_rng_below(&r, MAXP);
        pr[b] = xmalloc((size_t)lens[b] * sizeof(int32_t));
        for (int t = 0; t < lens[b]; t++) pr[b][t] = (int32_t)hx_rng_below(&r, (uint64_t)c->vocab);
    }
    nn_gen_opts o = {.max_new = NEW};
    float *lg[2];
    nn_gen_times tm[2];
    for (int f = 0; f < 2; f++) {
        if (f) nn_model_freeze(m);
        lg[f] = mc_last_logits(m, pr[0], lens[0]);
        o.times = &tm[f];
        if (nn_generate_stream(m, (const int32_t *const *)pr, lens, NP, 64, &o, out[f], n_out[f])) {
            fprintf(stderr, "%s stream: %s\n", name, hx_last_error());
            exit(1);
        }
    }
    char what[96];
    snprintf(what, sizeof what, "%s: frozen weights, logits", name);
    fails += mc_report(what, mc_relnorm(lg[1], lg[0], (size_t)c->vocab), 1e-4);
    int exact = 0;
    double worst = 0;
    for (int b = 0; b < NP; b++) {
        int j = 0;
        while (j < n_out[0][b] && j < n_out[1][b] && out[0][b][j] == out[1][b][j]) j++;
        if (j == n_out[0][b] && n_out[0][b] == n_out[1][b]) exact++;
        else if (j < n_out[0][b] && j < n_out[1][b]) {
            int32_t *seq = xmalloc((size_t)(lens[b] + j) * sizeof(int32_t));
            memcpy(seq, pr[b], (size_t)lens[b] * sizeof(int32_t));
            memcpy(seq + lens[b], out[0][b], (size_t)j * sizeof(int32_t));
            float *l = mc_last_logits(m, seq, lens[b] + j);
            double mx = 0;
            for (int v = 0; v < c->vocab; v++) mx = fmax(mx, fabs(l[v]));
            worst = fmax(worst, fabs(l[out[0][b][j]] - l[out[1][b][j]]) / mx);
            free(l);
            free(seq);
        } else
            worst = INFINITY;
        free(out[0][b]);
        free(out[1][b]);
        free(pr[b]);
    }
    snprintf(what, sizeof what, "%s: frozen weights, %d/%d items exact (near-tie gap)", name, exact, NP);
    fails += mc_report(what, worst, TIE);
    printf("  %s: decode %.3f ms/step converting weights, %.3f ms/step frozen (64 slots)\n", name,
           1e3 * tm[0].decode_s / (tm[0].decode_steps ? tm[0].decode_steps : 1),
           1e3 * tm[1].decode_s / (tm[1].decode_steps ? tm[1].decode_steps : 1));
    free(lg[0]);
    free(lg[1]);
    nn_model_free(m);
    return fails;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    k_backend *gpu = k_backend_new("cuda", 0);
    if (!gpu) {
        fprintf(stderr, "cuda_stream: %s\n", hx_last_error());
        return 1;
    }
    nn_config q, h, q128, h128;
    mc_cfg_qwen3(&q);
    mc_cfg_hybrid(&h);
    nn_config_qwen3(&q128, 131, 256, 2, 4, 2, 128, 384);
    mc_cfg_hybrid_shape(&h128, 256, 2, 1, 128, 384, 16);
    int fails = check(gpu, &q, "qwen3", 0) + check(gpu, &h, "hybrid", 0) + check(gpu, &q128, "qwen3 head_dim 128", 0) +
                check(gpu, &h128, "hybrid head_dim 128", 0);
    fails += check(gpu, &q, "qwen3 frozen", 1) + check(gpu, &h, "hybrid frozen", 1) +
             check(gpu, &q128, "qwen3 head_dim 128 frozen", 1);
    fails += check_frozen(gpu, &q, "qwen3") + check_frozen(gpu, &h, "hybrid") +
             check_frozen(gpu, &q128, "qwen3 head_dim 128") + check_frozen(gpu, &h128, "hybrid head_dim 128");
    printf("cuda_stream: %d failed\n", fails);
    k_backend_free(gpu);
    return fails != 0;
}
