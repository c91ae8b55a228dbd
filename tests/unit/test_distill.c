/* test_distill.c - GenDistill machinery: KL / reverse-KL / KL+CE and layer-alignment MSE gradients against finite
 * differences through the whole student, completion-only masks, freezing, alignment reduces the MSE, resume. */
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
#include "nn/distill_loss.h"
#include "stages/stage_convert.h"
#include "test_util.h"
#include "test_nn_util.h"

static k_backend *be;
enum { V = 53 };

/* A hybrid student (kda, attention, gdn) and a Qwen3 teacher of the same shape; weights of 0.1 (not 0.02) keep the
 * gradients far from zero; 0.3 would make the KDA layers so curved that h = 1e-2 misjudges them. */
static nn_model *tiny_model(int hybrid, uint64_t seed, float init)
{
    nn_config c;
    nn_config_qwen3(&c, V, 24, 3, 4, 2, 6, 40);
    c.init_range = init;
    if (hybrid) {
        snprintf(c.model_type, sizeof c.model_type, "hx_hybrid");
        c.mixer[0] = NN_MIX_KDA;
        c.mixer[1] = NN_MIX_ATTN;
        c.mixer[2] = NN_MIX_GDN;
        c.conv_size = 4;
        c.gate_rank = 6;
        snprintf(c.conv_act, sizeof c.conv_act, "silu");
    }
    nn_model *m;
    if (nn_model_new(&m, &c, be)) fail_msg("%s", hx_last_error());
    nn_model_init_random(m, seed);
    for (int i = 0; i < m->n_params; i++) /* a realistic decay: A_log ~ log(1 + u), not N(0, init) */
        if (strstr(m->params[i].name, "A_log"))
            for (size_t j = 0; j < m->params[i].numel; j++) m->p[m->params[i].off + j] = logf(1.0f + 2.0f * j);
    return m;
}

/* Two packed rows: documents of 5 and 6 tokens, targets with ignored positions. */
static void batch(int32_t *ids, int32_t *tg, int32_t *seg, int32_t *pos, int B, int T)
{
    hx_rng r;
    hx_rng_seed(&r, 17);
    for (int i = 0; i < B * T; i++) {
        int t = i % T;
        ids[i] = (int32_t)hx_rng_below(&r, V);
        tg[i] = i % 4 == 3 ? -100 : (int32_t)hx_rng_below(&r, V);
        seg[i] = t < 5 ? 0 : 1;
        pos[i] = t < 5 ? t : t - 5;
    }
}

/* Every trainable tensor: analytic gradient g against (L(x+h) - L(x-h)) / 2h at a few entries. */
typedef double (*loss_fn)(void *arg);
static void check_grads(nn_model *m, const float *g, loss_fn f, void *arg, const char *what)
{
    int checked = 0;
    for (int pi = 0; pi < m->n_params; pi++) {
        nn_param *p = &m->params[pi];
        if (p->goff == SIZE_MAX) continue;
        float *x = m->p + p->off;
        const float *gx = g + p->goff;
        double gmax = 0, emax = 0;
        for (size_t j = 0; j < p->numel; j++) gmax = fabs(gx[j]) > gmax ? fabs(gx[j]) : gmax;
        for (size_t j = 0; j < p->numel; j += p->numel / 5 + 1) {
            float x0 = x[j], h = 3e-3f; /* KDA states restart at document starts: 1e-2 misjudges k_conv */
            x[j] = x0 + h;
            double lp = f(arg);
            x[j] = x0 - h;
            double lm = f(arg);
            x[j] = x0;
            double e = fabs((lp - lm) / (2 * h) - gx[j]);
            emax = e > emax ? e : emax;
        }
        double rel = emax / (gmax > 1e-4 ? gmax : 1e-4);
        if (rel > 3e-2) fail_msg("%s: %s: gradient error %.3e relative (max |g| %.3e)", what, p->name, rel, gmax);
        checked++;
    }
    assert_true(checked > 0);
}

