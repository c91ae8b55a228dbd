/* test_hybrid_docs.c - Hybrid (attention + kda + gdn) and Qwen3 models over documents and ragged batches: a packed
 * row == its documents alone (logits, loss, every gradient), batched greedy generation of prompts of different
 * lengths == each prompt alone (exact tokens), batched scoring == one item at a time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_kda_util.h"
#include "nn/generate.h"
#include "nn/model.h"

enum { V = 61 };

/* test_kda_util.h's tiny model (4 layers: kda, attention, gdn, kda) with a realistic decay: A_log = log(1 + 3h). */
static nn_model *tiny(k_backend *be, int hybrid, uint64_t seed)
{
    nn_model *m = tk_tiny_model(be, hybrid, V, 4, seed);
    for (int i = 0; i < m->n_params; i++)
        if (strstr(m->params[i].name, "A_log"))
            for (size_t j = 0; j < m->params[i].numel; j++) m->p[m->params[i].off + j] = logf(1.0f + 3.0f * j);
    return m;
}

static void random_ids(int32_t *ids, int n, uint64_t seed)
{
    hx_rng r;
    hx_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)hx_rng_below(&r, V);
}

/*
 * One row of three documents (37 + 1 + 44 tokens: the row crosses a 64-token chunk boundary inside the third) with
 * segment ids and restarted positions == the documents run alone: logits, summed loss, and every gradient (the
 * packed gradient of the summed loss is the sum of the documents' gradients).
 */
static void test_packed_equals_alone(void **state)
{
    (void)state;
    enum { T = 82, ND = 3 };
    static const int doc[ND] = {37, 1, 44};
    k_backend *be = k_cpu_new(2);
    for (int hybrid = 1; hybrid >= 0; hybrid--) {
        nn_model *m = tiny(be, hybrid, 3);
        int32_t ids[T], tg[T], seg[T], pos[T];
        random_ids(ids, T, 7);
        for (int i = 0, t = 0; i < ND; t += doc[i], i++)
            for (int j = 0; j < doc[i]; j++) {
                seg[t + j] = i;
                pos[t + j] = j;
                tg[t + j] = j + 1 < doc[i] ? ids[t + j + 1] : -100; /* never predict across documents */
            }
        assert_int_equal(nn_model_set_trainable(m, NN_ALL_GROUPS), 0);
        assert_int_equal(nn_model_prepare(m, 1, T, NN_ACT_TRAIN), 0);
        nn_batch bt = {.B = 1, .T = T, .ids = ids, .pos = pos, .seg = seg};
        assert_int_equal(nn_model_forward(m, &bt, NULL, NULL, NULL), 0);
        float *lp = tk_dup(m->logits, (size_t)T * V);
        double loss, sum = 0;
        int cnt, total = 0;
        nn_model_zero_grad(m); /* before the loss: nn_model_xent adds the LM head's gradient */
        assert_int_equal(nn_model_xent(m, tg, 1, (float)(T - ND), &loss, &cnt), 0); /* dscale 1: summed loss */
        assert_int_equal(cnt, T - ND);
        double lpacked = loss * cnt;
        assert_int_equal(nn_model_backward(m), 0);
        float *gp = tk_dup(m->g, m->n_gfloats);

        nn_model_zero_grad(m); /* the documents alone, gradients accumulated */
        double el = 0;
        for (int i = 0, t = 0; i < ND; t += doc[i], i++) {
            nn_batch one = {.B = 1, .T = doc[i], .ids = ids + t};
            assert_int_equal(nn_model_forward(m, &one, NULL, NULL, NULL), 0);
            el = fmax(el, tk_relerr(lp + (size_t)t * V, m->logits, (size_t)doc[i] * V));
            assert_int_equal(nn_model_xent(m, tg + t, 1, (float)(doc[i] - 1), &loss, &cnt), 0);
            sum += loss * cnt;
            total += cnt;
            assert_int_equal(nn_model_backward(m), 0);
        }
        assert_int_equal(total, T - ND);
        double eg = 0;
        for (int i = 0; i < m->n_params; i++) {
            nn_param *p = &m->params[i];
            eg = fmax(eg, tk_relerr(gp + p->goff, m->g + p->goff, p->numel));
        }
        printf("%s: packed vs alone: logits %.2e, loss %.9g vs %.9g, grads %.2e\n", hybrid ? "hybrid" : "qwen3", el,
               lpacked, sum, eg);
        assert_true(el < 1e-5);
        assert_true(fabs(lpacked - sum) < 1e-5 * fabs(sum));
        assert_true(eg < 1e-4);
        free(lp);
        free(gp);
        nn_model_free(m);
    }
    k_backend_free(be);
}

