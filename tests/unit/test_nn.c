/* test_nn.c - the model: config parsing, whole-model gradients, freezing, packing, decode == prefill, checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base.h"
#include "nn/engine.h"
#include "nn/generate.h"
#include "nn/model.h"
#include "test_util.h"

static k_backend *be;

static nn_model *tiny(int tied, int Hkv, uint64_t seed)
{
    nn_config c;
    nn_config_qwen3(&c, 61, 24, 2, 4, Hkv, 6, 40);
    c.tied = tied;
    c.init_range = 0.3f; /* large weights: gradients far from zero, a sharper check */
    nn_model *m;
    assert_int_equal(nn_model_new(&m, &c, be), 0);
    nn_model_init_random(m, seed);
    return m;
}

static void test_config(void **state)
{
    (void)state;
    nn_config c;
    const char *js = "{\"model_type\":\"qwen3\",\"vocab_size\":100,\"hidden_size\":32,\"num_hidden_layers\":2,"
                     "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,"
                     "\"rope_theta\":10000.0,\"tie_word_embeddings\":false,\"eos_token_id\":[5,6]}";
    assert_int_equal(nn_config_parse(&c, js, strlen(js), "t.json"), 0);
    assert_int_equal(c.head_dim, 8); /* hidden / heads when head_dim is absent */
    assert_float_equal(c.rope_theta, 10000, 0);
    assert_int_equal(c.tied, 0);
    assert_int_equal(c.eos_id, 5);
    const char *hy = "{\"model_type\":\"hx_hybrid\",\"vocab_size\":100,\"hidden_size\":32,\"num_hidden_layers\":3,"
                     "\"num_attention_heads\":4,\"intermediate_size\":64,\"head_dim\":16,"
                     "\"rope_parameters\":{\"rope_theta\":500.0,\"rope_type\":\"default\"},"
                     "\"layer_types\":[\"kda\",\"full_attention\",\"gdn\"],"
                     "\"linear_attn\":{\"conv_size\":4,\"conv_act\":\"silu\",\"gate_rank\":8}}";
    assert_int_equal(nn_config_parse(&c, hy, strlen(hy), "h.json"), 0);
    assert_int_equal(c.mixer[0], NN_MIX_KDA);
    assert_int_equal(c.mixer[2], NN_MIX_GDN);
    assert_int_equal(c.gate_rank, 8);
    assert_string_equal(c.conv_act, "silu");
    assert_float_equal(c.rope_theta, 500, 0);
    static const struct { const char *js, *needle; } bad[] = {
        {"{\"vocab_size\":100}", "hidden_size"},
        {"{\"vocab_size\":100,\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":3,"
         "\"num_key_value_heads\":2,\"intermediate_size\":64}", "multiple"},
        {"{\"model_type\":\"llama\"}", "model_type"},
        {"{\"vocab_size\":\"x\"}", "vocab_size"},
        {"[1]", "object"},
        {"{", "t.json:"},
        {"{\"vocab_size\":100,\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
         "\"intermediate_size\":64,\"layer_types\":[\"kda\",\"full_attention\"]}", "hx_hybrid"},
        {"{\"vocab_size\":100,\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
         "\"intermediate_size\":64,\"layer_types\":[\"full_attention\"]}", "layer_types"},
        {"{\"vocab_size\":100,\"hidden_size\":32,\"num_hidden_layers\":100000,\"num_attention_heads\":4,"
         "\"intermediate_size\":64}", "num_hidden_layers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = nn_config_parse(&c, bad[i].js, strlen(bad[i].js), "t.json");
        if (r == 0 || !strstr(hx_last_error(), bad[i].needle))
            fail_msg("bad config %zu: r=%d message '%s' lacks '%s'", i, r, hx_last_error(), bad[i].needle);
    }
    /* the KDA mixer is reported clearly when not linked in */
    nn_config_parse(&c, hy, strlen(hy), "h.json");
    nn_model *m = NULL;
    if (nn_model_new(&m, &c, be) != 0) assert_non_null(strstr(hx_last_error(), "kda"));
    nn_model_free(m);
}

/* Whole-model gradients against finite differences of the mean cross-entropy, untied GQA and tied MQA. */
static double model_loss(nn_model *m, const nn_batch *bt, const int32_t *tg)
{
    double loss;
    assert_int_equal(nn_model_forward(m, bt, NULL, NULL, NULL), 0);
    assert_int_equal(nn_model_xent(m, tg, 0, 1, &loss, NULL), 0);
    return loss;
}

static void grad_case(int tied, int Hkv, int packed)
{
    nn_model *m = tiny(tied, Hkv, 7 + tied);
    int B = 2, T = 11, N = B * T;
    int32_t ids[22], tg[22], seg[22], pos[22];
    hx_rng r;
    hx_rng_seed(&r, 99);
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)hx_rng_below(&r, 61);
        tg[i] = i % 5 == 0 ? -100 : (int32_t)hx_rng_below(&r, 61);
        seg[i] = (i % T) < 4 ? 0 : 1;
        pos[i] = (i % T) < 4 ? i % T : i % T - 4;
    }
    nn_batch bt = {.B = B, .T = T, .ids = ids, .seg = packed ? seg : NULL, .pos = packed ? pos : NULL};
    assert_int_equal(nn_model_prepare(m, B, T, NN_ACT_TRAIN), 0);
    assert_int_equal(nn_model_set_trainable(m, NN_ALL_GROUPS), 0);
    nn_model_zero_grad(m);
    double loss;
    assert_int_equal(nn_model_forward(m, &bt, NULL, NULL, NULL), 0);
    assert_int_equal(nn_model_xent(m, tg, 1, 1, &loss, NULL), 0);
    assert_int_equal(nn_model_backward(m), 0);
    float *g = xmalloc(m->n_gfloats * sizeof(float));
    memcpy(g, m->g, m->n_gfloats * sizeof(float));
    double worst = 0;
    for (int pi = 0; pi < m->n_params; pi++) {
        nn_param *p = &m->params[pi];
        float *x = m->p + p->off, *gx = g + p->goff;
        double gmax = 0, emax = 0;
        for (size_t j = 0; j < p->numel; j++) gmax = fabs(gx[j]) > gmax ? fabs(gx[j]) : gmax;
        for (size_t j = 0; j < p->numel; j += p->numel / 6 + 1) {
            float x0 = x[j], h = 1e-2f;
            x[j] = x0 + h;
            double lp = model_loss(m, &bt, tg);
            x[j] = x0 - h;
            double lm = model_loss(m, &bt, tg);
            x[j] = x0;
            double e = fabs((lp - lm) / (2 * h) - gx[j]);
            emax = e > emax ? e : emax;
        }
        double rel = emax / (gmax > 1e-4 ? gmax : 1e-4);
        if (rel > 3e-2) fail_msg("%s: gradient error %.3e relative (max %.3e)", p->name, rel, gmax);
        worst = rel > worst ? rel : worst;
    }
    free(g);
    nn_model_free(m);
}