typedef struct kl_case {
    nn_distill ds;
    nn_batch bt;
    const int32_t *tg;
} kl_case;

static double kl_loss(void *arg)
{
    kl_case *k = arg;
    nn_distill_loss L;
    assert_int_equal(nn_distill_micro(&k->ds, &k->bt, k->tg, 1, 0, &L), 0);
    return L.loss;
}

static void test_kl_gradients(void **state)
{
    (void)state;
    enum { B = 2, T = 11 };
    int32_t ids[B * T], tg[B * T], seg[B * T], pos[B * T];
    batch(ids, tg, seg, pos, B, T);
    static const struct { nn_objective o; float alpha, temp; } cases[] = {
        {NN_OBJ_KL, 0, 1}, {NN_OBJ_KL, 0, 2}, {NN_OBJ_REVERSE_KL, 0, 1.5f}, {NN_OBJ_KL_CE, 0.3f, 2}, {NN_OBJ_CE, 0, 1},
    };
    nn_model *t = tiny_model(0, 11, 0.1f);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_model *s = tiny_model(1, 5, 0.1f);
        assert_int_equal(nn_model_set_trainable(s, NN_ALL_GROUPS), 0);
        kl_case k = {.bt = {.B = B, .T = T, .ids = ids, .seg = seg, .pos = pos}, .tg = tg};
        if (nn_distill_init(&k.ds, s, t, B, T, cases[c].o, cases[c].alpha, cases[c].temp)) fail_msg("%s", hx_last_error());
        nn_model_zero_grad(s);
        nn_distill_loss L;
        assert_int_equal(nn_distill_micro(&k.ds, &k.bt, tg, 1, 1, &L), 0);
        assert_int_equal(L.count, 17); /* 22 positions less the ignored ones (every 4th) */
        assert_true(L.ce > 0);
        if (cases[c].o != NN_OBJ_CE) assert_true(L.kl > 1e-3);
        double tau2 = (double)cases[c].temp * cases[c].temp;
        double want = cases[c].o == NN_OBJ_CE ? L.ce : cases[c].o == NN_OBJ_KL_CE
                      ? cases[c].alpha * tau2 * L.kl + (1 - cases[c].alpha) * L.ce : tau2 * L.kl;
        assert_float_equal(L.loss, want, 1e-9);
        float *g = xmalloc(s->n_gfloats * sizeof(float));
        memcpy(g, s->g, s->n_gfloats * sizeof(float));
        char what[64];
        snprintf(what, sizeof what, "%s (temp %g)", nn_objective_name(cases[c].o), cases[c].temp);
        check_grads(s, g, kl_loss, &k, what);
        free(g);
        nn_distill_release(&k.ds);
        nn_model_free(s);
    }
    /* the KL of a model against itself is 0, and so is its gradient */
    nn_model *s = tiny_model(0, 11, 0.1f);
    nn_model_set_trainable(s, NN_ALL_GROUPS);
    kl_case k = {.bt = {.B = B, .T = T, .ids = ids, .seg = seg, .pos = pos}, .tg = tg};
    assert_int_equal(nn_distill_init(&k.ds, s, t, B, T, NN_OBJ_KL, 0, 1), 0);
    nn_model_zero_grad(s);
    nn_distill_loss L;
    assert_int_equal(nn_distill_micro(&k.ds, &k.bt, tg, 1, 1, &L), 0);
    assert_true(fabs(L.kl) < 1e-6);
    double ss;
    be->op->sumsq(be, &ss, s->g, s->n_gfloats);
    assert_true(sqrt(ss) < 1e-4);
    nn_distill_release(&k.ds);
    nn_model_free(s);
    /* objectives with a KL refuse to run without a teacher or with another vocabulary */
    s = tiny_model(1, 5, 0.1f);
    assert_int_equal(nn_distill_init(&k.ds, s, NULL, B, T, NN_OBJ_KL, 0, 1), -1);
    assert_non_null(strstr(hx_last_error(), "teacher"));
    nn_model_free(s);
    nn_model_free(t);
}

