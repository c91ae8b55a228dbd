/* conform_model.c - whole-model conformance against a PyTorch/transformers fixture (kinds qwen3, hybrid). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/nn/conform_model.h"
#include "engine/nn/generate.h"
#include "engine/nn/model.h"

/* Tolerances (fixtures/README.md): outputs 1e-4 relative to the tensor's max magnitude, gradients 1e-3. */
#define TOL_OUT 1e-4
#define TOL_GRAD 1e-3

static void check_dev(nn_check *c, k_backend *be, const char *name, const float *dev, const st_file *ex, size_t n,
                      double tol)
{
    const st_tensor *t = st_find(ex, name);
    if (!t) {
        nn_check_fail(c, name, "missing from expected.safetensors");
        return;
    }
    if (st_numel(t) != n) {
        char why[96];
        snprintf(why, sizeof why, "expected has %zu values, the model %zu", st_numel(t), n);
        nn_check_fail(c, name, why);
        return;
    }
    float *want = xmalloc(n * sizeof(float)), *got = xmalloc(n * sizeof(float));
    st_read_f32(ex, t, want);
    be->op->download(be, got, dev, n * sizeof(float));
    nn_check_tensor(c, name, got, want, n, tol);
    free(want);
    free(got);
}

int nn_conform_model(const char *dir, const char *device, int threads, nn_check *c)
{
    k_backend *be = k_backend_new(device, threads);
    if (!be) return -1;
    nn_model *m = NULL;
    st_file ex;
    int r = -1;
    char *exp_path = hx_path_join(dir, "expected.safetensors");
    int32_t *ids = NULL, *labels = NULL;
    float **hidden = NULL;
    if (st_open(&ex, exp_path)) {
        free(exp_path);
        k_backend_free(be);
        return -1;
    }
    /* bf16 matmuls on a GPU (conform.h); the fixtures' contract on the CPU */
    const double tol_out = be->device >= 0 ? NN_TOL_OUT_BF16 : TOL_OUT, tol_grad = be->device >= 0 ? NN_TOL_GRAD_BF16 : TOL_GRAD;
    if (nn_model_load(&m, dir, be)) goto out;
    const st_tensor *ti = st_find(&ex, "input_ids");
    if (!ti || ti->ndim != 2) {
        error("%s: input_ids [B,T] missing", exp_path);
        goto out;
    }
    int B = (int)ti->shape[0], T = (int)ti->shape[1], N = B * T, L = m->cfg.n_layers;
    if (!(ids = st_load_i32(&ex, "input_ids", NULL))) goto out;
    if (nn_model_prepare(m, B, T, NN_ACT_TRAIN) || nn_model_set_trainable(m, NN_ALL_GROUPS)) goto out;
    hidden = xcalloc((size_t)L + 1, sizeof *hidden);
    for (int i = 0; i <= L; i++) {
        char name[48];
        snprintf(name, sizeof name, "hidden_states.%d", i);
        if (st_find(&ex, name)) hidden[i] = xmalloc((size_t)N * m->cfg.d * sizeof(float));
    }
    nn_batch bt = {.B = B, .T = T, .ids = ids};
    if (nn_model_forward(m, &bt, NULL, NULL, hidden)) goto out;
    check_dev(c, be, "logits", m->logits, &ex, (size_t)N * m->cfg.vocab, tol_out);
    for (int i = 0; i <= L; i++)
        if (hidden[i]) {
            char name[48];
            snprintf(name, sizeof name, "hidden_states.%d", i);
            float *want = st_load_f32(&ex, name, NULL);
            nn_check_tensor(c, name, hidden[i], want, (size_t)N * m->cfg.d, tol_out);
            free(want);
        }
    if (st_find(&ex, "labels")) {
        if (!(labels = st_load_i32(&ex, "labels", NULL))) goto out;
        double loss;
        nn_model_zero_grad(m);
        if (nn_model_xent(m, labels, 1, 1.0f, &loss, NULL)) goto out;
        float want_loss = 0, got_loss = (float)loss;
        const st_tensor *tl = st_find(&ex, "loss");
        if (tl && st_numel(tl) == 1) {
            st_read_f32(&ex, tl, &want_loss);
            nn_check_tensor(c, "loss", &got_loss, &want_loss, 1, tol_out);
        }
        if (nn_model_backward(m)) goto out;
        for (int i = 0; i < ex.n; i++) {
            const char *nm = ex.t[i].name;
            if (strncmp(nm, "grad.", 5)) continue;
            int pi = nn_model_find(m, nm + 5);
            if (pi < 0) {
                nn_check_fail(c, nm, "not a parameter of the model");
                continue;
            }
            check_dev(c, be, nm, nn_model_grad(m, nm + 5), &ex, m->params[pi].numel, tol_grad);
        }
    }
    if (st_find(&ex, "generate.prompt") && st_find(&ex, "generate.output")) {
        size_t np, no;
        int32_t *prompt = st_load_i32(&ex, "generate.prompt", &np), *want = st_load_i32(&ex, "generate.output", &no);
        if (prompt && want && no > np) {
            int lens = (int)np, n_out;
            int32_t *gen;
            const int32_t *pp = prompt;
            nn_gen_opts o = {.max_new = (int)(no - np)};
            if (!nn_generate(m, &pp, &lens, 1, &o, &gen, &n_out)) {
                int32_t *full = xmalloc(((size_t)np + n_out) * sizeof(int32_t));
                memcpy(full, prompt, np * sizeof(int32_t));
                memcpy(full + np, gen, (size_t)n_out * sizeof(int32_t));
                nn_check_ints(c, "generate.output", full, np + (size_t)n_out, want, no);
                free(full);
                free(gen);
            } else
                nn_check_fail(c, "generate.output", hx_last_error());
        } else
            nn_check_fail(c, "generate.output", "generate.prompt / generate.output unreadable");
        free(prompt);
        free(want);
    }
    r = 0;
out:
    if (hidden)
        for (int i = 0; m && i <= m->cfg.n_layers; i++) free(hidden[i]);
    free(hidden);
    free(ids);
    free(labels);
    nn_model_free(m);
    st_close(&ex);
    free(exp_path);
    k_backend_free(be);
    return r;
}
