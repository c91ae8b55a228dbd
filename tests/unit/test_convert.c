/* test_convert.c - the convert stage: layer layouts, and at init each converted layer's q, k, v equal the
 * teacher's projections (identity convs, copied Wq/Wk/Wv/Wo), gates and norms initialised as in docs/models.md section 3. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_kda_util.h"
#include "nn/kda_layer.h"
#include "nn/model.h"
#include "stages/stage_convert.h"

static void test_layouts(void **state)
{
    (void)state;
    unsigned char a[64];
    json_t *paper = json_string("paper");
    assert_int_equal(stage_convert_layers(paper, 28, a), 0);
    int want28[] = {0, 2, 6, 11, 13, 18, 21}, n = 0;
    for (int l = 0; l < 28; l++) n += a[l];
    assert_int_equal(n, 7);
    for (int i = 0; i < 7; i++) assert_true(a[want28[i]]);
    /* other depths keep round(L/4) layers, positions scaled from the paper's */
    assert_int_equal(stage_convert_layers(paper, 4, a), 0);
    assert_true(a[0] && !a[1] && !a[2] && !a[3]);
    assert_int_equal(stage_convert_layers(paper, 8, a), 0);
    assert_true(a[0] && a[5] && a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7] == 2);
    assert_int_equal(stage_convert_layers(paper, 36, a), 0);
    n = 0;
    for (int l = 0; l < 36; l++) n += a[l];
    assert_int_equal(n, 7); /* at most the paper's 7 positions */
    json_t *e4 = json_string("every_4th"), *fl = json_string("first_last"), *none = json_string("all_kda");
    assert_int_equal(stage_convert_layers(e4, 10, a), 0);
    assert_true(a[0] && a[4] && a[8] && !a[1] && !a[9]);
    assert_int_equal(stage_convert_layers(fl, 10, a), 0);
    assert_true(a[0] && a[9] && !a[5]);
    assert_int_equal(stage_convert_layers(none, 10, a), 0);
    for (int l = 0; l < 10; l++) assert_false(a[l]);
    json_t *list = json_pack("[i,i]", 1, 3);
    assert_int_equal(stage_convert_layers(list, 4, a), 0);
    assert_true(!a[0] && a[1] && !a[2] && a[3]);
    json_t *bad = json_pack("[i]", 7), *bads = json_string("half");
    assert_int_equal(stage_convert_layers(bad, 4, a), -1);
    assert_non_null(strstr(hx_last_error(), "outside 0..3"));
    assert_int_equal(stage_convert_layers(bads, 4, a), -1);
    json_decref(paper); json_decref(e4); json_decref(fl); json_decref(none); json_decref(list); json_decref(bad);
    json_decref(bads);
}

static void test_convert_at_init(void **state)
{
    (void)state;
    k_backend *be = k_cpu_new(2);
    nn_config cfg;
    nn_config_qwen3(&cfg, 64, 24, 4, 4, 2, 6, 40);
    nn_model *t;
    assert_int_equal(nn_model_new(&t, &cfg, be), 0);
    nn_model_init_random(t, 3);
    char tdir[] = "/tmp/hx-teacher-XXXXXX", sdir[] = "/tmp/hx-student-XXXXXX";
    assert_non_null(mkdtemp(tdir));
    assert_non_null(mkdtemp(sdir));
    assert_int_equal(nn_model_save(t, tdir, ST_F32, 0), 0);
    json_t *layers = json_pack("[i]", 1);
    for (int gdn = 0; gdn < 2; gdn++) {
        if (stage_convert(tdir, sdir, layers, gdn ? "gdn" : "kda", "identity", 0, 7) < 0)
            fail_msg("%s", hx_last_error());
        nn_model *s;
        if (nn_model_load(&s, sdir, be) < 0) fail_msg("%s", hx_last_error());
        assert_string_equal(s->cfg.model_type, "hx_hybrid");
        assert_int_equal(s->cfg.mixer[1], NN_MIX_ATTN);
        assert_int_equal(s->cfg.gate_rank, 6);
        for (int l = 0; l < 4; l++) {
            if (l == 1) {
                assert_int_equal(s->cfg.mixer[l], NN_MIX_ATTN);
                continue;
            }
            assert_int_equal(s->cfg.mixer[l], gdn ? NN_MIX_GDN : NN_MIX_KDA);
            /* run the converted layer's front end on random x: q, k, v after the conv == x W_teacher^T */
            nn_kda_cfg kc = {.d = 24, .Hq = 4, .Hkv = 2, .K = 6, .r = 6, .W = 4, .conv_act = 0, .per_head = gdn,
                             .eps = 1e-6f};
            nn_kda_params p;
            char name[96];
            for (int i = 0; i < NN_KDA_NPARAMS; i++) {
                snprintf(name, sizeof name, "model.layers.%d.linear_attn.%s", l, nn_kda_param_names[i]);
                p.t[i] = nn_model_param(s, name);
                assert_non_null(p.t[i]);
            }
            const int B = 2, T = 9, N = B * T;
            hx_rng r;
            hx_rng_seed(&r, 100 + l);
            float *x = tk_randn(&r, (size_t)N * 24, 1), *y = xmalloc(sizeof(float) * N * 24);
            float *acts = xmalloc(sizeof(float) * nn_kda_acts_floats(&kc, B, T));
            nn_kda_acts a;
            nn_kda_acts_bind(&a, acts, &kc, B, T);
            nn_kda_forward(be, y, &a, x, &p, &kc, NULL);
            const char *proj[3] = {"q_proj", "k_proj", "v_proj"};
            const float *got[3] = {a.qc, a.kc, a.vc};
            int outs[3] = {24, 12, 12};
            for (int j = 0; j < 3; j++) {
                snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", l, proj[j]);
                float *want = xmalloc(sizeof(float) * N * outs[j]);
                k_linear_fwd(be, want, x, nn_model_param(t, name), N, 24, outs[j], 0);
                double e = tk_relerr(got[j], want, (size_t)N * outs[j]);
                printf("layer %d %s: converted vs teacher projection rel err %.1e\n", l, proj[j], e);
                assert_true(e < 1e-6);
                free(want);
            }
            /* Wo copied; output gate at sigmoid(0) = 0.5; o_norm = 1; A_log in [0, log 16]; dt in [1e-3, 1e-1] */
            snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.weight", l);
            assert_memory_equal(p.o_proj, nn_model_param(t, name), sizeof(float) * 24 * 24);
            for (int i = 0; i < 24; i++) assert_true(p.g_up_b[i] == 0 && p.g_up[i] == 0);
            for (int i = 0; i < 6; i++) assert_true(p.o_norm[i] == 1);
            for (int h = 0; h < 4; h++) assert_true(p.A_log[h] >= 0 && p.A_log[h] <= logf(16.0f) + 1e-6f);
            for (size_t i = 0; i < nn_kda_param_numel(&kc, NN_KDA_DT_BIAS); i++) {
                double dt = log1p(exp(p.dt_bias[i]));
                assert_true(dt >= 0.99e-3 && dt <= 1.01e-1);
            }
            free(x); free(y); free(acts);
        }
        /* everything else is the teacher's */
        for (int i = 0; i < t->n_params; i++) {
            float *sp = nn_model_param(s, t->params[i].name);
            if (!sp) continue; /* the attention tensors of converted layers */
            assert_memory_equal(sp, t->p + t->params[i].off, sizeof(float) * t->params[i].numel);
        }
        nn_model_free(s);
    }
    json_decref(layers);
    hx_rm_rf(tdir);
    hx_rm_rf(sdir);
    nn_model_free(t);
    k_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_convert_at_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
