/* test_generate_stream.c - continuous batching (nn_generate_stream): any number of slots == each prompt alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_kda_util.h"
#include "nn/generate.h"
#include "nn/model.h"

enum { V = 61, NP = 80, MAXP = 70, NEW = 12, STOP_ID = 7 };

/* Item b stops after 1 + (b * 5) % NEW tokens (so slots free at different steps), or at STOP_ID. */
static int stop_after(void *ud, int b, const int32_t *gen, int n)
{
    (void)ud;
    (void)gen;
    return n >= 1 + (b * 5) % NEW;
}

/*
 * 80 prompts of 1..70 tokens, each stopping after its own count of tokens or at a stop id: nn_generate_stream
 * through 1, 7 and 64 slots == nn_generate of each prompt alone (the same tokens, the same count), for Qwen3 and
 * the hybrid (kda, attention, gdn); the old one-batch nn_generate of 64 prompts gives the same tokens too.
 */
static void test_stream_equals_alone(void **state)
{
    (void)state;
    static int32_t pr[NP][MAXP];
    const int32_t *prompts[NP];
    int lens[NP];
    hx_rng r;
    hx_rng_seed(&r, 42);
    for (int b = 0; b < NP; b++) {
        lens[b] = b == 0 ? MAXP : 1 + (int)hx_rng_below(&r, MAXP);
        for (int t = 0; t < lens[b]; t++) pr[b][t] = (int32_t)hx_rng_below(&r, V);
        prompts[b] = pr[b];
    }
    int32_t stop_ids[1] = {STOP_ID};
    nn_gen_opts o = {.max_new = NEW, .stop_ids = stop_ids, .n_stop_ids = 1, .stop = stop_after};
    k_backend *be = k_cpu_new(2);
    for (int hybrid = 1; hybrid >= 0; hybrid--) {
        nn_model *m = tk_tiny_model(be, hybrid, V, 4, 11);
        int32_t *alone[NP], *one[1];
        int n_alone[NP], at_stop_id = 0, early = 0, differ = 0;
        for (int b = 0; b < NP; b++) {
            nn_gen_opts ofull = {.max_new = 1 + (b * 5) % NEW, .stop_ids = stop_ids, .n_stop_ids = 1};
            assert_int_equal(nn_generate(m, &prompts[b], &lens[b], 1, &ofull, one, &n_alone[b]), 0);
            alone[b] = one[0];
            at_stop_id += alone[b][n_alone[b] - 1] == STOP_ID;
            early += n_alone[b] < NEW;
            for (int i = 1; i < n_alone[b]; i++) differ |= alone[b][i] != alone[b][0];
        }
        assert_true(at_stop_id > 0 && early > 0 && differ); /* the runs exercise both stops and real decoding */
        static const int slots[3] = {1, 7, 64};
        for (int k = 0; k < 3; k++) {
            int32_t *out[NP];
            int n_out[NP];
            assert_int_equal(nn_generate_stream(m, prompts, lens, NP, slots[k], &o, out, n_out), 0);
            for (int b = 0; b < NP; b++) {
                assert_int_equal(n_out[b], n_alone[b]);
                assert_memory_equal(out[b], alone[b], sizeof(int32_t) * (size_t)n_alone[b]);
                free(out[b]);
            }
        }
        /* today's one-batch generator over 64 prompts (stop ids and max_new only) == alone */
        nn_gen_opts o64 = {.max_new = NEW, .stop_ids = stop_ids, .n_stop_ids = 1};
        int32_t *out[64], *ref[1];
        int n_out[64], n_ref;
        assert_int_equal(nn_generate(m, prompts, lens, 64, &o64, out, n_out), 0);
        for (int b = 0; b < 64; b++) {
            assert_int_equal(nn_generate(m, &prompts[b], &lens[b], 1, &o64, ref, &n_ref), 0);
            assert_int_equal(n_out[b], n_ref);
            assert_memory_equal(out[b], ref[0], sizeof(int32_t) * (size_t)n_ref);
            free(out[b]);
            free(ref[0]);
        }
        for (int b = 0; b < NP; b++) free(alone[b]);
        nn_model_free(m);
    }
    k_backend_free(be);
}

/* Slot bookkeeping: no prompts, max_new 0, zero slots and an empty prompt. */
static void test_stream_edges(void **state)
{
    (void)state;
    k_backend *be = k_cpu_new(1);
    nn_model *m = tk_tiny_model(be, 0, V, 4, 3);
    int32_t p[3] = {1, 2, 3}, *out[2];
    const int32_t *prompts[2] = {p, p};
    int lens[2] = {3, 2}, n_out[2] = {-1, -1};
    nn_gen_opts o0 = {.max_new = 0};
    assert_int_equal(nn_generate_stream(m, prompts, lens, 2, 4, &o0, out, n_out), 0);
    assert_int_equal(n_out[0], 0);
    assert_int_equal(n_out[1], 0);
    free(out[0]);
    free(out[1]);
    nn_gen_opts o = {.max_new = 3};
    assert_int_equal(nn_generate_stream(m, prompts, lens, 0, 4, &o, out, n_out), 0);
    assert_int_equal(nn_generate_stream(m, prompts, lens, 2, 0, &o, out, n_out), -1);
    assert_non_null(strstr(hx_last_error(), "slots"));
    int bad[2] = {3, 0};
    assert_int_equal(nn_generate_stream(m, prompts, bad, 2, 2, &o, out, n_out), -1);
    assert_non_null(strstr(hx_last_error(), "prompt 1 is empty"));
    nn_model_free(m);
    k_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_equals_alone),
        cmocka_unit_test(test_stream_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