static void test_gradients(void **state)
{
    (void)state;
    grad_case(0, 2, 0);
    grad_case(1, 1, 1);
}

/* Frozen groups get no gradient memory; the trainable ones get exactly the full-model gradients. */
static void test_freeze(void **state)
{
    (void)state;
    nn_model *m = tiny(0, 2, 3);
    int B = 1, T = 9;
    int32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, tg[9] = {2, 3, 4, 5, 6, 7, 8, 9, 10};
    nn_batch bt = {.B = B, .T = T, .ids = ids};
    nn_model_prepare(m, B, T, NN_ACT_TRAIN);
    nn_model_set_trainable(m, NN_ALL_GROUPS);
    size_t full = m->n_gfloats;
    nn_model_forward(m, &bt, NULL, NULL, NULL);
    nn_model_xent(m, tg, 1, 1, NULL, NULL);
    nn_model_backward(m);
    int mlp = nn_model_find(m, "model.layers.1.mlp.up_proj.weight");
    size_t n = m->params[mlp].numel;
    float *gmlp = xmalloc(n * 4);
    memcpy(gmlp, nn_model_grad(m, "model.layers.1.mlp.up_proj.weight"), n * 4);
    nn_model_set_trainable(m, NN_GROUP_BIT(NN_G_MLP));
    assert_true(m->n_gfloats < full / 2);
    assert_null(nn_model_grad(m, "model.layers.0.self_attn.q_proj.weight"));
    assert_null(nn_model_grad(m, "model.embed_tokens.weight"));
    assert_null(nn_model_grad(m, "lm_head.weight"));
    nn_model_forward(m, &bt, NULL, NULL, NULL);
    nn_model_xent(m, tg, 1, 1, NULL, NULL);
    assert_int_equal(nn_model_backward(m), 0);
    const float *g2 = nn_model_grad(m, "model.layers.1.mlp.up_proj.weight");
    for (size_t i = 0; i < n; i++) assert_float_equal(g2[i], gmlp[i], 1e-6);
    free(gmlp);
    nn_model_free(m);
}

