/* cmd_bench.c - `hx bench kda|memory`: engine benchmarks as commands (never timed assertions); the subcommands are rows
 * of the command table (commands.c), train/infer/eval live in bench_engine.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "nn/kda_layer.h"
#include "nn/memory.h"
#include "nn/model.h"
#include "stages/stage_convert.h"
#include "kernels/kernels.h"

/* "4096,32768,131072" -> lengths (at most max); returns the count or -1 */
static int parse_lengths(const char *s, long long *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v <= 0) return -1;
        if (*end == 'K' || *end == 'k') { v *= 1024; end++; }
        out[n++] = v;
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return n;
}

static void mem_row(const char *what, const nn_config *c, long long ctx, const nn_mem *teacher)
{
    nn_mem m;
    nn_memory_per_seq(c, ctx, 2, &m);
    printf("%-22s %3d/%-3d %8lld %16zu %12zu %16zu %9.4f %9.4f\n", what, m.n_attn, m.n_linear, ctx, m.kv_bytes,
           m.state_bytes, m.kv_bytes + m.state_bytes, teacher->kv_bytes ? (double)m.kv_bytes / teacher->kv_bytes : 0,
           teacher->kv_bytes ? (double)(m.kv_bytes + m.state_bytes) / teacher->kv_bytes : 0);
}

/* hx bench memory --config FILE [--lengths 4096,32768,131072] [--layers paper] */
int cmd_bench_memory(hx_cli *cli)
{
    const char *cfgpath = hx_cli_str(cli, "config"), *lens = hx_cli_str(cli, "lengths"),
               *layers = hx_cli_str(cli, "layers");
    if (!cfgpath) die(HX_EXIT_USAGE, "hx bench memory: --config FILE (a config.json) is required");
    nn_config c;
    if (nn_config_load(&c, cfgpath) < 0) die(HX_EXIT_USAGE, "%s", hx_last_error());
    long long L[32];
    int nl = parse_lengths(lens, L, 32);
    if (nl <= 0) die(HX_EXIT_USAGE, "hx bench memory: --lengths wants positive integers like 4096,32768,131072");
    /* the teacher: every layer attention; the student: this config if it is a hybrid, else the `layers` layout */
    nn_config teacher = c, student = c;
    for (int l = 0; l < c.n_layers; l++) teacher.mixer[l] = NN_MIX_ATTN;
    if (!nn_config_has_linear(&c)) {
        unsigned char attn[NN_MAX_LAYERS];
        json_t *spec = json_string(layers);
        if (stage_convert_layers(spec, c.n_layers, attn) < 0) die(HX_EXIT_USAGE, "%s", hx_last_error());
        json_decref(spec);
        for (int l = 0; l < c.n_layers; l++) student.mixer[l] = attn[l] ? NN_MIX_ATTN : NN_MIX_KDA;
        if (student.conv_size <= 0) student.conv_size = 4;
    }
    printf("per-sequence decode memory, %s: d %d, %d layers, Hq %d, Hkv %d, K %d; KV and conv cache bf16, state fp32\n",
           cfgpath, c.d, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim);
    printf("%-22s %7s %8s %16s %12s %16s %9s %9s\n", "model", "att/kda", "context", "kv_cache_bytes", "state_bytes",
           "total_bytes", "kv/teach", "tot/teach");
    for (int i = 0; i < nl; i++) {
        nn_mem t;
        nn_memory_per_seq(&teacher, L[i], 2, &t);
        mem_row("teacher (all attention)", &teacher, L[i], &t);
        mem_row("hybrid", &student, L[i], &t);
    }
    return 0;
}

/* ---- layer speed: KDA layer vs Qwen3 attention layer (same d, heads), forward and forward+backward ---- */

typedef struct attn_layer {
    int d, Hq, Hkv, K;
    float *wq, *wk, *wv, *wo, *qn, *kn, *inv_freq;
    float *qp, *kp, *q, *k, *v, *att, *lse, *qr, *kr; /* acts */
    float *gwq, *gwk, *gwv, *gwo, *gqn, *gkn, *dq, *dk, *dv, *datt, *dqp, *dkp;
    int32_t *pos;
} attn_layer;

