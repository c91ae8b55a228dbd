/* test_train.c - packed loader (segments, positions, targets), schedules, loss decreases, resume == uninterrupted,
 * checkpoint digests and the fallback past a damaged state. */
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
#include "nn/train.h"
#include "test_util.h"
#include "test_nn_util.h"

static k_backend *be;

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
    s.kind = NN_SCHED_WSD; /* warmup 10, stable to step 90 (80% of the 100 after warmup), linear decay to 110 */
    assert_float_equal(nn_sched_lr(&s, 4), 0.5, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 10), 1.0, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 80), 1.0, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 90), 1.0, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 95), 0.775, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 100), 0.55, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 110), 0.1, 1e-12);
    assert_float_equal(nn_sched_lr(&s, 200), 0.1, 1e-12); /* past the end: min_lr */
    s.decay_frac = 0;                                     /* no decay: constant after warmup */
    assert_float_equal(nn_sched_lr(&s, 109), 1.0, 1e-12);
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
    tn_pattern_data(&d, 3000, 3, 9, 30);
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
    char *dir = tu_path("resume");
    assert_int_equal(nn_train_save(&tb, dir, NULL), 0);
    nn_trainer_release(&tb);
    nn_model_free(b);
    nn_model *c = small_model(); /* a fresh process: new weights, restored from the state */
    nn_trainer tc;
    assert_int_equal(nn_trainer_init(&tc, c, &d, 4, 32, &s, 2), 0);
    assert_int_equal(nn_train_resume(&tc, dir, NULL), 1);
    assert_int_equal(tc.step, 4);
    for (int i = 4; i < 8; i++) assert_int_equal(nn_train_step(&tc, NULL, NULL, NULL), 0);
    assert_memory_equal(c->p, a->p, a->n_floats * sizeof(float));
    assert_memory_equal(c->m, a->m, a->n_gfloats * sizeof(float));
    assert_int_equal(tc.tokens, ta.tokens);
    /* a second save keeps the first state as the fallback, a third removes it; nothing to resume in an empty
     * directory */
    assert_int_equal(nn_train_save(&tc, dir, NULL), 0);
    char *old = hx_path_join(dir, "state-00000004.safetensors");
    assert_true(hx_file_exists(old));
    assert_int_equal(nn_train_step(&tc, NULL, NULL, NULL), 0);
    assert_int_equal(nn_train_save(&tc, dir, NULL), 0);
    assert_false(hx_file_exists(old));
    free(old);
    char *empty = tu_path("none");
    assert_int_equal(nn_train_resume(&tc, empty, NULL), 0);
    free(empty);
    nn_trainer_release(&ta);
    nn_trainer_release(&tc);
    nn_model_free(a);
    nn_model_free(c);
    nn_data_release(&d);
    free(dir);
}

/* Flips two bytes in the middle of a file (its tensor data). */
static void flip2(const char *path)
{
    char *buf;
    size_t len;
    assert_int_equal(hx_read_file(path, &buf, &len), 0);
    buf[len / 2] ^= 0x5a;
    buf[len / 2 + 1] ^= 0x01;
    assert_int_equal(hx_write_file(path, buf, len), 0);
    free(buf);
}

static char *state_path(const char *dir, int step)
{
    char name[64];
    snprintf(name, sizeof name, "state-%08d.safetensors", step);
    return hx_path_join(dir, name);
}

/* Checkpoints carry digests: the saved extra object comes back; a damaged newest state falls back to the one before,
 * with no intact state training starts over from the model as it was; a save after a fallback drops the damaged
 * state. */
