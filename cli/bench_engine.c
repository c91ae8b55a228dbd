/* bench_engine.c - `hx bench train|infer|eval`: tokens/s of training steps, prefill and KV-cache decode, and
 * generation items/s (continuous batching vs one batch at a time) for a shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/sort.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "nn/generate.h"
#include "nn/model.h"
#include "nn/train.h"

typedef struct bench_opts {
    nn_config cfg;
    int recompute, frozen;
    int B, T, steps, n_new, threads, items, n_stop;
    const char *device;
    const char *grid;   /* infer: "BxT,BxT" points, NULL: the one point --batch x --seq */
} bench_opts;

/* The options of hx bench train|infer|eval (one row list in commands.c serves the three). */
static void parse(const hx_cli *c, bench_opts *o)
{
    const char *cfg = hx_cli_str(c, "config");
    if (cfg) {
        if (nn_config_load(&o->cfg, cfg)) die(HX_EXIT_USAGE, "%s", hx_last_error());
    } else if (!strcmp(hx_cli_str(c, "shape"), "small")) {
        nn_config_qwen3(&o->cfg, 8192, 384, 8, 6, 2, 64, 1152);
    } else {
        nn_config_qwen3(&o->cfg, 4096, 128, 4, 4, 2, 32, 384);
    }
    o->B = hx_cli_int(c, "batch", 0);
    o->T = hx_cli_int(c, "seq", 0);
    o->steps = hx_cli_int(c, "steps", 0);
    o->n_new = hx_cli_int(c, "new", 0);
    o->device = c->device;
    o->recompute = hx_cli_given(c, "recompute");
    o->frozen = hx_cli_given(c, "frozen");
    o->items = hx_cli_int(c, "items", 0);
    o->n_stop = hx_cli_int(c, "stop", 0);
    o->grid = hx_cli_str(c, "grid");
    const char *e = getenv("OMP_NUM_THREADS");
    o->threads = c->threads ? c->threads : e ? atoi(e) : 0;
    if (o->n_stop >= o->cfg.vocab)
        die(HX_EXIT_USAGE, "hx %s: --stop %d: at most the vocabulary size less one (%d)", c->name, o->n_stop,
            o->cfg.vocab - 1);
}

static nn_model *make(bench_opts *o, k_backend **be)
{
    *be = k_backend_new(o->device, o->threads);
    if (!*be) die(HX_EXIT_USAGE, "%s", hx_last_error());
    nn_model *m;
    if (nn_model_new(&m, &o->cfg, *be)) die(HX_EXIT_USAGE, "%s", hx_last_error());
    nn_model_init_random(m, 1);
    if (o->frozen) nn_model_freeze(m);
    printf("model: %zu parameters (d %d, %d layers, %d/%d heads x %d, MLP %d, vocab %d), device %s, %d threads%s\n",
           nn_config_n_params(&o->cfg), o->cfg.d, o->cfg.n_layers, o->cfg.n_heads, o->cfg.n_kv_heads,
           o->cfg.head_dim, o->cfg.ffn, o->cfg.vocab, (*be)->name, (*be)->threads, o->frozen ? ", frozen weights" : "");
    return m;
}

