/* cmd_generate.c - `hx generate MODEL`: greedy completions of prompts with a checkpoint (KV cache, stop strings); MODEL
 * is a directory or a store reference (runsrc.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/cmd_model.h"
#include "nn/textgen.h"

/* Lines of a file (no trailing newline), xmalloc'd. */
static int read_lines(const char *path, char ***lines, int *n)
{
    char *buf;
    size_t len;
    if (hx_read_file(path, &buf, &len)) return -1;
    char *save, *tok;
    for (tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
        *lines = xrealloc(*lines, (size_t)(*n + 1) * sizeof **lines);
        (*lines)[(*n)++] = xstrdup(tok);
    }
    free(buf);
    return 0;
}

int cmd_generate(hx_cli *c)
{
    char **prompts = NULL;
    int np = 0, ns = 0, batch = hx_cli_int(c, "batch", 8), json = c->json;
    const char **stops = hx_cli_list(c, "stop", &ns);
    nn_textgen_opts o = {.max_new = hx_cli_int(c, "max-new", 32), .stop_at_eos = !hx_cli_given(c, "no-eos"),
                         .chat = hx_cli_given(c, "chat")};
    /* -p and --file in the order given */
    for (int i = 0; i < c->n_occ; i++) {
        const char *name = c->occ[i].opt->name;
        if (!strcmp(name, "prompt")) {
            prompts = xrealloc(prompts, (size_t)(np + 1) * sizeof *prompts);
            prompts[np++] = xstrdup(c->occ[i].val);
        } else if (!strcmp(name, "file") && read_lines(c->occ[i].val, &prompts, &np)) {
            die(HX_EXIT_USAGE, "%s", hx_last_error());
        }
    }
    if (!np) die(HX_EXIT_USAGE, "hx generate: no prompt: give -p PROMPT or --file FILE; see 'hx generate --help'");
    cmd_model cm;
    cmd_model_open(&cm, c);
    o.stop = stops;
    o.n_stop = ns;
    char **out = xcalloc((size_t)np, sizeof *out);
    double t0 = hx_now();
    if (nn_textgen(cm.model, cm.tok, (const char *const *)prompts, np, batch, &o, out))
        die(HX_EXIT_STAGE, "%s", hx_last_error());
    double dt = hx_now() - t0;
    for (int i = 0; i < np; i++) {
        if (json) {
            json_t *j = json_pack("{s:s, s:s}", "prompt", prompts[i], "completion", out[i]);
            char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
            printf("%s\n", s);
            free(s);
            json_decref(j);
        } else if (o.chat)
            printf("%s== prompt %d ==\n%s\n== reply %d ==\n%s\n", i ? "\n" : "", i + 1, prompts[i], i + 1, out[i]);
        else
            printf("%s%s\n", prompts[i], out[i]);
        free(out[i]);
        free(prompts[i]);
    }
    log_info("generate: %d prompts in %.2fs", np, dt);
    free(out);
    free(prompts);
    free(stops);
    cmd_model_close(&cm);
    return 0;
}
