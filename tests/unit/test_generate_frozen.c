/* test_generate_frozen.c - inference weights (nn_model_freeze): the bookkeeping on the guard backend, whose matmuls
 * read frozen weights from their bf16 copy as the CUDA backend does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "test_kda_util.h"
#include "nn/engine.h"
#include "nn/generate.h"
#include "nn/model.h"

enum { V = 61, L = 3 };

/* logits [B, V] of the last position of each of B prompts of T tokens */
static float *logits(nn_model *m, const int32_t *ids, int B, int T)
{
    int rows[4];
    for (int b = 0; b < B; b++) rows[b] = T - 1;
    nn_batch bt = {.B = B, .T = T, .ids = ids};
    assert_int_equal(nn_model_prepare(m, B, T, NN_ACT_GEN), 0);
    assert_int_equal(nn_model_forward(m, &bt, NULL, rows, NULL), 0);
    float *h = xmalloc((size_t)B * V * sizeof(float));
    m->be->op->download(m->be, h, m->logits, (size_t)B * V * sizeof(float));
    return h;
}

/*
 * guard:bf16, Qwen3 and the hybrid: after nn_model_freeze a forward's logits are bit-identical to the unfrozen
 * model's (the frozen copy holds exactly the bf16 rounding each matmul made before); every weight operand of the
 * forward came from the copy (Qwen3: q, k, v, o, gate, up, down per layer and the tied LM head: 7 L + 1 reads;
 * the hybrid: as many as a second forward reads, and more than its attention layer alone); after nn_model_thaw
 * none does; greedy tokens are unchanged; a frozen model refuses gradients.
 */
static void test_frozen_forward(void **state)
{
    (void)state;
    enum { B = 3, T = 9 };
    int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)((i * 7 + 3) % V);
    k_backend *be = k_guard_new(1, 1);
    for (int hybrid = 0; hybrid < 2; hybrid++) {
        nn_model *m = tk_tiny_model(be, hybrid, V, L, 9);
        float *ref = logits(m, ids, B, T);
        int32_t *pr[B], *out0[B], *out1[B];
        int lens[B], n0[B], n1[B];
        for (int b = 0; b < B; b++) pr[b] = ids + b * T, lens[b] = T - b;
        nn_gen_opts o = {.max_new = 6};
        assert_int_equal(nn_generate_stream(m, (const int32_t *const *)pr, lens, B, 2, &o, out0, n0), 0);
        size_t r0 = k_guard_frozen_reads();
        float *same = logits(m, ids, B, T);
        assert_int_equal(k_guard_frozen_reads(), r0); /* not frozen: nothing read from a copy */
        free(same);

        nn_model_freeze(m);
        assert_int_equal(m->frozen, 1);
        /* one range per tensor: the CUDA backend's bf16 copy of each is then its own 256-byte aligned allocation
         * (cuBLASLt got 32-byte aligned tensors inside one copy of the whole buffer: "misaligned address") */
        assert_int_equal(k_guard_frozen_ranges(), m->n_params);
        r0 = k_guard_frozen_reads();
        float *fz = logits(m, ids, B, T);
        size_t reads = k_guard_frozen_reads() - r0;
        assert_memory_equal(fz, ref, sizeof(float) * B * V);
        if (!hybrid) assert_int_equal(reads, 7 * L + 1);
        else {
            assert_true(reads > 7 + 1);
            r0 = k_guard_frozen_reads();
            free(logits(m, ids, B, T));
            assert_int_equal(k_guard_frozen_reads() - r0, reads);
        }
        assert_int_equal(nn_generate_stream(m, (const int32_t *const *)pr, lens, B, 2, &o, out1, n1), 0);
        for (int b = 0; b < B; b++) {
            assert_int_equal(n0[b], n1[b]);
            assert_memory_equal(out0[b], out1[b], sizeof(int32_t) * (size_t)n0[b]);
            free(out0[b]);
            free(out1[b]);
        }
        assert_int_equal(nn_model_set_trainable(m, NN_ALL_GROUPS), -1);
        assert_non_null(strstr(hx_last_error(), "frozen"));

        nn_model_thaw(m);
        assert_int_equal(m->frozen, 0);
        assert_int_equal(k_guard_frozen_ranges(), 0);
        r0 = k_guard_frozen_reads();
        free(logits(m, ids, B, T));
        assert_int_equal(k_guard_frozen_reads(), r0);
        assert_int_equal(nn_model_set_trainable(m, NN_ALL_GROUPS), 0);
        free(ref);
        free(fz);
        nn_model_free(m);
    }
    k_backend_free(be);
}

/* Writing frozen weights is a bug the guard backend stops at the next matmul that reads them (in a child). */
static void test_write_after_freeze_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        k_backend *be = k_guard_new(1, 1);
        nn_model *m = tk_tiny_model(be, 0, V, L, 9);
        nn_model_freeze(m);
        float *w = nn_model_param(m, "model.layers.0.self_attn.q_proj.weight");
        float v = 0.5f;
        be->op->upload(be, w, &v, sizeof v);
        int32_t ids[4] = {1, 2, 3, 4};
        free(logits(m, ids, 1, 4));
        _exit(0); /* not reached: the guard aborts */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

/* The shared engine freezes the models it hands out; nn_engine_model_copy gives a trainable, unfrozen copy. */
static void test_engine_freezes(void **state)
{
    (void)state;
    char dir[] = "/tmp/hx-test-frozen.XXXXXX";
    assert_non_null(mkdtemp(dir));
    k_backend *be = k_cpu_new(1);
    nn_model *src = tk_tiny_model(be, 0, V, L, 9);
    assert_int_equal(nn_model_save(src, dir, ST_F32, 0), 0);
    nn_model_free(src);
    k_backend_free(be);
    nn_engine *e = nn_engine_new("cpu", 1);
    assert_non_null(e);
    nn_model *m = nn_engine_model(e, "k", dir);
    assert_non_null(m);
    assert_int_equal(m->frozen, 1);
    nn_model *cp = nn_engine_model_copy(e, "k", dir);
    assert_non_null(cp);
    assert_int_equal(cp->frozen, 0);
    assert_int_equal(nn_model_set_trainable(cp, NN_ALL_GROUPS), 0);
    nn_model_free(cp);
    nn_engine_free(e);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_forward),
        cmocka_unit_test(test_write_after_freeze_aborts),
        cmocka_unit_test(test_engine_freezes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