typedef struct mse_case {
    nn_align al;
    nn_batch bt;
} mse_case;

static double mse_loss(void *arg)
{
    mse_case *k = arg;
    double l;
    assert_int_equal(nn_align_micro(&k->al, &k->bt, 1, 0, &l), 0);
    return l;
}

static void test_mse_gradients(void **state)
{
    (void)state;
    enum { B = 2, T = 11 };
    int32_t ids[B * T], tg[B * T], seg[B * T], pos[B * T];
    batch(ids, tg, seg, pos, B, T);
    nn_model *t = tiny_model(0, 11, 0.1f);
    for (int target = 0; target < 2; target++)
        for (int all = 0; all < 2; all++) {
            nn_model *s = tiny_model(1, 5, 0.1f);
            /* the mixers alone (what align trains), or every group (the norms and the MLP get gradients too) */
            assert_int_equal(nn_model_set_trainable(s, all ? NN_ALL_GROUPS : NN_GROUP_BIT(NN_G_KDA)), 0);
            mse_case k = {.bt = {.B = B, .T = T, .ids = ids, .seg = seg, .pos = pos}};
            if (nn_align_init(&k.al, s, t, B, T, (nn_align_target)target)) fail_msg("%s", hx_last_error());
            assert_int_equal(k.al.n, 2); /* layers 0 (kda) and 2 (gdn); layer 1 stays attention */
            nn_model_zero_grad(s);
            double loss;
            assert_int_equal(nn_align_micro(&k.al, &k.bt, 1, 1, &loss), 0);
            assert_true(loss > 1e-4);
            assert_float_equal(loss, (k.al.mse[0] + k.al.mse[1]) / 2, 1e-12);
            if (all) { /* layer-local: the embeddings, the final norm and the attention layer get nothing */
                double ss;
                be->op->sumsq(be, &ss, nn_model_grad(s, "model.embed_tokens.weight"), (size_t)V * 24);
                assert_true(ss == 0);
                be->op->sumsq(be, &ss, nn_model_grad(s, "model.layers.1.self_attn.q_proj.weight"), 24 * 24);
                assert_true(ss == 0);
            }
            float *g = xmalloc(s->n_gfloats * sizeof(float));
            memcpy(g, s->g, s->n_gfloats * sizeof(float));
            check_grads(s, g, mse_loss, &k, target ? "block_out" : "mixer_out");
            free(g);
            nn_align_release(&k.al);
            nn_model_free(s);
        }
    /* a student that is not a conversion of the teacher is refused */
    nn_model *s = tiny_model(0, 5, 0.1f);
    nn_align al;
    assert_int_equal(nn_align_init(&al, s, t, B, T, NN_ALIGN_MIXER_OUT), -1);
    assert_non_null(strstr(hx_last_error(), "differs"));
    nn_model_free(s);
    nn_model_free(t);
}

/* One block alone (nn_model_layer_forward) on hidden_states.l computes hidden_states.l+1 of the whole forward, for
 * every mixer kind and packed rows, in training and scoring mode. */
static void test_layer_equals_model(void **state)
{
    (void)state;
    enum { B = 2, T = 11, N = B * T, D = 24 };
    int32_t ids[N], tg[N], seg[N], pos[N];
    batch(ids, tg, seg, pos, B, T);
    nn_model *m = tiny_model(1, 5, 0.1f);
    float *hid[4], *out = xmalloc(N * D * sizeof(float)), *mix = xmalloc(N * D * sizeof(float));
    for (int l = 0; l < 4; l++) hid[l] = xmalloc(N * D * sizeof(float));
    for (int mode = 1; mode <= 2; mode++) {
        assert_int_equal(nn_model_prepare(m, B, T, mode), 0);
        nn_batch bt = {.B = B, .T = T, .ids = ids, .seg = seg, .pos = pos};
        assert_int_equal(nn_model_forward(m, &bt, NULL, NULL, hid), 0);
        for (int l = 0; l + 1 < 3; l++) {
            assert_int_equal(nn_model_layer_forward(m, l, &bt, hid[l], mix, out), 0);
            double e = 0;
            for (int i = 0; i < N * D; i++) e = fmax(e, fabs(out[i] - hid[l + 1][i]));
            if (e > 1e-5) fail_msg("mode %d layer %d: block output differs by %.3e", mode, l, e);
        }
    }
    assert_int_equal(nn_model_layer_forward(m, 3, &(nn_batch){.B = B, .T = T, .ids = ids}, hid[0], mix, NULL), -1);
    for (int l = 0; l < 4; l++) free(hid[l]);
    free(out);
    free(mix);
    nn_model_free(m);
}