int cmd_bench_train(hx_cli *c)
{
    bench_opts o;
    parse(c, &o);
    if (o.frozen) die(HX_EXIT_USAGE, "hx bench train: --frozen is for inference (infer, eval)");
    k_backend *be;
    nn_model *m = make(&o, &be);
    int N = o.B * o.T;
    nn_model_set_trainable(m, NN_ALL_GROUPS);
    nn_model_set_recompute(m, o.recompute);
    if (nn_model_prepare(m, o.B, o.T, NN_ACT_TRAIN)) die(HX_EXIT_STAGE, "%s", hx_last_error());
    int32_t *ids = xmalloc((size_t)N * 4), *tg = xmalloc((size_t)N * 4);
    hx_rng r;
    hx_rng_seed(&r, 1);
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)hx_rng_below(&r, (uint64_t)o.cfg.vocab);
        tg[i] = (int32_t)hx_rng_below(&r, (uint64_t)o.cfg.vocab);
    }
    nn_batch bt = {.B = o.B, .T = o.T, .ids = ids};
    double tf = 0, tb = 0, to = 0;
    size_t peak = 0; /* the most backend memory a step held */
    for (int s = 0; s <= o.steps; s++) { /* step 0 warms up */
        k_mem_reset_peak(be);
        double t0 = hx_now();
        nn_model_zero_grad(m);
        nn_model_forward(m, &bt, NULL, NULL, NULL);
        nn_model_xent(m, tg, 1, 1, NULL, NULL);
        be->op->sync(be);
        double t1 = hx_now();
        nn_model_backward(m);
        be->op->sync(be);
        double t2 = hx_now();
        k_adamw_hp hp = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .step = s + 1};
        nn_adamw_step(m, &hp); /* what nn_train_update does after the gradient norm */
        be->op->sync(be);
        double t3 = hx_now();
        if (be->mem_peak > peak) peak = be->mem_peak;
        if (s) {
            tf += t1 - t0;
            tb += t2 - t1;
            to += t3 - t2;
        }
    }
    double tot = tf + tb + to;
    printf("train %d x %d: %.1f ms/step (forward+loss %.1f, backward %.1f, adamw %.1f), %.0f tokens/s, "
           "peak memory %.2f GiB\n", o.B, o.T, 1e3 * tot / o.steps, 1e3 * tf / o.steps, 1e3 * tb / o.steps,
           1e3 * to / o.steps, N * o.steps / tot, peak / 1073741824.0);
    free(ids);
    free(tg);
    nn_model_free(m);
    k_backend_free(be);
    return 0;
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, hx_cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* One point: B prompts of T random tokens, one prefill then n_new - 1 decode steps per run. */
static void infer_point(nn_model *m, const bench_opts *o, int B, int T)
{
    int32_t **pr = xmalloc((size_t)B * sizeof *pr), **out = xmalloc((size_t)B * sizeof *out);
    int *lens = xmalloc((size_t)B * sizeof *lens), *nout = xmalloc((size_t)B * sizeof *nout);
    hx_rng r;
    hx_rng_seed(&r, 2);
    for (int b = 0; b < B; b++) {
        pr[b] = xmalloc((size_t)T * 4);
        lens[b] = T;
        for (int t = 0; t < T; t++) pr[b][t] = (int32_t)hx_rng_below(&r, (uint64_t)o->cfg.vocab);
    }
    /* each run: one prefill of the B prompts, then n_new - 1 decode steps; nn_generate splits its wall time at
     * the first logits on the host. One untimed run first: allocations, GEMM plans and kernel set-up are not part
     * of the steady state. Medians over the runs. */
    nn_gen_times tm;
    nn_gen_opts g = {.max_new = o->n_new > 0 ? o->n_new : 1, .times = &tm};
    int runs = o->steps > 0 ? o->steps : 1;
    double *tp = xmalloc((size_t)runs * sizeof *tp), *td = xmalloc((size_t)runs * sizeof *td);
    for (int s = -1; s < runs; s++) {
        if (nn_generate(m, (const int32_t *const *)pr, lens, B, &g, out, nout))
            die(HX_EXIT_STAGE, "hx bench infer: %s", hx_last_error());
        for (int b = 0; b < B; b++) free(out[b]);
        if (s < 0) continue;
        tp[s] = tm.prefill_s;
        td[s] = tm.decode_steps ? tm.decode_s / tm.decode_steps : 0;
    }
    for (int b = 0; b < B; b++) free(pr[b]);
    double p = median(tp, runs), d = median(td, runs);
    printf("prefill %d x %d: %.1f ms, %.0f tokens/s\n", B, T, 1e3 * p, B * T / p);
    if (g.max_new > 1)
        printf("decode %d x %d new tokens (KV cache): %.2f ms/step, %.0f tokens/s\n", B, g.max_new - 1, 1e3 * d,
               d > 0 ? B / d : 0);
    fflush(stdout);
    free(tp);
    free(td);
    free(pr); free(out); free(lens); free(nout);
}

int cmd_bench_infer(hx_cli *c)
{
    bench_opts o;
    parse(c, &o);
    /* the grid is checked whole before the model is made: a typo fails at once */
    int np = 0, pb[64], pt[64];
    for (const char *g = o.grid; g && *g && np < 64; np++) {
        char *e;
        long b = strtol(g, &e, 10), t = *e == 'x' ? strtol(e + 1, &e, 10) : 0;
        if (b < 1 || b > 1 << 20 || t < 2 || t > 1 << 24 || (*e && *e != ','))
            die(HX_EXIT_USAGE, "hx bench infer: --grid '%s': want BxT[,BxT...] (e.g. 1x4096,64x1024)", o.grid);
        pb[np] = (int)b;
        pt[np] = (int)t;
        g = *e ? e + 1 : e;
    }
    if (!o.grid) pb[0] = o.B, pt[0] = o.T, np = 1;
    k_backend *be;
    nn_model *m = make(&o, &be);
    for (int i = 0; i < np; i++) infer_point(m, &o, pb[i], pt[i]);
    nn_model_free(m);
    k_backend_free(be);
    return 0;
}

