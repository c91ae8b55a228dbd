/* conform_kda.c - hx conform for the fixture kinds kda_core (the gated delta rule) and kda_layer (one KDA mixer). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "base/base.h"
#include "nn/conform.h"
#include "nn/kda_layer.h"
#include "nn/safetensors.h"

#define TOL_OUT 1e-4
#define TOL_GRAD 1e-3
/* kda_core on a GPU: the chunk-parallel kernels (head dims 128) take TF32 operands in their chunk products
 * (relative rounding 2^-11, errors 2-5e-4 of the tensor's max in the op tests); the sequential ones are fp32 */
#define TOL_TF32 2e-3

/* Loads tensor name with the expected number of dims into a fresh buffer; shape copied to shape[]. */
static float *load_shaped(const st_file *f, const char *name, int ndim, int64_t *shape)
{
    const st_tensor *t = st_find(f, name);
    if (!t) {
        error("%s: tensor '%s' missing", f->path, name);
        return NULL;
    }
    if (t->ndim != ndim) {
        error("%s: tensor '%s' has %d dims, want %d", f->path, name, t->ndim, ndim);
        return NULL;
    }
    for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    float *p = xmalloc(sizeof(float) * (st_numel(t) ? st_numel(t) : 1));
    if (st_read_f32(f, t, p) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

static int same_shape(const st_file *f, const char *name, int ndim, const int64_t *want)
{
    const st_tensor *t = st_find(f, name);
    if (!t) return error("%s: tensor '%s' missing", f->path, name);
    if (t->ndim != ndim) return error("%s: tensor '%s' has %d dims, want %d", f->path, name, t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != want[i])
            return error("%s: tensor '%s' dim %d is %lld, want %lld", f->path, name, i, (long long)t->shape[i],
                         (long long)want[i]);
    return 0;
}

/* Host <-> device copies for running a fixture on any backend (host memory on the CPU backend). */
static float *dev_up(k_backend *be, const float *h, size_t n)
{
    if (!h) return NULL;
    float *d = be->op->alloc(be, (n ? n : 1) * sizeof(float));
    be->op->upload(be, d, h, n * sizeof(float));
    return d;
}

static void dev_down(k_backend *be, float *h, const float *d, size_t n)
{
    be->op->download(be, h, d, n * sizeof(float));
}

static void dev_free(k_backend *be, float **d, int n)
{
    for (int i = 0; i < n; i++)
        if (d[i]) be->op->free(be, d[i]);
}

int nn_conform_kda_core(const char *dir, nn_check *c)
{
    k_backend *be = k_cpu_new(0);
    int r = nn_conform_kda_core_on(dir, be, c);
    k_backend_free(be);
    return r;
}

int nn_conform_kda_layer(const char *dir, nn_check *c)
{
    k_backend *be = k_cpu_new(0);
    int r = nn_conform_kda_layer_on(dir, be, c);
    k_backend_free(be);
    return r;
}

int nn_conform_kda_core_on(const char *dir, k_backend *be, nn_check *c)
{
    char *path = hx_path_join(dir, "expected.safetensors");
    st_file f;
    int rc = -1;
    float *q = NULL, *k = NULL, *v = NULL, *g = NULL, *beta = NULL, *s0 = NULL, *dout = NULL, *dsT = NULL;
    float *qn = NULL, *kn = NULL, *o = NULL, *sT = NULL, *sch = NULL;
    float *dqn = NULL, *dkn = NULL, *dq = NULL, *dk = NULL, *dv = NULL, *dg = NULL, *dbeta = NULL, *ds0 = NULL;
    if (st_open(&f, path) < 0) {
        free(path);
        return -1;
    }
    int64_t sq[4], sv[4], sb[3], ss[4];
    if (!(q = load_shaped(&f, "q", 4, sq)) || !(v = load_shaped(&f, "v", 4, sv)) ||
        !(beta = load_shaped(&f, "beta", 3, sb)))
        goto out;
    const int B = (int)sq[0], T = (int)sq[1], H = (int)sq[2], K = (int)sq[3], V = (int)sv[3];
    if (B <= 0 || T <= 0 || H <= 0 || K <= 0 || V <= 0 || sv[0] != B || sv[1] != T || sv[2] != H ||
        sb[0] != B || sb[1] != T || sb[2] != H) {
        error("%s: inconsistent shapes of q [B,T,H,K], v [B,T,H,V], beta [B,T,H]", path);
        goto out;
    }
    int64_t shk[4] = {B, T, H, K}, shv[4] = {B, T, H, V}, shs[4] = {B, H, K, V};
    if (same_shape(&f, "k", 4, shk) < 0 || same_shape(&f, "g", 4, shk) < 0 || same_shape(&f, "o", 4, shv) < 0 ||
        same_shape(&f, "do", 4, shv) < 0 || same_shape(&f, "final_state", 4, shs) < 0)
        goto out;
    k = load_shaped(&f, "k", 4, sq);
    g = load_shaped(&f, "g", 4, sq);
    dout = load_shaped(&f, "do", 4, sv);
    int has_s0 = st_find(&f, "initial_state") != NULL;
    if (has_s0 && (same_shape(&f, "initial_state", 4, shs) < 0 || !(s0 = load_shaped(&f, "initial_state", 4, ss))))
        goto out;
    if (st_find(&f, "dfinal_state") &&
        (same_shape(&f, "dfinal_state", 4, shs) < 0 || !(dsT = load_shaped(&f, "dfinal_state", 4, ss))))
        goto out;

    size_t nk = (size_t)B * T * H * K, nv = (size_t)B * T * H * V, ns = (size_t)B * H * K * V;
    qn = xmalloc(sizeof(float) * nk);
    kn = xmalloc(sizeof(float) * nk);
    o = xmalloc(sizeof(float) * nv);
    sT = xmalloc(sizeof(float) * ns);
    sch = xmalloc(sizeof(float) * ns * k_kda_nchunks(T));
    const int save = be->op->kda_save ? be->op->kda_save(be, K, V) : 0; /* what be's core keeps beyond the states */
    size_t nc = ((size_t)B * H * K * V + (size_t)B * H * save) * k_kda_nchunks(T), nb = (size_t)B * T * H;
    /* device copies: inputs, then outputs and gradients (zeroed: backward ops accumulate) */
    enum { DQ, DK, DV, DG, DBETA, DS0, DDOUT, DDST, DQN, DKN, DO, DST, DSCH, DDQN, DDKN, DDQ, DDK, DDV, DDG, DDB, DDS0, ND };
    float *D[ND] = {0};
    D[DQ] = dev_up(be, q, nk), D[DK] = dev_up(be, k, nk), D[DV] = dev_up(be, v, nv), D[DG] = dev_up(be, g, nk);
    D[DBETA] = dev_up(be, beta, nb), D[DS0] = dev_up(be, s0, ns), D[DDOUT] = dev_up(be, dout, nv);
    D[DDST] = dev_up(be, dsT, ns);
    size_t sz[ND] = {[DQN] = nk, [DKN] = nk, [DO] = nv, [DST] = ns, [DSCH] = nc, [DDQN] = nk, [DDKN] = nk,
                     [DDQ] = nk, [DDK] = nk, [DDV] = nv, [DDG] = nk, [DDB] = nb, [DDS0] = ns};
    for (int i = DQN; i < ND; i++) D[i] = be->op->alloc(be, sz[i] * sizeof(float));
    be->op->l2norm_fwd(be, D[DQN], D[DQ], nb, K, 1.0f / sqrtf((float)K), 1e-6f);
    be->op->l2norm_fwd(be, D[DKN], D[DK], nb, K, 1.0f, 1e-6f);
    be->op->kda_fwd(be, D[DO], D[DST], D[DSCH], D[DQN], D[DKN], D[DV], D[DG], D[DBETA], D[DS0], B, T, H, K, V);
    dev_down(be, o, D[DO], nv);
    dev_down(be, sT, D[DST], ns);
    float *want = st_load_f32(&f, "o", NULL);
    const double tol_out = be->device >= 0 ? TOL_TF32 : TOL_OUT, tol_grad = be->device >= 0 ? TOL_TF32 : TOL_GRAD;
    nn_check_tensor(c, "o", o, want, nv, tol_out);
    free(want);
    want = st_load_f32(&f, "final_state", NULL);
    nn_check_tensor(c, "final_state", sT, want, ns, tol_out);
    free(want);

    dqn = xcalloc(nk, sizeof(float));
    dkn = xcalloc(nk, sizeof(float));
    dq = xcalloc(nk, sizeof(float));
    dk = xcalloc(nk, sizeof(float));
    dg = xcalloc(nk, sizeof(float));
    dv = xcalloc(nv, sizeof(float));
    dbeta = xcalloc((size_t)B * T * H, sizeof(float));
    ds0 = xcalloc(ns, sizeof(float));
    be->op->kda_bwd(be, D[DDQN], D[DDKN], D[DDV], D[DDG], D[DDB], D[DDS0], D[DDOUT], D[DDST], D[DQN], D[DKN], D[DV],
                    D[DG], D[DBETA], D[DSCH], B, T, H, K, V);
    be->op->l2norm_bwd(be, D[DDQ], D[DDQN], D[DQ], nb, K, 1.0f / sqrtf((float)K), 1e-6f);
    be->op->l2norm_bwd(be, D[DDK], D[DDKN], D[DK], nb, K, 1.0f, 1e-6f);
    dev_down(be, dq, D[DDQ], nk);
    dev_down(be, dk, D[DDK], nk);
    dev_down(be, dv, D[DDV], nv);
    dev_down(be, dg, D[DDG], nk);
    dev_down(be, dbeta, D[DDB], nb);
    dev_down(be, ds0, D[DDS0], ns);
    dev_free(be, D, ND);
    struct { const char *name; const float *got; size_t n; } grads[] = {
        {"dq", dq, nk}, {"dk", dk, nk}, {"dv", dv, nv}, {"dg", dg, nk}, {"dbeta", dbeta, (size_t)B * T * H},
        {"dinitial_state", ds0, ns},
    };
    for (size_t i = 0; i < sizeof grads / sizeof grads[0]; i++) {
        const st_tensor *t = st_find(&f, grads[i].name);
        if (!t) {
            if (i < 5) nn_check_fail(c, grads[i].name, "missing in the fixture");
            continue;
        }
        if (st_numel(t) != grads[i].n) {
            nn_check_fail(c, grads[i].name, "wrong size in the fixture");
            continue;
        }
        want = st_load_f32(&f, grads[i].name, NULL);
        nn_check_tensor(c, grads[i].name, grads[i].got, want, grads[i].n, tol_grad);
        free(want);
    }
    rc = 0;
out:
    free(q); free(k); free(v); free(g); free(beta); free(s0); free(dout); free(dsT);
    free(qn); free(kn); free(o); free(sT); free(sch);
    free(dqn); free(dkn); free(dq); free(dk); free(dv); free(dg); free(dbeta); free(ds0);
    st_close(&f);
    free(path);
    return rc;
}

/* Reads the layer config from README.json's "config" object. */
static int kda_layer_cfg(const char *dir, nn_kda_cfg *c)
{
    char *path = hx_path_join(dir, "README.json");
    json_t *root = hx_read_json(path, 0);
    int rc = -1;
    if (!root) goto out;
    json_t *cfg = json_object_get(root, "config");
    if (!json_is_object(cfg)) {
        error("%s: no \"config\" object (a kda_layer fixture gives the layer's shape there)", path);
        goto out;
    }
    struct { const char *key; int *dst; int def; } ints[] = {
        {"hidden_size", &c->d, -1}, {"num_heads", &c->Hq, -1}, {"num_kv_heads", &c->Hkv, -1},
        {"head_dim", &c->K, -1}, {"gate_rank", &c->r, 0}, {"conv_size", &c->W, 4},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_object_get(cfg, ints[i].key);
        if (!v && ints[i].def >= 0) { *ints[i].dst = ints[i].def; continue; }
        if (!json_is_integer(v)) {
            error("%s: config.%s must be an integer", path, ints[i].key);
            goto out;
        }
        *ints[i].dst = (int)json_integer_value(v);
    }
    if (!c->r) c->r = c->K;
    const char *act = json_string_value(json_object_get(cfg, "conv_act"));
    const char *gate = json_string_value(json_object_get(cfg, "gate"));
    json_t *eps = json_object_get(cfg, "norm_eps");
    c->conv_act = act && !strcmp(act, "silu");
    if (act && strcmp(act, "silu") && strcmp(act, "identity")) {
        error("%s: config.conv_act '%s' is not identity or silu", path, act);
        goto out;
    }
    c->per_head = gate && !strcmp(gate, "per_head");
    if (gate && strcmp(gate, "per_head") && strcmp(gate, "per_channel")) {
        error("%s: config.gate '%s' is not per_channel or per_head", path, gate);
        goto out;
    }
    c->eps = json_is_number(eps) ? (float)json_number_value(eps) : 1e-6f;
    if (nn_kda_cfg_check(c) < 0) {
        error_prefix("%s", path);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    free(path);
    return rc;
}

/* One KDA layer on kb: forward of x and backward of dy (host arrays in, host y, dx and parameter grads out). */
static void layer_run(k_backend *kb, const nn_kda_cfg *cfg0, const float *params, const float *x, const float *dy,
                      int B, int T, float *y, float *dx, float *grads)
{
    nn_kda_cfg lc = *cfg0; /* with what kb's core keeps for its backward */
    lc.save = kb->op->kda_save ? kb->op->kda_save(kb, lc.K, lc.K) : 0;
    const nn_kda_cfg *cfg = &lc;
    size_t N = (size_t)B * T, np = nn_kda_params_floats(cfg);
    memset(dx, 0, N * cfg->d * sizeof(float));
    memset(grads, 0, np * sizeof(float));
    float *dparams = dev_up(kb, params, np), *dgrads = dev_up(kb, grads, np), *dxin = dev_up(kb, x, N * cfg->d);
    float *ddy = dev_up(kb, dy, N * cfg->d), *dyout = dev_up(kb, dx, N * cfg->d), *ddx = dev_up(kb, dx, N * cfg->d);
    float *acts = kb->op->alloc(kb, sizeof(float) * nn_kda_acts_floats(cfg, B, T));
    float *scr = kb->op->alloc(kb, sizeof(float) * nn_kda_bwd_scratch_floats(cfg, B, T));
    nn_kda_params dp, dg;
    nn_kda_params_bind(&dp, dparams, cfg);
    nn_kda_params_bind(&dg, dgrads, cfg);
    nn_kda_acts a;
    nn_kda_acts_bind(&a, acts, cfg, B, T);
    nn_kda_forward(kb, dyout, &a, dxin, &dp, cfg, NULL);
    dev_down(kb, y, dyout, N * cfg->d);
    nn_kda_backward(kb, ddx, &dg, ddy, &a, dxin, &dp, cfg, scr);
    dev_down(kb, dx, ddx, N * cfg->d);
    dev_down(kb, grads, dgrads, np);
    float *dbufs[] = {dparams, dgrads, dxin, ddy, dyout, ddx, acts, scr};
    dev_free(kb, dbufs, 8);
}

int nn_conform_kda_layer_on(const char *dir, k_backend *kb, nn_check *c)
{
    /* On a GPU the layer's projections take bf16 operands, which these random layers amplify (up to 0.16 max_rel
     * in the gradients, conform_model.c): the GPU is compared with the CPU ops on bf16-rounded matmul operands
     * (guard:bf16), at conform.h's bf16 tolerances; the CPU with the fixture at the contract's. */
    const int gpu = kb->device >= 0;
    const double tol_out = gpu ? NN_TOL_OUT_BF16 : TOL_OUT, tol_grad = gpu ? NN_TOL_GRAD_BF16 : TOL_GRAD;
    float *ty = NULL, *tdx = NULL, *tgrads = NULL;
    nn_kda_cfg cfg;
    if (kda_layer_cfg(dir, &cfg) < 0) return -1;
    char *path = hx_path_join(dir, "expected.safetensors");
    st_file f;
    if (st_open(&f, path) < 0) {
        free(path);
        return -1;
    }
    int rc = -1;
    float *params = NULL, *grads = NULL, *x = NULL, *dy = NULL, *y = NULL, *dx = NULL;
    int64_t sx[3];
    if (!(x = load_shaped(&f, "x", 3, sx))) goto out;
    if (sx[2] != cfg.d || sx[0] <= 0 || sx[1] <= 0) {
        error("%s: x is [%lld,%lld,%lld], want [B,T,%d]", path, (long long)sx[0], (long long)sx[1],
              (long long)sx[2], cfg.d);
        goto out;
    }
    const int B = (int)sx[0], T = (int)sx[1];
    if (same_shape(&f, "y", 3, sx) < 0 || same_shape(&f, "dy", 3, sx) < 0 || same_shape(&f, "dx", 3, sx) < 0 ||
        !(dy = load_shaped(&f, "dy", 3, sx)))
        goto out;
    nn_kda_params p, g;
    params = xcalloc(nn_kda_params_floats(&cfg), sizeof(float));
    grads = xcalloc(nn_kda_params_floats(&cfg), sizeof(float));
    nn_kda_params_bind(&p, params, &cfg);
    nn_kda_params_bind(&g, grads, &cfg);
    for (int i = 0; i < NN_KDA_NPARAMS; i++) {
        char name[96];
        int64_t shape[2];
        int nd = nn_kda_param_shape(&cfg, i, shape);
        snprintf(name, sizeof name, "param.%s", nn_kda_param_names[i]);
        if (same_shape(&f, name, nd, shape) < 0 || st_read_f32(&f, st_find(&f, name), p.t[i]) < 0) goto out;
    }
    size_t N = (size_t)B * T, np = nn_kda_params_floats(&cfg);
    y = xmalloc(sizeof(float) * N * cfg.d);
    dx = xcalloc(N * cfg.d, sizeof(float));
    layer_run(kb, &cfg, params, x, dy, B, T, y, dx, grads);
    if (gpu) {
        k_backend *tb = k_backend_new("guard:bf16", kb->threads);
        if (!tb) goto out;
        ty = xmalloc(sizeof(float) * N * cfg.d);
        tdx = xmalloc(sizeof(float) * N * cfg.d);
        tgrads = xmalloc(sizeof(float) * np);
        layer_run(tb, &cfg, params, x, dy, B, T, ty, tdx, tgrads);
        k_backend_free(tb);
    }
    float *want = gpu ? ty : st_load_f32(&f, "y", NULL);
    nn_check_tensor(c, gpu ? "y (vs cpu bf16)" : "y", y, want, N * cfg.d, tol_out);
    if (!gpu) free(want);
    want = gpu ? tdx : st_load_f32(&f, "dx", NULL);
    nn_check_tensor(c, gpu ? "dx (vs cpu bf16)" : "dx", dx, want, N * cfg.d, tol_grad);
    if (!gpu) free(want);
    for (int i = 0; i < NN_KDA_NPARAMS; i++) {
        char name[96];
        snprintf(name, sizeof name, "grad.%s", nn_kda_param_names[i]);
        const st_tensor *t = st_find(&f, name);
        if (!t || st_numel(t) != nn_kda_param_numel(&cfg, i)) {
            nn_check_fail(c, name, t ? "wrong size in the fixture" : "missing in the fixture");
            continue;
        }
        if (gpu) {
            char nm[112];
            snprintf(nm, sizeof nm, "%s (vs cpu bf16)", name);
            nn_check_tensor(c, nm, g.t[i], tgrads + (g.t[i] - grads), st_numel(t), tol_grad);
            continue;
        }
        want = st_load_f32(&f, name, NULL);
        nn_check_tensor(c, name, g.t[i], want, st_numel(t), tol_grad);
        free(want);
    }
    rc = 0;
out:
    free(params); free(grads); free(x); free(dy); free(y); free(dx); free(ty); free(tdx); free(tgrads);
    st_close(&f);
    free(path);
    return rc;
}