/* A document packed after another (segment ids, restarted positions) computes what it computes alone. */
static void test_packing(void **state)
{
    (void)state;
    nn_model *m = tiny(1, 2, 5);
    int32_t ids[12] = {5, 9, 2, 33, 7, 1, 8, 8, 40, 3, 2, 6}, seg[12], pos[12];
    for (int i = 0; i < 12; i++) {
        seg[i] = i < 5 ? 0 : 1;
        pos[i] = i < 5 ? i : i - 5;
    }
    nn_model_prepare(m, 1, 12, NN_ACT_SCORE);
    nn_batch bt = {.B = 1, .T = 12, .ids = ids, .seg = seg, .pos = pos};
    nn_model_forward(m, &bt, NULL, NULL, NULL);
    int V = m->cfg.vocab;
    float *packed = xmalloc((size_t)12 * V * 4);
    memcpy(packed, m->logits, (size_t)12 * V * 4);
    nn_batch alone = {.B = 1, .T = 7, .ids = ids + 5};
    nn_model_forward(m, &alone, NULL, NULL, NULL);
    for (int i = 0; i < 7 * V; i++) assert_float_equal(m->logits[i], packed[5 * V + i], 1e-5);
    free(packed);
    nn_model_free(m);
}

/* Batched prefill + KV-cache decode (prompts of different lengths) equals recomputing the whole sequence, and
 * the last-token logits of the cache path equal those of a full forward. */
static void test_decode_equals_prefill(void **state)
{
    (void)state;
    nn_model *m = tiny(1, 2, 11);
    int32_t p0[5] = {3, 14, 15, 9, 26}, p1[2] = {5, 35}, p2[8] = {8, 9, 7, 9, 3, 2, 3, 8};
    const int32_t *pr[3] = {p0, p1, p2};
    int lens[3] = {5, 2, 8}, n_out[3];
    int32_t *out[3];
    nn_gen_opts o = {.max_new = 10};
    assert_int_equal(nn_generate(m, pr, lens, 3, &o, out, n_out), 0);
    for (int b = 0; b < 3; b++) {
        int32_t ref[10];
        assert_int_equal(n_out[b], 10);
        assert_int_equal(nn_generate_recompute(m, pr[b], lens[b], 10, ref), 0);
        assert_memory_equal(out[b], ref, sizeof ref);
        free(out[b]);
    }
    /* logits: decode one token after a prefill vs a full forward */
    int V = m->cfg.vocab;
    nn_cache *cache;
    assert_int_equal(nn_cache_new(&cache, m, 1, 16), 0);
    nn_model_prepare(m, 1, 8, NN_ACT_GEN);
    int row = 6;
    nn_batch pre = {.B = 1, .T = 7, .ids = p2};
    nn_model_forward(m, &pre, cache, &row, NULL);
    cache->len[0] = 7;
    row = 0;
    nn_batch one = {.B = 1, .T = 1, .ids = p2 + 7};
    nn_model_forward(m, &one, cache, &row, NULL);
    float *dec = xmalloc((size_t)V * 4);
    memcpy(dec, m->logits, (size_t)V * 4);
    nn_batch full = {.B = 1, .T = 8, .ids = p2};
    row = 7;
    nn_model_forward(m, &full, NULL, &row, NULL);
    for (int i = 0; i < V; i++) assert_float_equal(dec[i], m->logits[i], 1e-5);
    free(dec);
    nn_cache_free(m, cache);
    nn_model_free(m);
}