/* One pass of the generator over every item; wall seconds. stream: nn_generate_stream through B slots, else
 * nn_generate of B prompts at a time (the generator before continuous batching). */
static double eval_pass(nn_model *m, int stream, int B, int32_t **pr, int *lens, int n, const nn_gen_opts *g,
                        int32_t **out, int *nout, nn_gen_times *times)
{
    double t0 = hx_now();
    int r = 0;
    nn_gen_times tm, sum = {0};
    nn_gen_opts go = *g;
    go.times = &tm;
    if (stream) r = nn_generate_stream(m, (const int32_t *const *)pr, lens, n, B, &go, out, nout);
    for (int i0 = 0; !stream && !r && i0 < n; i0 += B) {
        r = nn_generate(m, (const int32_t *const *)pr + i0, lens + i0, n - i0 < B ? n - i0 : B, &go, out + i0,
                        nout + i0);
        sum.prefill_s += tm.prefill_s;
        sum.decode_s += tm.decode_s;
        sum.decode_steps += tm.decode_steps;
    }
    if (stream) sum = tm;
    if (times) *times = sum;
    if (r) die(HX_EXIT_STAGE, "hx bench eval: %s", hx_last_error());
    m->be->op->sync(m->be);
    return hx_now() - t0;
}

int cmd_bench_eval(hx_cli *c)
{
    bench_opts o;
    parse(c, &o);
    k_backend *be;
    nn_model *m = make(&o, &be);
    int n = o.items;
    int32_t **pr = xmalloc((size_t)n * sizeof *pr), **out[2], *stop = xmalloc((size_t)(o.n_stop + 1) * 4);
    int *lens = xmalloc((size_t)n * sizeof *lens), *nout[2];
    hx_rng r;
    hx_rng_seed(&r, 3);
    for (int i = 0; i < n; i++) {
        lens[i] = o.T / 2 + (int)hx_rng_below(&r, (uint64_t)(o.T - o.T / 2 + 1));
        pr[i] = xmalloc((size_t)lens[i] * 4);
        for (int t = 0; t < lens[i]; t++) pr[i][t] = (int32_t)hx_rng_below(&r, (uint64_t)o.cfg.vocab);
    }
    for (int k = 0; k < o.n_stop; k++) stop[k] = k;
    nn_gen_opts g = {.max_new = o.n_new, .stop_ids = stop, .n_stop_ids = o.n_stop};
    /* each generator: one untimed pass (allocations, GEMM plans), then the median of --steps passes; the two
     * generators' passes alternate, so that a machine whose load changes weighs on both alike */
    double *t[2];
    nn_gen_times tm[2];
    static const char *name[2] = {"one batch at a time (nn_generate)", "continuous batching (nn_generate_stream)"};
    for (int s = 0; s < 2; s++) {
        out[s] = xmalloc((size_t)n * sizeof *out[s]);
        nout[s] = xmalloc((size_t)n * sizeof *nout[s]);
        t[s] = xmalloc((size_t)o.steps * sizeof *t[s]);
    }
    for (int k = -1; k < o.steps; k++)
        for (int s = 0; s < 2; s++) {
            double dt = eval_pass(m, s, o.B, pr, lens, n, &g, out[s], nout[s], &tm[s]);
            if (k >= 0) t[s][k] = dt;
            if (k + 1 < o.steps)
                for (int i = 0; i < n; i++) free(out[s][i]);
        }
    long tokens = 0, differ = 0;
    for (int i = 0; i < n; i++) {
        tokens += nout[1][i];
        differ += nout[0][i] != nout[1][i] || memcmp(out[0][i], out[1][i], (size_t)nout[1][i] * 4) != 0;
    }
    for (int s = 0; s < 2; s++) {
        double dt = median(t[s], o.steps);
        printf("eval %d items of %d..%d tokens, %d new at most, batch %d: %s %.3f s, %.1f items/s "
               "(last pass: prefill %.3f s, %d decode steps %.3f s)\n", n, o.T / 2, o.T, o.n_new, o.B, name[s], dt,
               n / dt, tm[s].prefill_s, tm[s].decode_steps, tm[s].decode_s);
    }
    printf("generated %ld tokens (%.1f per item); items whose tokens differ between the generators: %ld\n", tokens,
           (double)tokens / n, differ);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < n; i++) free(out[s][i]);
        free(out[s]);
        free(nout[s]);
        free(t[s]);
    }
    for (int i = 0; i < n; i++) free(pr[i]);
    free(pr);
    free(lens);
    free(stop);
    nn_model_free(m);
    k_backend_free(be);
    if (differ) die(HX_EXIT_STAGE, "hx bench eval: the generators disagree on %ld items", differ);
    return 0;
}