static void test_checkpoint_digests(void **state)
{
    (void)state;
    nn_data d;
    tn_pattern_data(&d, 3000, 3, 9, 30);
    nn_sched s = {.kind = NN_SCHED_CONSTANT, .lr = 1e-2, .warmup = 1, .total = 8};
    char *dir = tu_path("digests");
    nn_model *a = small_model(), *init = small_model();
    nn_trainer ta;
    assert_int_equal(nn_trainer_init(&ta, a, &d, 2, 16, &s, 1), 0);
    size_t nb = a->n_floats * sizeof(float);
    float *at2 = xmalloc(nb), *at4 = xmalloc(nb);
    for (int i = 0; i < 2; i++) assert_int_equal(nn_train_step(&ta, NULL, NULL, NULL), 0);
    memcpy(at2, a->p, nb);
    assert_int_equal(nn_train_save(&ta, dir, NULL), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(nn_train_step(&ta, NULL, NULL, NULL), 0);
    memcpy(at4, a->p, nb);
    json_t *extra = json_pack("{s:i, s:f}", "n", 3, "loss", 1.0 / 3.0);
    assert_int_equal(nn_train_save(&ta, dir, extra), 0);
    json_decref(extra);
    /* state.json lists step 4 then step 2, each with a SHA-256 */
    char *jp = hx_path_join(dir, "state.json");
    json_t *j = json_load_file(jp, 0, NULL);
    assert_non_null(j);
    json_t *list = json_object_get(j, "states");
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "step")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "step")), 2);
    assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(list, 0), "sha256"))), 64);
    json_decref(j);

    /* intact: step 4 and its extra object, exactly */
    nn_model *b = small_model();
    nn_trainer tb;
    assert_int_equal(nn_trainer_init(&tb, b, &d, 2, 16, &s, 1), 0);
    json_t *got = NULL;
    assert_int_equal(nn_train_resume(&tb, dir, &got), 1);
    assert_int_equal(tb.step, 4);
    assert_memory_equal(b->p, at4, nb);
    assert_non_null(got);
    assert_int_equal(json_integer_value(json_object_get(got, "n")), 3);
    assert_true(json_real_value(json_object_get(got, "loss")) == 1.0 / 3.0);
    json_decref(got);
    nn_trainer_release(&tb);
    nn_model_free(b);

    /* two bytes of step 4 flipped: back to step 2 (no extra saved there) */
    char *p4 = state_path(dir, 4), *p2 = state_path(dir, 2);
    flip2(p4);
    b = small_model();
    assert_int_equal(nn_trainer_init(&tb, b, &d, 2, 16, &s, 1), 0);
    assert_int_equal(nn_train_resume(&tb, dir, &got), 1);
    assert_int_equal(tb.step, 2);
    assert_null(got);
    assert_memory_equal(b->p, at2, nb);
    /* training on from step 2 and saving at step 3 drops the damaged step-4 state */
    assert_int_equal(nn_train_step(&tb, NULL, NULL, NULL), 0);
    assert_int_equal(nn_train_save(&tb, dir, NULL), 0);
    assert_false(hx_file_exists(p4));
    j = json_load_file(jp, 0, NULL);
    list = json_object_get(j, "states");
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "step")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "step")), 2);
    json_decref(j);
    nn_trainer_release(&tb);
    nn_model_free(b);

    /* every state damaged: nothing restored, the model untouched, the step 0 */
    char *p3 = state_path(dir, 3);
    flip2(p3);
    flip2(p2);
    b = small_model();
    assert_int_equal(nn_trainer_init(&tb, b, &d, 2, 16, &s, 1), 0);
    assert_int_equal(nn_train_resume(&tb, dir, &got), 0);
    assert_int_equal(tb.step, 0);
    assert_memory_equal(b->p, init->p, nb);
    nn_trainer_release(&tb);
    nn_model_free(b);

    /* an unreadable state.json: start over as well */
    assert_int_equal(hx_write_file(jp, "{\"states\": [", 12), 0);
    b = small_model();
    assert_int_equal(nn_trainer_init(&tb, b, &d, 2, 16, &s, 1), 0);
    assert_int_equal(nn_train_resume(&tb, dir, NULL), 0);
    assert_int_equal(tb.step, 0);
    nn_trainer_release(&tb);
    nn_model_free(b);

    free(p2);
    free(p3);
    free(p4);
    free(jp);
    free(at2);
    free(at4);
    nn_trainer_release(&ta);
    nn_model_free(a);
    nn_model_free(init);
    nn_data_release(&d);
    free(dir);
}

int main(void)
{
    be = k_cpu_new(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_train_and_resume),
        cmocka_unit_test(test_checkpoint_digests),
    };
    int r = cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
    k_backend_free(be);
    return r;
}