/*
 * Prompts of 5, 70, 1, 33 and 64 tokens: one batched nn_generate (right-padded prefill, then batched decode) ==
 * nn_generate of each prompt alone, token for token; the scores of contexts and continuations of different lengths
 * in one batch == one item at a time.
 */
static void test_ragged_batches(void **state)
{
    (void)state;
    enum { NP = 5, MAXP = 70, NEW = 12 };
    static const int lens[NP] = {5, 70, 1, 33, 64};
    int32_t pr[NP][MAXP];
    const int32_t *prompts[NP];
    for (int b = 0; b < NP; b++) {
        random_ids(pr[b], lens[b], 100 + b);
        prompts[b] = pr[b];
    }
    k_backend *be = k_cpu_new(2);
    for (int hybrid = 1; hybrid >= 0; hybrid--) {
        nn_model *m = tiny(be, hybrid, 11);
        nn_gen_opts o = {.max_new = NEW};
        int32_t *out[NP], *one[1];
        int n_out[NP], n_one, differ = 0;
        assert_int_equal(nn_generate(m, prompts, lens, NP, &o, out, n_out), 0);
        for (int b = 0; b < NP; b++) {
            assert_int_equal(nn_generate(m, &prompts[b], &lens[b], 1, &o, one, &n_one), 0);
            assert_int_equal(n_out[b], NEW);
            assert_int_equal(n_one, NEW);
            printf("%s prompt %d (%2d tokens):", hybrid ? "hybrid" : "qwen3", b, lens[b]);
            for (int i = 0; i < NEW; i++) printf(" %d", out[b][i]);
            printf("\n");
            assert_memory_equal(out[b], one[0], sizeof(int32_t) * NEW);
            for (int i = 1; i < NEW; i++) differ |= out[b][i] != out[b][0];
            free(one[0]);
        }
        assert_true(differ); /* the model does not just repeat one token */
        for (int b = 0; b < NP; b++) free(out[b]);

        /* scoring: contexts are the prompts, continuations 1..7 tokens */
        int32_t cont[NP][7];
        const int32_t *conts[NP];
        int nk[NP];
        for (int b = 0; b < NP; b++) {
            nk[b] = 1 + (3 * b) % 7;
            random_ids(cont[b], nk[b], 200 + b);
            conts[b] = cont[b];
        }
        double lpb[NP], lp1[NP];
        int gb[NP], g1[NP];
        assert_int_equal(nn_score(m, prompts, lens, conts, nk, NP, NP, lpb, gb, NULL), 0);
        assert_int_equal(nn_score(m, prompts, lens, conts, nk, NP, 1, lp1, g1, NULL), 0);
        double worst = 0;
        for (int b = 0; b < NP; b++) {
            worst = fmax(worst, fabs(lpb[b] - lp1[b]) / fabs(lp1[b]));
            assert_int_equal(gb[b], g1[b]);
        }
        printf("%s: batched vs one-at-a-time log-likelihood: max rel err %.2e\n", hybrid ? "hybrid" : "qwen3", worst);
        assert_true(worst < 1e-5);
        nn_model_free(m);
    }
    k_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_equals_alone),
        cmocka_unit_test(test_ragged_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