/* Scoring: the sum of per-token log-probs equals -(sum of xent) of the full sequence; greedy flag. */
static void test_score(void **state)
{
    (void)state;
    nn_model *m = tiny(0, 1, 21);
    int32_t c0[3] = {1, 2, 3}, k0[2] = {4, 5}, c1[1] = {7}, k1[4] = {8, 9, 10, 11};
    const int32_t *ctx[2] = {c0, c1}, *cont[2] = {k0, k1};
    int nc[2] = {3, 1}, nk[2] = {2, 4}, greedy[2];
    double lp[2], lp1[2];
    float *pt[2];
    assert_int_equal(nn_score(m, ctx, nc, cont, nk, 2, 2, lp, greedy, pt), 0);
    assert_int_equal(nn_score(m, ctx, nc, cont, nk, 2, 1, lp1, NULL, NULL), 0); /* batch size does not matter */
    for (int i = 0; i < 2; i++) {
        assert_float_equal(lp[i], lp1[i], 1e-4);
        double s = 0;
        for (int j = 0; j < nk[i]; j++) s += pt[i][j];
        assert_float_equal(s, lp[i], 1e-4);
        assert_true(lp[i] < 0);
        free(pt[i]);
    }
    /* reference for item 1: full forward of [7 8 9 10 11], targets shifted */
    int32_t ids[4] = {7, 8, 9, 10}, tg[4] = {8, 9, 10, 11};
    nn_model_prepare(m, 1, 4, NN_ACT_SCORE);
    nn_batch bt = {.B = 1, .T = 4, .ids = ids};
    nn_model_forward(m, &bt, NULL, NULL, NULL);
    double loss;
    int cnt;
    nn_model_xent(m, tg, 0, 1, &loss, &cnt);
    assert_float_equal(-loss * cnt, lp[1], 1e-4);
    nn_model_free(m);
}

static void test_checkpoint_roundtrip(void **state)
{
    (void)state;
    nn_model *m = tiny(0, 2, 4);
    char *d1 = tu_path("ck_f32"), *d2 = tu_path("ck_sharded"), *d3 = tu_path("ck_bf16");
    assert_int_equal(nn_model_save(m, d1, ST_F32, 0), 0);
    assert_int_equal(nn_model_save(m, d2, ST_F32, 20000), 0); /* several shards + index */
    assert_int_equal(nn_model_save(m, d3, ST_BF16, 0), 0);
    char *idx = hx_path_join(d2, "model.safetensors.index.json");
    assert_true(hx_file_exists(idx));
    free(idx);
    nn_model *a, *b, *c;
    assert_int_equal(nn_model_load(&a, d1, be), 0);
    assert_int_equal(nn_model_load(&b, d2, be), 0);
    assert_int_equal(nn_model_load(&c, d3, be), 0);
    assert_memory_equal(a->p, m->p, m->n_floats * 4);
    assert_memory_equal(b->p, m->p, m->n_floats * 4);
    assert_string_equal(c->cfg.dtype, "bfloat16");
    for (size_t i = 0; i < m->n_floats; i++) assert_true(fabsf(c->p[i] - m->p[i]) <= fabsf(m->p[i]) / 128 + 1e-30f);
    assert_int_equal(nn_checkpoint_check(d2), 0);
    /* engine cache: the same key gives the same model without reloading */
    nn_engine *e = nn_engine_new("cpu", 2);
    nn_model *e1 = nn_engine_model(e, "key1", d1), *e2 = nn_engine_model(e, "key1", d1);
    assert_ptr_equal(e1, e2);
    assert_int_equal(nn_engine_n_models(e), 1);
    nn_model *cp = nn_engine_model_copy(e, "key1", d1);
    assert_true(cp != e1);
    assert_memory_equal(cp->p, e1->p, e1->n_floats * 4);
    nn_model_free(cp);
    assert_null(nn_engine_model(e, "key2", "/nonexistent"));
    nn_engine_free(e);
    /* a missing tensor and a wrong shape are named */
    nn_config cfg = m->cfg;
    cfg.ffn = 48;
    char *cj = hx_path_join(d1, "config.json");
    nn_config_save(&cfg, cj, "float32");
    assert_int_equal(nn_checkpoint_check(d1), -1);
    assert_non_null(strstr(hx_last_error(), "shape"));
    free(cj);
    nn_model_free(a); nn_model_free(b); nn_model_free(c); nn_model_free(m);
    free(d1); free(d2); free(d3);
}

