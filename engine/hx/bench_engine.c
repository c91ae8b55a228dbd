/* bench_engine.c - `hx bench train|infer`: tokens/s of training steps, prefill and KV-cache decode for a shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/sort.h"
#include "engine/hx/cli.h"
#include "engine/hx/bench_engine.h"
#include "engine/nn/generate.h"
#include "engine/nn/model.h"
#include "engine/nn/train.h"

static const char usage[] =
    "usage: hx bench train|infer [--config config.json | --shape tiny|small] [--batch B] [--seq T] [--steps N] [--recompute]\n"
    "                            [--new N] [--device cpu|cuda] [--threads N]\n"
    "  tiny: d 128, 4 layers, 4/2 heads x 32, MLP 384, vocab 4096 (~1M params)\n"
    "  small: d 384, 8 layers, 6/2 heads x 64, MLP 1152, vocab 8192 (~20M params)";

typedef struct bench_opts {
    nn_config cfg;
    int recompute;
    int B, T, steps, n_new, threads;
    const char *device;
} bench_opts;

static int parse(int argc, char **argv, bench_opts *o)
{
    nn_config_qwen3(&o->cfg, 4096, 128, 4, 4, 2, 32, 384);
    o->B = 8;
    o->T = 128;
    o->steps = 5;
    o->n_new = 32;
    o->threads = 0;
    o->device = "cpu";
    o->recompute = 0;
    const char *e = getenv("OMP_NUM_THREADS");
    if (e) o->threads = atoi(e);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--config") && more) {
            if (nn_config_load(&o->cfg, argv[++i])) die(HX_EXIT_USAGE, "%s", hx_last_error());
        } else if (!strcmp(a, "--shape") && more) {
            const char *s = argv[++i];
            if (!strcmp(s, "tiny")) nn_config_qwen3(&o->cfg, 4096, 128, 4, 4, 2, 32, 384);
            else if (!strcmp(s, "small")) nn_config_qwen3(&o->cfg, 8192, 384, 8, 6, 2, 64, 1152);
            else die(HX_EXIT_USAGE, "unknown shape %s (tiny, small)", s);
        } else if (!strcmp(a, "--batch") && more) o->B = atoi(argv[++i]);
        else if (!strcmp(a, "--seq") && more) o->T = atoi(argv[++i]);
        else if (!strcmp(a, "--steps") && more) o->steps = atoi(argv[++i]);
        else if (!strcmp(a, "--new") && more) o->n_new = atoi(argv[++i]);
        else if (!strcmp(a, "--device") && more) o->device = argv[++i];
        else if (!strcmp(a, "--threads") && more) o->threads = hx_cli_threads("bench", argv[++i]);
        else if (!strcmp(a, "--recompute")) o->recompute = 1;
        else die(HX_EXIT_USAGE, "unknown argument %s\n%s", a, usage);
    }
    if (o->B < 1 || o->T < 2 || o->steps < 1 || o->n_new < 1) die(HX_EXIT_USAGE, "%s", usage);
    return 0;
}

static nn_model *make(bench_opts *o, k_backend **be)
{
    *be = k_backend_new(o->device, o->threads);
    if (!*be) die(HX_EXIT_USAGE, "%s", hx_last_error());
    nn_model *m;
    if (nn_model_new(&m, &o->cfg, *be)) die(HX_EXIT_USAGE, "%s", hx_last_error());
    nn_model_init_random(m, 1);
    printf("model: %zu parameters (d %d, %d layers, %d/%d heads x %d, MLP %d, vocab %d), device %s, %d threads\n",
           nn_config_n_params(&o->cfg), o->cfg.d, o->cfg.n_layers, o->cfg.n_heads, o->cfg.n_kv_heads,
           o->cfg.head_dim, o->cfg.ffn, o->cfg.vocab, (*be)->name, (*be)->threads);
    return m;
}

int hx_bench_train(int argc, char **argv)
{
    bench_opts o;
    parse(argc, argv, &o);
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

int hx_bench_infer(int argc, char **argv)
{
    bench_opts o;
    parse(argc, argv, &o);
    k_backend *be;
    nn_model *m = make(&o, &be);
    int32_t **pr = xmalloc((size_t)o.B * sizeof *pr), **out = xmalloc((size_t)o.B * sizeof *out);
    int *lens = xmalloc((size_t)o.B * sizeof *lens), *nout = xmalloc((size_t)o.B * sizeof *nout);
    hx_rng r;
    hx_rng_seed(&r, 2);
    for (int b = 0; b < o.B; b++) {
        pr[b] = xmalloc((size_t)o.T * 4);
        lens[b] = o.T;
        for (int t = 0; t < o.T; t++) pr[b][t] = (int32_t)hx_rng_below(&r, (uint64_t)o.cfg.vocab);
    }
    /* each run: one prefill of the B prompts, then n_new - 1 decode steps; nn_generate splits its wall time at
     * the first logits on the host. One untimed run first: allocations, GEMM plans and kernel set-up are not part
     * of the steady state. Medians over the runs. */
    nn_gen_times tm;
    nn_gen_opts g = {.max_new = o.n_new > 0 ? o.n_new : 1, .times = &tm};
    int runs = o.steps > 0 ? o.steps : 1;
    double *tp = xmalloc((size_t)runs * sizeof *tp), *td = xmalloc((size_t)runs * sizeof *td);
    for (int s = -1; s < runs; s++) {
        if (nn_generate(m, (const int32_t *const *)pr, lens, o.B, &g, out, nout))
            die(HX_EXIT_STAGE, "hx bench infer: %s", hx_last_error());
        for (int b = 0; b < o.B; b++) free(out[b]);
        if (s < 0) continue;
        tp[s] = tm.prefill_s;
        td[s] = tm.decode_steps ? tm.decode_s / tm.decode_steps : 0;
    }
    for (int b = 0; b < o.B; b++) free(pr[b]);
    double p = median(tp, runs), d = median(td, runs);
    printf("prefill %d x %d: %.1f ms, %.0f tokens/s\n", o.B, o.T, 1e3 * p, o.B * o.T / p);
    if (g.max_new > 1)
        printf("decode %d x %d new tokens (KV cache): %.2f ms/step, %.0f tokens/s\n", o.B, g.max_new - 1, 1e3 * d,
               d > 0 ? o.B / d : 0);
    free(tp);
    free(td);
    free(pr); free(out); free(lens); free(nout);
    nn_model_free(m);
    k_backend_free(be);
    return 0;
}
