/* test_recompute.c - activation recomputation: the same loss, gradients and weights, bit for bit, in less memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/cuda/model_check.h"

/*
 * Two copies of one model on the CPU, one with nn_model_set_recompute: every layer keeps only its input and the
 * backward re-runs the layer's forward. The ops are deterministic, so losses, every gradient and the weights after
 * AdamW steps must be equal exactly, for Qwen3 (GQA) and for a hybrid with kda, attention and gdn layers, on packed
 * rows with document segments; the activation buffer must shrink.
 */
/* The layer-wise path of the align stage: forward of every block alone (each from the previous block's output),
 * then the backwards in reverse order; with recomputation each backward rebuilds its block first. */
static void layerwise_pair(const nn_config *c, int B, int T)
{
    k_backend *be = k_backend_new("cpu", 2);
    nn_model *m[2] = {mc_model(be, c, 6, 1), mc_model(be, c, 6, 1)};
    nn_model_set_recompute(m[1], 1);
    size_t N = (size_t)B * T, nd = N * c->d;
    int L = c->n_layers;
    int32_t *ids = xmalloc(N * sizeof *ids), *seg = xmalloc(N * sizeof *seg);
    hx_rng r;
    hx_rng_seed(&r, 4);
    for (size_t i = 0; i < N; i++) {
        ids[i] = (int32_t)hx_rng_below(&r, (uint64_t)c->vocab);
        seg[i] = (int32_t)(i / 23);
    }
    float *hx = xmalloc(nd * sizeof(float)), *hd = xmalloc(nd * sizeof(float));
    for (size_t i = 0; i < nd; i++) {
        hx[i] = (float)(hx_rng_uniform(&r) * 2 - 1);
        hd[i] = (float)(hx_rng_uniform(&r) * 2 - 1);
    }
    float *out[2];
    for (int i = 0; i < 2; i++) {
        nn_model *mm = m[i];
        assert_int_equal(nn_model_set_trainable(mm, NN_ALL_GROUPS), 0);
        assert_int_equal(nn_model_prepare(mm, B, T, NN_ACT_TRAIN), 0);
        nn_model_zero_grad(mm);
        float *x = k_alloc_f32(be, nd * (L + 1)), *dy = k_alloc_f32(be, nd), *dx = k_alloc_f32(be, nd);
        be->op->upload(be, x, hx, nd * sizeof(float));
        be->op->upload(be, dy, hd, nd * sizeof(float));
        nn_batch bt = {.B = B, .T = T, .ids = ids, .seg = seg};
        for (int l = 0; l < L; l++) {
            assert_int_equal(nn_model_layer_forward(mm, l, &bt, x + nd * l, NULL, x + nd * (l + 1)), 0);
        }
        for (int l = L - 1; l >= 0; l--) {
            /* layer l's forward must be the last one for the backward: redo it (as the align stage does) */
            assert_int_equal(nn_model_layer_forward(mm, l, &bt, x + nd * l, NULL, NULL), 0);
            be->op->zero(be, dx, nd * sizeof(float));
            assert_int_equal(nn_model_layer_backward(mm, l, NULL, dy, dx), 0);
            be->op->copy(be, dy, dx, nd * sizeof(float));
        }
        out[i] = mc_download(mm, mm->g, mm->n_gfloats);
        be->op->free(be, x);
        be->op->free(be, dy);
        be->op->free(be, dx);
    }
    assert_memory_equal(out[0], out[1], m[0]->n_gfloats * sizeof(float));
    free(out[0]); free(out[1]); free(hx); free(hd); free(ids); free(seg);
    nn_model_free(m[0]);
    nn_model_free(m[1]);
    k_backend_free(be);
}

static void test_recompute_qwen3(void **state)
{
    (void)state;
    nn_config c;
    mc_cfg_qwen3(&c);
    k_backend *be = k_backend_new("cpu", 2);
    assert_int_equal(mc_recompute(be, &c, "qwen3", 2, 40, 3), 0);
    k_backend_free(be);
}

static void test_recompute_hybrid(void **state)
{
    (void)state;
    nn_config c;
    mc_cfg_hybrid(&c);
    k_backend *be = k_backend_new("cpu", 2);
    assert_int_equal(mc_recompute(be, &c, "hybrid", 2, 70, 3), 0); /* 70: a full KDA chunk and a partial one */
    k_backend_free(be);
}

static void test_recompute_layerwise(void **state)
{
    (void)state;
    nn_config c;
    mc_cfg_hybrid(&c);
    layerwise_pair(&c, 2, 50);
}

static void test_recompute_memory_accounting(void **state)
{
    (void)state;
    k_backend *be = k_backend_new("cpu", 1);
    size_t base = be->mem_in_use;
    float *a = k_alloc_f32(be, 1000), *b = k_alloc_f32(be, 10);
    assert_int_equal(be->mem_in_use - base, 4032 + 64); /* 64-byte granules */
    be->op->free(be, a);
    assert_int_equal(be->mem_in_use - base, 64);
    assert_int_equal(be->mem_peak - base, 4096);
    k_mem_reset_peak(be);
    assert_int_equal(be->mem_peak, be->mem_in_use);
    be->op->free(be, b);
    assert_int_equal(be->mem_in_use, base);
    k_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recompute_qwen3),
        cmocka_unit_test(test_recompute_hybrid),
        cmocka_unit_test(test_recompute_layerwise),
        cmocka_unit_test(test_recompute_memory_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