/* ---- instruction rows ---- */

static const char *INSTRUCT =
    "{\"prompt\": \"<|im_start|>user\\nWhat is the capital of France?<|im_end|>\\n<|im_start|>assistant\\n\", "
    "\"completion\": \"Paris.<|im_end|>\\n\"}\n"
    "\n"
    "{\"messages\": [{\"role\": \"user\", \"content\": \"Name a colour.\"}, {\"role\": \"assistant\", \"content\": "
    "\"Blue<|im_end|> is one\"}]}\n"
    "{\"prompt\": \"<|im_start|>user\\nTwo plus two?<|im_end|>\\n<|im_start|>assistant\\n\", \"completion\": "
    "\"Four<|im_end|>\\n\"}\n";

static void test_completion_mask(void **state)
{
    (void)state;
    nn_tokenizer *tok;
    if (nn_tokenizer_load_qwen3(&tok)) fail_msg("%s", hx_last_error());
    int32_t pad = nn_tokenizer_token_id(tok, "<|endoftext|>");
    /* the examples alone: prompt and completion lengths in tokens */
    const char *prompts[3] = {"<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
                              "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
                              "<|im_start|>user\nTwo plus two?<|im_end|>\n<|im_start|>assistant\n"};
    const char *compl[3] = {"Paris.<|im_end|>\n", "Blue<|im_end|> is one<|im_end|>\n", "Four<|im_end|>\n"};
    int np[3], nc[3], total = 0, ncomp = 0;
    for (int i = 0; i < 3; i++) {
        int32_t *ids;
        size_t n;
        assert_int_equal(nn_tokenizer_encode(tok, prompts[i], strlen(prompts[i]), &ids, &n), 0);
        np[i] = (int)n;
        free(ids);
        assert_int_equal(nn_tokenizer_encode(tok, compl[i], strlen(compl[i]), &ids, &n), 0);
        nc[i] = (int)n;
        free(ids);
        total += np[i] + nc[i];
        ncomp += nc[i];
    }
    for (int co = 0; co < 2; co++) {
        nn_sft_data d;
        int T = 64;
        if (nn_sft_load_mem(&d, tok, INSTRUCT, strlen(INSTRUCT), "mem.jsonl", T, co, pad, 3))
            fail_msg("%s", hx_last_error());
        assert_int_equal(d.n_examples, 3);
        assert_int_equal(d.n_truncated, 0);
        assert_int_equal(d.n_prompt_tokens + d.n_completion_tokens, total);
        assert_int_equal(d.n_completion_tokens, ncomp);
        /* completion_only: exactly the completion tokens are predicted; all_tokens: every next token */
        assert_int_equal(d.n_loss_tokens, co ? ncomp : total - 3);
        /* walk the segments of every row: each is one example (or padding) */
        int seen = 0;
        for (long long r = 0; r < d.R; r++)
            for (int t0 = 0; t0 < T;) {
                size_t o = (size_t)r * T;
                int t1 = t0;
                while (t1 < T && d.seg[o + t1] == d.seg[o + t0]) t1++;
                int m = t1 - t0;
                assert_int_equal(d.pos[o + t0], 0);
                int all_pad = t1 == T;
                for (int t = t0; t < t1; t++) all_pad &= d.ids[o + t] == pad;
                if (all_pad) { /* the rest of a row */
                    for (int t = t0; t < t1; t++) assert_int_equal(d.tg[o + t], -100);
                    t0 = t1;
                    continue;
                }
                int e = -1;
                for (int i = 0; i < 3; i++)
                    if (np[i] + nc[i] == m) e = i;
                assert_true(e >= 0);
                seen++;
                for (int t = t0; t < t1; t++) {
                    int k = t - t0; /* token k of the example; its target is token k + 1 */
                    int32_t want = k + 1 >= m ? -100 : (co && k + 1 < np[e]) ? -100 : d.ids[o + t + 1];
                    if (d.tg[o + t] != want)
                        fail_msg("row %lld t %d (example %d token %d, prompt %d): target %d, want %d", r, t, e, k, np[e],
                                 d.tg[o + t], want);
                }
                t0 = t1;
            }
        assert_int_equal(seen, 3);
        /* rows are a pure function of their index: reading out of order gives the same rows */
        int32_t a[4][128], b[4][128];
        nn_sft_rows(&d, 5, 2, a[0], a[1], a[2], a[3]);
        nn_sft_rows(&d, 0, 1, b[0], b[1], b[2], b[3]);
        nn_sft_rows(&d, 5, 2, b[0], b[1], b[2], b[3]);
        assert_memory_equal(a, b, sizeof a);
        nn_sft_release(&d);
    }
    /* a too-short row keeps the prompt and no completion: nothing to learn, said clearly */
    nn_sft_data d;
    assert_int_equal(nn_sft_load_mem(&d, tok, INSTRUCT, strlen(INSTRUCT), "mem.jsonl", 8, 1, pad, 3), -1);
    assert_non_null(strstr(hx_last_error(), "seq_len"));
    /* malformed input names file, line and column */
    static const struct { const char *text, *needle; } bad[] = {
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", ", "bad.jsonl:2:"},
        {"{\"prompt\": \"a\"}\n", "bad.jsonl:1: expected string fields"},
        {"[1, 2]\n", "bad.jsonl:1: expected a JSON object"},
        {"{\"prompt\": \"a\", \"completion\": \"\"}\n", "no completion"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"robot\", \"content\": \"x\"}]}\n",
         "bad.jsonl:1"},
        {"\n\n", "no examples"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (nn_sft_load_mem(&d, tok, bad[i].text, strlen(bad[i].text), "bad.jsonl", 64, 1, pad, 0) != -1 ||
            !strstr(hx_last_error(), bad[i].needle))
            fail_msg("bad input %zu: message '%s' lacks '%s'", i, hx_last_error(), bad[i].needle);
    nn_tokenizer_free(tok);
}

/* ---- training: freezing, alignment, resume ---- */

typedef struct job {
    nn_trainer *tr;
    nn_distill ds;
    nn_align al;
    int align;
    int stop_at;               /* set *interrupted while computing this step (0: never) */
    volatile int *interrupted;
} job;

static int micro(void *arg, long long mi, float scale, nn_fit_stats *st)
{
    (void)mi;
    job *j = arg;
    nn_trainer *tr = j->tr;
    if (j->stop_at && tr->step + 1 == j->stop_at) *j->interrupted = 1;
    nn_loader_next(&tr->ld, tr->ids, tr->tg, tr->seg, tr->pos);
    nn_batch bt = {.B = tr->ld.B, .T = tr->ld.T, .ids = tr->ids, .pos = tr->pos, .seg = tr->seg};
    if (j->align) {
        double l;
        if (nn_align_micro(&j->al, &bt, scale, 1, &l)) return -1;
        st->loss += l;
        st->part[0] += j->al.mse[0];
        st->tokens += (long long)bt.B * bt.T;
        return 0;
    }
    nn_distill_loss L;
    if (nn_distill_micro(&j->ds, &bt, tr->tg, scale, 1, &L)) return -1;
    st->loss += L.loss;
    st->part[0] += L.kl;
    st->part[1] += L.ce;
    st->tokens += L.count;
    return 0;
}

/* Trains a fresh copy of `init` (a saved student) against t for `steps`; stop_at > 0 interrupts there. */
static int train(nn_model *t, const char *init, nn_data *d, unsigned trainable, int align, int steps, int stop_at,
                 const char *ckpt, const char *logp, nn_model **out, nn_fit_result *res)
{
    nn_model *s;
    if (nn_model_load(&s, init, be)) fail_msg("%s", hx_last_error());
    nn_model_set_trainable(s, trainable);
    nn_trainer tr;
    nn_sched sch = {.kind = NN_SCHED_COSINE, .lr = 3e-3, .min_lr = 3e-4, .warmup = 2, .total = steps};
    assert_int_equal(nn_trainer_init(&tr, s, d, 2, 16, &sch, 2), 0);
    volatile int stop = 0;
    job j = {.tr = &tr, .align = align, .stop_at = stop_at, .interrupted = &stop};
    if (align) assert_int_equal(nn_align_init(&j.al, s, t, 2, 16, NN_ALIGN_MIXER_OUT), 0);
    else assert_int_equal(nn_distill_init(&j.ds, s, t, 2, 16, NN_OBJ_KL_CE, 0.5f, 2), 0);
    nn_fit_cfg fc = {.label = "test", .ckpt_dir = ckpt, .log_path = logp, .steps = steps, .log_every = 1,
                     .ckpt_every = 2, .tokens_per_step = 64, .part_names = {"kl", "ce"}, .interrupted = &stop};
    int r = nn_fit(&tr, &fc, micro, &j, res);
    if (align) nn_align_release(&j.al);
    else nn_distill_release(&j.ds);
    nn_trainer_release(&tr);
    if (out) *out = s;
    else nn_model_free(s);
    return r;
}

/* A teacher, trained a little so that its distributions have shape, and its conversion into a hybrid student. */
static void teacher_and_student(nn_data *d, nn_model **t, char **sdir)
{
    nn_config c;
    nn_config_qwen3(&c, V, 32, 3, 4, 2, 8, 48);
    nn_model *m;
    assert_int_equal(nn_model_new(&m, &c, be), 0);
    nn_model_init_random(m, 1);
    nn_model_set_trainable(m, NN_ALL_GROUPS);
    nn_trainer tr;
    nn_sched sch = {.kind = NN_SCHED_CONSTANT, .lr = 1e-2, .warmup = 1, .total = 30};
    assert_int_equal(nn_trainer_init(&tr, m, d, 4, 16, &sch, 1), 0);
    for (int i = 0; i < 30; i++) assert_int_equal(nn_train_step(&tr, NULL, NULL, NULL), 0);
    nn_trainer_release(&tr);
    char *tdir = xstrfmt("%s/teacher", tmpdir);
    *sdir = xstrfmt("%s/student", tmpdir);
    assert_int_equal(nn_model_save(m, tdir, ST_F32, 0), 0);
    json_t *layers = json_string("first_last");
    if (stage_convert(tdir, *sdir, layers, "kda", "identity", 0, 7)) fail_msg("%s", hx_last_error());
    json_decref(layers);
    free(tdir);
    nn_model_set_trainable(m, 0);
    *t = m;
}

static void test_train_freeze_align_resume(void **state)
{
    (void)state;
    nn_data d;
    tn_pattern_data(&d, 4000, 4, 12, V - 1);
    nn_model *t, *s0, *s;
    char *sdir;
    teacher_and_student(&d, &t, &sdir);
    assert_int_equal(nn_model_load(&s0, sdir, be), 0);
    nn_fit_result res;

    /* alignment: the converted layers (1 of 3, layer 1) learn to reproduce the teacher's attention output */
    assert_int_equal(train(t, sdir, &d, NN_GROUP_BIT(NN_G_KDA), 1, 40, 0, NULL, NULL, &s, &res), 0);
    printf("align: mse %.5f -> %.5f\n", res.first_loss, res.last_loss);
    assert_true(res.last_loss < 0.5 * res.first_loss);
    /* only the kda group moved */
    for (int i = 0; i < s->n_params; i++) {
        nn_param *p = &s->params[i];
        int same = !memcmp(s->p + p->off, s0->p + p->off, p->numel * sizeof(float));
        if (same != (p->group != NN_G_KDA)) fail_msg("align: %s %s", p->name, same ? "did not move" : "moved");
    }
    nn_model_free(s);

    /* freezing attention and embeddings during distillation: bit-identical, no gradient memory */
    unsigned mask;
    const char *frozen[] = {"attention", "embed"};
    assert_int_equal(nn_freeze_mask(frozen, 2, &mask), 0);
    assert_int_equal(mask, NN_ALL_GROUPS & ~(NN_GROUP_BIT(NN_G_ATTENTION) | NN_GROUP_BIT(NN_G_EMBED)));
    const char *wrong[] = {"attn"};
    assert_int_equal(nn_freeze_mask(wrong, 1, &mask), -1);
    assert_non_null(strstr(hx_last_error(), "attn"));
    unsigned tm = NN_ALL_GROUPS & ~(NN_GROUP_BIT(NN_G_ATTENTION) | NN_GROUP_BIT(NN_G_EMBED));
    assert_int_equal(train(t, sdir, &d, tm, 0, 4, 0, NULL, NULL, &s, &res), 0);
    int moved = 0;
    for (int i = 0; i < s->n_params; i++) {
        nn_param *p = &s->params[i];
        int same = !memcmp(s->p + p->off, s0->p + p->off, p->numel * sizeof(float));
        int frozen_p = p->group == NN_G_ATTENTION || p->group == NN_G_EMBED;
        if (frozen_p) {
            assert_true(p->goff == SIZE_MAX);
            if (!same) fail_msg("frozen %s changed", p->name);
        }
        moved += !same;
    }
    assert_true(moved > 10);
    nn_model_free(s);

    /* resume == uninterrupted: 6 steps straight, or interrupted during step 3 and resumed */
    char *ca = xstrfmt("%s/ckpt_a", tmpdir), *cb = xstrfmt("%s/ckpt_b", tmpdir);
    char *la = xstrfmt("%s/log_a.jsonl", tmpdir), *lb = xstrfmt("%s/log_b.jsonl", tmpdir);
    nn_model *a, *b;
    assert_int_equal(train(t, sdir, &d, NN_ALL_GROUPS, 0, 6, 0, ca, la, &a, &res), 0);
    assert_int_equal(train(t, sdir, &d, NN_ALL_GROUPS, 0, 6, 3, cb, lb, NULL, &res), -1);
    assert_non_null(strstr(hx_last_error(), "interrupted at step 3"));
    assert_int_equal(train(t, sdir, &d, NN_ALL_GROUPS, 0, 6, 0, cb, lb, &b, &res), 0);
    assert_int_equal(res.start_step, 3);
    assert_memory_equal(a->p, b->p, a->n_floats * sizeof(float));
    char *ta, *tb;
    size_t na, nb;
    assert_int_equal(hx_read_file(la, &ta, &na), 0);
    assert_int_equal(hx_read_file(lb, &tb, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na);
    free(ta);
    free(tb);
    nn_model_free(a);
    nn_model_free(b);
    free(ca); free(cb); free(la); free(lb);
    nn_model_free(s0);
    nn_model_free(t);
    free(sdir);
    nn_data_release(&d);
}

static int setup(void **state)
{
    be = k_cpu_new(2);
    return tu_tmpdir_setup(state);
}

static int teardown(void **state)
{
    k_backend_free(be);
    return tu_tmpdir_teardown(state);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* OpenMP threads that spin between the many tiny parallel regions here starve each other on a shared, busy
     * machine (measured: 55 s instead of 8 s at load 11 on 2 cores); the policy is read when libgomp loads. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kl_gradients),
        cmocka_unit_test(test_mse_gradients),
        cmocka_unit_test(test_layer_equals_model),
        cmocka_unit_test(test_completion_mask),
        cmocka_unit_test(test_train_freeze_align_resume),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
