/* cmd_score.c - `hx score MODEL`: log-likelihood of continuations given contexts with a checkpoint (a directory or a
 * store reference, runsrc.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/cmd_model.h"
#include "nn/textgen.h"

/* The pairs of FILE.jsonl ({"context", "continuation"} a line) appended to CTX and CONT. */
static void read_pairs(const char *path, char ***ctx, int *nc, char ***cont, int *nx)
{
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
        *ctx = xrealloc(*ctx, (size_t)(*nc + 1) * sizeof **ctx);
        *cont = xrealloc(*cont, (size_t)(*nx + 1) * sizeof **cont);
        (*ctx)[(*nc)++] = xstrdup(c);
        (*cont)[(*nx)++] = xstrdup(x);
        json_decref(j);
    }
    free(buf);
}

int cmd_score(hx_cli *c)
{
    char **ctx = NULL, **cont = NULL;
    int nc = 0, nx = 0, batch = hx_cli_int(c, "batch", 8), chat = hx_cli_given(c, "chat");
    /* -c, -x and --file in the order given */
    for (int i = 0; i < c->n_occ; i++) {
        const char *name = c->occ[i].opt->name, *v = c->occ[i].val;
        if (!strcmp(name, "context")) {
            ctx = xrealloc(ctx, (size_t)(nc + 1) * sizeof *ctx);
            ctx[nc++] = xstrdup(v);
        } else if (!strcmp(name, "continuation")) {
            cont = xrealloc(cont, (size_t)(nx + 1) * sizeof *cont);
            cont[nx++] = xstrdup(v);
        } else if (!strcmp(name, "file")) {
            read_pairs(v, &ctx, &nc, &cont, &nx);
        }
    }
    if (!nc || nc != nx)
        die(HX_EXIT_USAGE, "hx score: need as many contexts as continuations (got %d and %d); see 'hx score --help'", nc,
            nx);
    cmd_model cm;
    cmd_model_open(&cm, c);
    double *lp = xmalloc((size_t)nc * sizeof *lp);
    int *greedy = xmalloc((size_t)nc * sizeof *greedy), *ntok = xmalloc((size_t)nc * sizeof *ntok);
    if (nn_textscore(cm.model, cm.tok, (const char *const *)ctx, (const char *const *)cont, nc, batch, chat, lp, greedy,
                     ntok))
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
    cmd_model_close(&cm);
    return 0;
}
