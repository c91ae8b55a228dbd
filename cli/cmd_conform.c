/* cmd_conform.c - `hx conform DIR`: run the engine on a reference fixture and compare (fixtures/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "nn/conform.h"
#include "nn/conform_model.h"
#include "nn/conform_tokenizer.h"
#include "nn/kda_layer.h"

typedef struct conform_opts {
    const char *device;
    const char *tokenizer;   /* --tokenizer FILE or NULL */
    int threads;
} conform_opts;

static int conform_model(const char *dir, const conform_opts *o, nn_check *c)
{
    return nn_conform_model(dir, o->device, o->threads, c);
}

/* the KDA kinds on the chosen device's op table */
static int conform_kda(const char *dir, const conform_opts *o, nn_check *c, int layer)
{
    k_backend *be = k_backend_new(o->device, o->threads);
    if (!be) return -1;
    int r = layer ? nn_conform_kda_layer_on(dir, be, c) : nn_conform_kda_core_on(dir, be, c);
    k_backend_free(be);
    return r;
}

static int conform_kda_core(const char *dir, const conform_opts *o, nn_check *c) { return conform_kda(dir, o, c, 0); }
static int conform_kda_layer(const char *dir, const conform_opts *o, nn_check *c) { return conform_kda(dir, o, c, 1); }

static int conform_tokenizer(const char *dir, const conform_opts *o, nn_check *c)
{
    return nn_conform_tokenizer(dir, o->tokenizer, c); /* NULL: the pinned Qwen3 tokenizer */
}

/* One row per fixture kind (README.json "kind"). */
static const struct {
    const char *kind;
    int (*fn)(const char *dir, const conform_opts *o, nn_check *c);
} kinds[] = {
    {"hybrid", conform_model},
    {"kda_core", conform_kda_core},
    {"kda_layer", conform_kda_layer},
    {"qwen3", conform_model},
    {"tokenizer", conform_tokenizer},
    {NULL, NULL},
};

int cmd_conform(hx_cli *c)
{
    conform_opts o = {.device = c->device, .tokenizer = hx_cli_str(c, "tokenizer"), .threads = c->threads};
    const char *dir = c->args[0];
    if (!o.threads) {
        const char *e = getenv("OMP_NUM_THREADS");
        o.threads = e ? atoi(e) : 0;
    }
    char *rp = hx_path_join(dir, "README.json");
    json_t *readme = hx_read_json(rp, 0);
    if (!readme) die(HX_EXIT_USAGE, "%s\nhint: a fixture directory holds README.json with a \"kind\"", hx_last_error());
    const char *kind = json_string_value(json_object_get(readme, "kind"));
    if (!kind) die(HX_EXIT_USAGE, "%s: no \"kind\" string", rp);
    int k = 0;
    while (kinds[k].kind && strcmp(kinds[k].kind, kind)) k++;
    if (!kinds[k].kind) {
        fprintf(stderr, "hx conform: %s: unknown fixture kind \"%s\"; known:", rp, kind);
        for (int j = 0; kinds[j].kind; j++) fprintf(stderr, " %s", kinds[j].kind);
        fprintf(stderr, "\n");
        return HX_EXIT_USAGE;
    }
    printf("conform %s (kind %s, device %s)\n", dir, kind, o.device);
    nn_check chk;
    nn_check_init(&chk, stdout);
    double t0 = hx_now();
    int r = kinds[k].fn(dir, &o, &chk);
    if (r) nn_check_fail(&chk, "fixture", hx_last_error());
    printf("%d ok, %d failed (%.2fs)\n", chk.n_ok, chk.n_fail, hx_now() - t0);
    json_decref(readme);
    free(rp);
    return chk.n_fail || r ? HX_EXIT_STAGE : 0;
}