/* Qwen3 attention: q = RoPE(RMSNorm_head(x Wq^T)), k likewise, v = x Wv^T, y = attn(q,k,v) Wo^T */
static void attn_fwd(k_backend *be, attn_layer *a, float *y, const float *x, int B, int T)
{
    int N = B * T, QD = a->Hq * a->K, KD = a->Hkv * a->K;
    k_linear_fwd(be, a->qp, x, a->wq, N, a->d, QD, 0);
    k_linear_fwd(be, a->kp, x, a->wk, N, a->d, KD, 0);
    k_linear_fwd(be, a->v, x, a->wv, N, a->d, KD, 0);
    be->op->rmsnorm_fwd(be, a->q, a->qr, a->qp, a->qn, N * a->Hq, a->K, 1e-6f);
    be->op->rmsnorm_fwd(be, a->k, a->kr, a->kp, a->kn, N * a->Hkv, a->K, 1e-6f);
    be->op->rope_fwd(be, a->q, a->pos, a->inv_freq, N, a->Hq, a->K);
    be->op->rope_fwd(be, a->k, a->pos, a->inv_freq, N, a->Hkv, a->K);
    k_attn_shape s = {.B = B, .Tq = T, .Tk = T, .Hq = a->Hq, .Hkv = a->Hkv, .K = a->K, .scale = 1.0f / sqrtf(a->K)};
    be->op->attn_fwd(be, a->att, a->lse, a->q, a->k, a->v, NULL, NULL, &s);
    k_linear_fwd(be, y, a->att, a->wo, N, QD, a->d, 0);
}

static void attn_bwd(k_backend *be, attn_layer *a, float *dx, const float *dy, const float *x, int B, int T)
{
    int N = B * T, QD = a->Hq * a->K, KD = a->Hkv * a->K;
    size_t nq = (size_t)N * QD, nk = (size_t)N * KD;
    memset(a->datt, 0, nq * 4); memset(a->dq, 0, nq * 4); memset(a->dqp, 0, nq * 4);
    memset(a->dk, 0, nk * 4); memset(a->dv, 0, nk * 4); memset(a->dkp, 0, nk * 4);
    k_linear_bwd(be, a->datt, a->gwo, dy, a->att, a->wo, N, QD, a->d);
    k_attn_shape s = {.B = B, .Tq = T, .Tk = T, .Hq = a->Hq, .Hkv = a->Hkv, .K = a->K, .scale = 1.0f / sqrtf(a->K)};
    be->op->attn_bwd(be, a->dq, a->dk, a->dv, a->datt, a->q, a->k, a->v, a->att, a->lse, NULL, &s);
    be->op->rope_bwd(be, a->dq, a->pos, a->inv_freq, N, a->Hq, a->K);
    be->op->rope_bwd(be, a->dk, a->pos, a->inv_freq, N, a->Hkv, a->K);
    be->op->rmsnorm_bwd(be, a->dqp, a->gqn, a->dq, a->qp, a->qn, a->qr, N * a->Hq, a->K);
    be->op->rmsnorm_bwd(be, a->dkp, a->gkn, a->dk, a->kp, a->kn, a->kr, N * a->Hkv, a->K);
    k_linear_bwd(be, dx, a->gwq, a->dqp, x, a->wq, N, a->d, QD);
    k_linear_bwd(be, dx, a->gwk, a->dkp, x, a->wk, N, a->d, KD);
    k_linear_bwd(be, dx, a->gwv, a->dv, x, a->wv, N, a->d, KD);
}

static float *rnd(hx_rng *r, size_t n, float s)
{
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = s * hx_rng_normal(r);
    return p;
}

