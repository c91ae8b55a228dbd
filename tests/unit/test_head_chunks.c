/* test_head_chunks.c - the LM head by row chunks: many chunks give what one chunk gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/cuda/model_check.h"
#include "nn/distill_loss.h"

/*
 * nn_model_head takes the [B*T, V] logits a chunk of rows at a time (NN_HEAD_FLOATS bounds a chunk); the test
 * models are small enough for one chunk, so nn_model_set_head_floats makes them take chunks of 7 rows (the last
 * one shorter). Per row the logits, the loss and d(hidden) are the same operations either way; the head's weight
 * gradient sums its rows in other groups, so the gradients agree to fp32 rounding, not bit for bit. Cross-entropy
 * training (Qwen3 and the hybrid, packed rows) and distillation (KL + CE, the teacher's logits by chunks too).
 */
enum { B = 2, T = 37, CHUNK_ROWS = 7 };

/* the loss and every gradient of one step (train: xent; else distill kl+ce against a teacher) */
static double step(const nn_config *c, int chunked, int distill, float **g, size_t *ng)
{
    k_backend *be = k_backend_new("cpu", 2);
    nn_model *m = mc_model(be, c, 6, 1), *t = distill ? mc_model(be, c, 11, 1) : NULL;
    if (chunked) nn_model_set_head_floats(m, (size_t)CHUNK_ROWS * c->vocab);
    if (t && chunked) nn_model_set_head_floats(t, (size_t)CHUNK_ROWS * c->vocab);
    assert_int_equal(nn_model_set_trainable(m, NN_ALL_GROUPS), 0);
    int32_t ids[B * T], tg[B * T], seg[B * T];
    hx_rng r;
    hx_rng_seed(&r, 3);
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)hx_rng_below(&r, (uint64_t)c->vocab);
        seg[i] = (i % T) / 15;
    }
    for (int i = 0; i < B * T; i++) tg[i] = i % T == T - 1 || i % 5 == 2 ? -100 : ids[(i + 1) % (B * T)];
    nn_batch bt = {.B = B, .T = T, .ids = ids, .seg = seg};
    double loss;
    nn_model_zero_grad(m);
    if (distill) {
        nn_distill ds;
        nn_distill_loss L;
        assert_int_equal(nn_distill_init(&ds, m, t, B, T, NN_OBJ_KL_CE, 0.5f, 2.0f), 0);
        assert_int_equal(nn_distill_micro(&ds, &bt, tg, 1.0f, 1, &L), 0);
        loss = L.loss;
        nn_distill_release(&ds);
    } else {
        assert_int_equal(nn_model_prepare(m, B, T, NN_ACT_TRAIN), 0);
        assert_int_equal(nn_model_forward(m, &bt, NULL, NULL, NULL), 0);
        assert_int_equal(nn_model_xent(m, tg, 1, 1.0f, &loss, NULL), 0);
        assert_int_equal(nn_model_backward(m), 0);
    }
    assert_int_equal(m->head_rows, chunked ? CHUNK_ROWS : B * T);
    *ng = m->n_gfloats;
    *g = mc_download(m, m->g, m->n_gfloats);
    nn_model_free(m);
    if (t) nn_model_free(t);
    k_backend_free(be);
    return loss;
}

static void check(const nn_config *c, const char *name, int distill)
{
    float *g1, *g7;
    size_t n1, n7;
    double l1 = step(c, 0, distill, &g1, &n1), l7 = step(c, 1, distill, &g7, &n7);
    assert_int_equal(n1, n7);
    double e = mc_relnorm(g7, g1, n1);
    printf("%s %s: loss %.9g (one chunk) vs %.9g (chunks of %d rows), gradients %.2e\n", name,
           distill ? "distill" : "xent", l1, l7, CHUNK_ROWS, e);
    assert_true(fabs(l1 - l7) <= 1e-6 * fabs(l1));
    assert_true(e < 1e-6);
    free(g1);
    free(g7);
}

static void test_head_chunks_qwen3(void **state)
{
    (void)state;
    nn_config c;
    mc_cfg_qwen3(&c);
    check(&c, "qwen3", 0);
    check(&c, "qwen3", 1);
}

static void test_head_chunks_hybrid(void **state)
{
    (void)state;
    nn_config c;
    mc_cfg_hybrid(&c);
    check(&c, "hybrid", 0);
    check(&c, "hybrid", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_chunks_qwen3),
        cmocka_unit_test(test_head_chunks_hybrid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
