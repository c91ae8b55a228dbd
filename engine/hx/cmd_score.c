/* cmd_score.c - `hx score MODEL`: log-likelihood of continuations given contexts with a checkpoint (a directory or a
 * store reference, runsrc.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"
#include "engine/hx/runsrc.h"
#include "engine/nn/engine.h"
#include "engine/nn/textgen.h"

static const char usage[] =
    "usage: hx score MODEL (-c CONTEXT -x CONTINUATION)... [--file FILE.jsonl] [--chat] [--batch N]\n"
    "                [--tokenizer SPEC] [--device cpu|cuda] [--threads N] [--store DIR]\n"
    "  MODEL: a checkpoint directory, RUN:STAGE[axis=value,...] (e.g. latest:finetune[masking=completion_only])\n"
    "  or a store key prefix.\n"
    "  FILE.jsonl: {\"context\": ..., \"continuation\": ...} per line. Prints one JSON line per item:\n"
    "  logp (sum), n_tokens, greedy (every continuation token is the argmax). Pairs are encoded as lm-eval's\n"
    "  _encode_pair: the context's trailing whitespace moves to the continuation (docs/eval.md).";

int cmd_score(int argc, char **argv)
{
    const char *ref = NULL, *tokspec = NULL, *device = "cpu", *store = getenv("HX_STORE");
    char **ctx = NULL, **cont = NULL;
    int nc = 0, nx = 0, batch = 8, threads = 0, chat = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(a, "-c") || !strcmp(a, "--context")) && more) {
            ctx = xrealloc(ctx, (size_t)(nc + 1) * sizeof *ctx);
            ctx[nc++] = xstrdup(argv[++i]);
        } else if ((!strcmp(a, "-x") || !strcmp(a, "--continuation")) && more) {
            cont = xrealloc(cont, (size_t)(nx + 1) * sizeof *cont);
            cont[nx++] = xstrdup(argv[++i]);
        } else if (!strcmp(a, "--file") && more) {
            const char *path = argv[++i];
            char *buf;
            size_t len;
            if (hx_read_file(path, &buf, &len)) die(HX_EXIT_USAGE, "%s", hx_last_error());
            int line = 0;
            char *save, *tok;
            for (tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
                line++;
                json_error_t jerr;
                json_t *j = json_loads(tok, 0, &jerr);
                const char *c = json_string_value(json_object_get(j, "context"));
                const char *x = json_string_value(json_object_get(j, "continuation"));
                if (!c || !x) die(HX_EXIT_USAGE, "%s:%d: need {\"context\": str, \"continuation\": str}", path, line);
                ctx = xrealloc(ctx, (size_t)(nc + 1) * sizeof *ctx);
                cont = xrealloc(cont, (size_t)(nx + 1) * sizeof *cont);
                ctx[nc++] = xstrdup(c);
                cont[nx++] = xstrdup(x);
                json_decref(j);
            }
            free(buf);
        } else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--batch") && more) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--tokenizer") && more) tokspec = argv[++i];
        else if (!strcmp(a, "--device") && more) device = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads = hx_cli_threads("score", argv[++i]);
        else if (!strcmp(a, "--store") && more) store = argv[++i];
        else if (a[0] == '-') die(HX_EXIT_USAGE, "unknown option %s\n%s", a, usage);
        else if (!ref) ref = a;
        else die(HX_EXIT_USAGE, "one model\n%s", usage);
    }
    if (!ref || !nc || nc != nx) die(HX_EXIT_USAGE, "need as many contexts as continuations (got %d and %d)\n%s", nc, nx, usage);
    char *dir = hx_runsrc_model_dir(ref, store && *store ? store : ".hx", "score");
    nn_tokenizer *tok;
    if (nn_tokenizer_open(&tok, tokspec ? tokspec : dir))
        die(HX_EXIT_USAGE, "%s\nhint: pass --tokenizer FILE|DIR|qwen3", hx_last_error());
    nn_engine *e = nn_engine_new(device, threads);
    if (!e) die(HX_EXIT_USAGE, "%s", hx_last_error());
    nn_model *m = nn_engine_model(e, dir, dir);
    if (!m) die(HX_EXIT_STAGE, "%s", hx_last_error());
    double *lp = xmalloc((size_t)nc * sizeof *lp);
    int *greedy = xmalloc((size_t)nc * sizeof *greedy), *ntok = xmalloc((size_t)nc * sizeof *ntok);
    if (nn_textscore(m, tok, (const char *const *)ctx, (const char *const *)cont, nc, batch, chat, lp, greedy, ntok))
        die(HX_EXIT_STAGE, "%s", hx_last_error());
    for (int i = 0; i < nc; i++) {
        json_t *j = json_pack("{s:s, s:s, s:o, s:i, s:b}", "context", ctx[i], "continuation", cont[i], "logp", hx_json_num(lp[i]),
                              "n_tokens", ntok[i], "greedy", greedy[i]);
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(8));
        printf("%s\n", s);
        free(s);
        json_decref(j);
        free(ctx[i]);
        free(cont[i]);
    }
    free(ctx); free(cont); free(lp); free(greedy); free(ntok);
    nn_tokenizer_free(tok);
    nn_engine_free(e);
    free(dir);
    return 0;
}