/* hx bench kda [--d 1024 --heads 16 --kv-heads 8 --head-dim 128 --lengths 512,2048,8192 --reps 1] */
int cmd_bench_kda(hx_cli *c)
{
    int d = hx_cli_int(c, "d", 0), Hq = hx_cli_int(c, "heads", 0), Hkv = hx_cli_int(c, "kv-heads", 0),
        K = hx_cli_int(c, "head-dim", 0), reps = hx_cli_int(c, "reps", 1), threads = c->threads;
    const char *lens = hx_cli_str(c, "lengths");
    long long L[16];
    int nl = parse_lengths(lens, L, 16);
    if (nl <= 0 || reps < 1) die(HX_EXIT_USAGE, "hx bench kda: bad --lengths or --reps");
    nn_kda_cfg kc = {.d = d, .Hq = Hq, .Hkv = Hkv, .K = K, .r = K, .W = 4, .conv_act = 0, .per_head = 0,
                     .eps = 1e-6f};
    if (nn_kda_cfg_check(&kc) < 0) die(HX_EXIT_USAGE, "%s", hx_last_error());
    k_backend *be = k_cpu_new(threads);
    hx_rng r;
    hx_rng_seed(&r, 1);
    float *kp = rnd(&r, nn_kda_params_floats(&kc), 0.02f), *kg = xcalloc(nn_kda_params_floats(&kc), 4);
    nn_kda_params p, g;
    nn_kda_params_bind(&p, kp, &kc);
    nn_kda_params_bind(&g, kg, &kc);
    for (int h = 0; h < Hq; h++) p.A_log[h] = logf(1.0f + h);
    for (int i = 0; i < K; i++) p.o_norm[i] = 1.0f;
    attn_layer a = {.d = d, .Hq = Hq, .Hkv = Hkv, .K = K};
    size_t QD = (size_t)Hq * K, KD = (size_t)Hkv * K;
    a.wq = rnd(&r, QD * d, 0.02f); a.wk = rnd(&r, KD * d, 0.02f); a.wv = rnd(&r, KD * d, 0.02f);
    a.wo = rnd(&r, QD * d, 0.02f); a.qn = rnd(&r, K, 0.1f); a.kn = rnd(&r, K, 0.1f);
    a.gwq = xcalloc(QD * d, 4); a.gwk = xcalloc(KD * d, 4); a.gwv = xcalloc(KD * d, 4); a.gwo = xcalloc(QD * d, 4);
    a.gqn = xcalloc(K, 4); a.gkn = xcalloc(K, 4);
    a.inv_freq = xmalloc(sizeof(float) * K / 2);
    for (int i = 0; i < K / 2; i++) a.inv_freq[i] = (float)(1.0 / pow(1e6, 2.0 * i / K));
    printf("KDA layer vs Qwen3 attention layer, CPU fp32, %d threads: d %d, Hq %d, Hkv %d, K %d, r %d, B 1\n",
           be->threads, d, Hq, Hkv, K, K);
    printf("%7s %16s %16s %16s %16s\n", "T", "kda_fwd_tok/s", "attn_fwd_tok/s", "kda_fwdbwd_tok/s", "attn_fwdbwd_tok/s");
    for (int li = 0; li < nl; li++) {
        int T = (int)L[li], N = T;
        float *x = rnd(&r, (size_t)N * d, 1.0f), *dy = rnd(&r, (size_t)N * d, 1.0f);
        float *y = xmalloc(sizeof(float) * N * d), *dx = xcalloc((size_t)N * d, 4);
        float *acts = xmalloc(sizeof(float) * nn_kda_acts_floats(&kc, 1, T));
        float *scr = xmalloc(sizeof(float) * nn_kda_bwd_scratch_floats(&kc, 1, T));
        nn_kda_acts ka;
        nn_kda_acts_bind(&ka, acts, &kc, 1, T);
        a.qp = xmalloc(4 * N * QD); a.q = xmalloc(4 * N * QD); a.att = xmalloc(4 * N * QD);
        a.kp = xmalloc(4 * N * KD); a.k = xmalloc(4 * N * KD); a.v = xmalloc(4 * N * KD);
        a.lse = xmalloc(4 * (size_t)N * Hq); a.qr = xmalloc(4 * (size_t)N * Hq); a.kr = xmalloc(4 * (size_t)N * Hkv);
        a.dq = xmalloc(4 * N * QD); a.datt = xmalloc(4 * N * QD); a.dqp = xmalloc(4 * N * QD);
        a.dk = xmalloc(4 * N * KD); a.dv = xmalloc(4 * N * KD); a.dkp = xmalloc(4 * N * KD);
        a.pos = xmalloc(4 * (size_t)N);
        for (int t = 0; t < T; t++) a.pos[t] = t;
        double tk_f = 0, ta_f = 0, tk_b = 0, ta_b = 0;
        for (int rep = 0; rep < reps; rep++) {
            double t0 = hx_now();
            nn_kda_forward(be, y, &ka, x, &p, &kc, NULL);
            double t1 = hx_now();
            nn_kda_backward(be, dx, &g, dy, &ka, x, &p, &kc, scr);
            double t2 = hx_now();
            attn_fwd(be, &a, y, x, 1, T);
            double t3 = hx_now();
            attn_bwd(be, &a, dx, dy, x, 1, T);
            double t4 = hx_now();
            tk_f += t1 - t0; tk_b += t2 - t0; ta_f += t3 - t2; ta_b += t4 - t2;
        }
        printf("%7d %16.0f %16.0f %16.0f %16.0f\n", T, reps * T / tk_f, reps * T / ta_f, reps * T / tk_b,
               reps * T / ta_b);
        fflush(stdout);
        free(x); free(dy); free(y); free(dx); free(acts); free(scr);
        free(a.qp); free(a.q); free(a.att); free(a.kp); free(a.k); free(a.v); free(a.lse); free(a.qr); free(a.kr);
        free(a.dq); free(a.datt); free(a.dqp); free(a.dk); free(a.dv); free(a.dkp); free(a.pos);
    }
    free(kp); free(kg);
    free(a.wq); free(a.wk); free(a.wv); free(a.wo); free(a.qn); free(a.kn); free(a.inv_freq);
    free(a.gwq); free(a.gwk); free(a.gwv); free(a.gwo); free(a.gqn); free(a.gkn);
    k_backend_free(be);
    return 0;
}
