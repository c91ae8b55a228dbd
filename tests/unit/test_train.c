/* test_train.c - packed loader (segments, positions, targets), schedules, loss decreases, resume == uninterrupted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "engine/nn/train.h"

static k_backend *be;
static char tmpdir[256];

/* A stream of short "documents" of a repeating pattern, each ended by eos = 0. */
static void make_data(nn_data *d, size_t n)
{
    memset(d, 0, sizeof *d);
    d->tok = xmalloc(n * sizeof(int32_t));
    d->n = n;
    d->eos = 0;
    hx_rng r;
    hx_rng_seed(&r, 3);
    size_t i = 0;
    while (i < n) {
        int len = 3 + (int)hx_rng_below(&r, 9), start = 1 + (int)hx_rng_below(&r, 20);
        for (int k = 0; k < len && i < n; k++) d->tok[i++] = 1 + (start + 3 * k) % 30;
        if (i < n) d->tok[i++] = 0;
        d->n_docs++;
    }
}

static void test_loader(void **state)
{
    (void)state;
    nn_data d = {0};
    int32_t tok[12] = {5, 6, 0, 7, 8, 9, 0, 4, 4, 4, 4, 4};
    d.tok = tok;
    d.n = 12;
    d.eos = 0;
    nn_loader l;
    assert_int_equal(nn_loader_init(&l, &d, 1, 5), 0);
    int32_t ids[5], tg[5], seg[5], pos[5];
    nn_loader_next(&l, ids, tg, seg, pos);
    int32_t e_ids[5] = {5, 6, 0, 7, 8}, e_tg[5] = {6, 0, -100, 8, 9}, e_seg[5] = {0, 0, 0, 1, 1}, e_pos[5] = {0, 1, 2, 0, 1};
    assert_memory_equal(ids, e_ids, sizeof ids);
    assert_memory_equal(tg, e_tg, sizeof tg);
    assert_memory_equal(seg, e_seg, sizeof seg);
    assert_memory_equal(pos, e_pos, sizeof pos);
    nn_loader_next(&l, ids, tg, seg, pos); /* window [5, 11) */
    assert_int_equal(ids[0], 9);
    assert_int_equal(l.epoch, 0);
    nn_loader_next(&l, ids, tg, seg, pos); /* 10 + 6 > 12: wraps */
    assert_int_equal(l.epoch, 1);
    assert_int_equal(ids[0], 5);
    assert_int_equal(nn_loader_init(&l, &d, 1, 12), -1); /* needs T + 1 tokens */
}

static void test_schedules(void **state)
{
    (void)state;
    nn_sched s = {.kind = NN_SCHED_COSINE, .lr = 1.0, .min_lr = 0.1, .warmup = 10, .total = 110, .decay_frac = 0.2};
    assert_float_equal(nn_sched_lr(&s, 0), 0.1, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 9), 1.0, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 10), 1.0, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 60), 0.55, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 110), 0.1, 1e-12);
    s.kind = NN_SCHED_WSD;
    assert_float_equal(nn_sched_lr(&s, 80), 1.0, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 100), 0.55, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 110), 0.1, 1e-12);
    nn_sched_kind k;
    assert_int_equal(nn_sched_parse("wsd", &k), 0);
    assert_int_equal(nn_sched_parse("linear", &k), -1);
}

static nn_model *small_model(void)
{
    nn_config c;
    nn_config_qwen3(&c, 31, 32, 2, 4, 2, 8, 64);
    c.rope_theta = 10000;
    nn_model *m;
    assert_int_equal(nn_model_new(&m, &c, be), 0);
    nn_model_init_random(m, 42);
    nn_model_set_trainable(m, NN_ALL_GROUPS);
    return m;
}

/* The loss of a learnable pattern falls; a run killed after 4 steps and resumed ends bit-identical. */
static void test_train_and_resume(void **state)
{
    (void)state;
    nn_data d;
    make_data(&d, 3000);
    nn_sched s = {.kind = NN_SCHED_COSINE, .lr = 1e-2, .min_lr = 1e-3, .warmup = 2, .total = 8};
    nn_model *a = small_model();
    nn_trainer ta;
    assert_int_equal(nn_trainer_init(&ta, a, &d, 4, 32, &s, 2), 0);
    double first = 0, last = 0, gn, lr;
    for (int i = 0; i < 8; i++) {
        double l;
        assert_int_equal(nn_train_step(&ta, &l, &gn, &lr), 0);
        if (i == 0) first = l;
        last = l;
    }
    assert_true(last < first - 0.3);
    nn_model *b = small_model();
    nn_trainer tb;
    assert_int_equal(nn_trainer_init(&tb, b, &d, 4, 32, &s, 2), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(nn_train_step(&tb, NULL, NULL, NULL), 0);
    char *dir = hx_path_join(tmpdir, "resume");
    assert_int_equal(nn_train_save(&tb, dir), 0);
    nn_trainer_release(&tb);
    nn_model_free(b);
    nn_model *c = small_model(); /* a fresh process: new weights, restored from the state */
    nn_trainer tc;
    assert_int_equal(nn_trainer_init(&tc, c, &d, 4, 32, &s, 2), 0);
    assert_int_equal(nn_train_resume(&tc, dir), 1);
    assert_int_equal(tc.step, 4);
    for (int i = 4; i < 8; i++) assert_int_equal(nn_train_step(&tc, NULL, NULL, NULL), 0);
    assert_memory_equal(c->p, a->p, a->n_floats * sizeof(float));
    assert_memory_equal(c->m, a->m, a->n_gfloats * sizeof(float));
    assert_int_equal(tc.tokens, ta.tokens);
    /* a second save replaces the first state file; nothing to resume in an empty directory */
    assert_int_equal(nn_train_save(&tc, dir), 0);
    char *old = hx_path_join(dir, "state-00000004.safetensors");
    assert_false(hx_file_exists(old));
    free(old);
    char *empty = hx_path_join(tmpdir, "none");
    assert_int_equal(nn_train_resume(&tc, empty), 0);
    free(empty);
    nn_trainer_release(&ta);
    nn_trainer_release(&tc);
    nn_model_free(a);
    nn_model_free(c);
    nn_data_release(&d);
    free(dir);
}

int main(void)
{
    be = k_cpu_new(2);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hx-test-train-%d", (int)getpid());
    hx_mkdir_p(tmpdir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_train_and_resume),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    hx_rm_rf(tmpdir);
    k_backend_free(be);
    return r;
}