/*
 * The exact Qwen/Qwen3-0.6B tensor names and shapes, in two bf16 shards with an index, as sparse files (the
 * data block is a hole: no 1.2 GB is written or read). nn_checkpoint_check maps every name and shape.
 */
static void test_qwen3_06b_names(void **state)
{
    (void)state;
    nn_config c;
    nn_config_qwen3(&c, 151936, 1024, 28, 16, 8, 128, 3072);
    c.bos_id = 151643;
    c.eos_id = 151645;
    strcpy(c.dtype, "bfloat16");
    nn_param *tab;
    int n;
    assert_int_equal(nn_param_table(&c, &tab, &n), 0);
    assert_int_equal(n, 1 + 28 * 11 + 1);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += tab[i].numel;
    assert_int_equal(total, 596049920); /* Qwen3-0.6B: 0.6B parameters, tied */
    char *dir = tu_path("qwen3-0.6b");
    hx_mkdir_p(dir);
    char *cp = hx_path_join(dir, "config.json");
    assert_int_equal(nn_config_save(&c, cp, "bfloat16"), 0);
    free(cp);
    json_t *wm = json_object();
    for (int s = 0; s < 2; s++) {
        json_t *h = json_object();
        json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
        size_t off = 0;
        for (int i = s ? n / 2 : 0; i < (s ? n : n / 2); i++) {
            json_t *shape = tab[i].ndim == 2 ? json_pack("[I,I]", (json_int_t)tab[i].shape[0], (json_int_t)tab[i].shape[1])
                                             : json_pack("[I]", (json_int_t)tab[i].shape[0]);
            json_object_set_new(h, tab[i].name, json_pack("{s:s,s:o,s:[I,I]}", "dtype", "BF16", "shape", shape,
                                                          "data_offsets", (json_int_t)off, (json_int_t)(off + 2 * tab[i].numel)));
            off += 2 * tab[i].numel;
            json_object_set_new(wm, tab[i].name, json_string(s ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors"));
        }
        char *txt = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        char *path = hx_path_join(dir, s ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors");
        int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        uint64_t hl = strlen(txt);
        assert_int_equal(write(fd, &hl, 8), 8);
        assert_int_equal(write(fd, txt, hl), (ssize_t)hl);
        assert_int_equal(ftruncate(fd, (off_t)(8 + hl + off)), 0);
        close(fd);
        free(txt);
        free(path);
    }
    json_t *index = json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)(2 * total), "weight_map", wm);
    char *ip = hx_path_join(dir, "model.safetensors.index.json");
    json_dump_file(index, ip, 0);
    json_decref(index);
    if (nn_checkpoint_check(dir)) fail_msg("0.6B check: %s", hx_last_error());
    nn_config back;
    cp = hx_path_join(dir, "config.json");
    assert_int_equal(nn_config_load(&back, cp), 0);
    assert_int_equal(back.n_layers, 28);
    assert_int_equal(back.head_dim, 128);
    assert_int_equal(back.tied, 1);
    free(cp);
    free(ip);
    free(tab);
    free(dir);
}

int main(void)
{
    be = k_cpu_new(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),   cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_freeze),   cmocka_unit_test(test_packing),
        cmocka_unit_test(test_decode_equals_prefill), cmocka_unit_test(test_score),
        cmocka_unit_test(test_checkpoint_roundtrip),  cmocka_unit_test(test_qwen3_06b_names),
    };
    int r = cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
    k_backend_free(be);
    return r;
}
