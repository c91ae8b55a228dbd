/* cmd_generate.c - `hx generate MODEL`: greedy completions of prompts with a checkpoint (KV cache, stop strings); MODEL
 * is a directory or a store reference (runsrc.c). */
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
    "usage: hx generate MODEL [-p PROMPT]... [--file FILE] [--max-new N] [--stop STR]... [--chat] [--no-eos]\n"
    "                   [--batch N] [--tokenizer SPEC] [--device cpu|cuda] [--threads N] [--json] [--store DIR]\n"
    "  MODEL: a checkpoint directory, RUN:STAGE[axis=value,...] (e.g. latest:finetune[masking=completion_only])\n"
    "  or a store key prefix. FILE has one prompt per line; the tokenizer defaults to the model's tokenizer.json.\n"
    "  --chat wraps each prompt as a user turn and prints prompt and reply apart";

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

int cmd_generate(int argc, char **argv)
{
    const char *ref = NULL, *tokspec = NULL, *device = "cpu", *store = getenv("HX_STORE");
    char **prompts = NULL;
    const char **stops = NULL;
    int np = 0, ns = 0, batch = 8, threads = 0, json = 0;
    nn_textgen_opts o = {.max_new = 32, .stop_at_eos = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && more) {
            prompts = xrealloc(prompts, (size_t)(np + 1) * sizeof *prompts);
            prompts[np++] = xstrdup(argv[++i]);
        } else if (!strcmp(a, "--file") && more) {
            if (read_lines(argv[++i], &prompts, &np)) die(HX_EXIT_USAGE, "%s", hx_last_error());
        } else if (!strcmp(a, "--max-new") && more) o.max_new = atoi(argv[++i]);
        else if (!strcmp(a, "--stop") && more) {
            stops = xrealloc(stops, (size_t)(ns + 1) * sizeof *stops);
            stops[ns++] = argv[++i];
        } else if (!strcmp(a, "--chat")) o.chat = 1;
        else if (!strcmp(a, "--no-eos")) o.stop_at_eos = 0;
        else if (!strcmp(a, "--batch") && more) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--tokenizer") && more) tokspec = argv[++i];
        else if (!strcmp(a, "--device") && more) device = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads = hx_cli_threads("generate", argv[++i]);
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--store") && more) store = argv[++i];
        else if (a[0] == '-') die(HX_EXIT_USAGE, "unknown option %s\n%s", a, usage);
        else if (!ref) ref = a;
        else die(HX_EXIT_USAGE, "one model\n%s", usage);
    }
    if (!ref || !np) die(HX_EXIT_USAGE, "%s", usage);
    if (o.max_new < 0 || batch < 1) die(HX_EXIT_USAGE, "--max-new must be >= 0 and --batch >= 1");
    char *dir = hx_runsrc_model_dir(ref, store && *store ? store : ".hx", "generate");
    o.stop = stops;
    o.n_stop = ns;
    nn_tokenizer *tok;
    if (nn_tokenizer_open(&tok, tokspec ? tokspec : dir))
        die(HX_EXIT_USAGE, "%s\nhint: pass --tokenizer FILE|DIR|qwen3", hx_last_error());
    nn_engine *e = nn_engine_new(device, threads);
    if (!e) die(HX_EXIT_USAGE, "%s", hx_last_error());
    nn_model *m = nn_engine_model(e, dir, dir);
    if (!m) die(HX_EXIT_STAGE, "%s", hx_last_error());
    char **out = xcalloc((size_t)np, sizeof *out);
    double t0 = hx_now();
    if (nn_textgen(m, tok, (const char *const *)prompts, np, batch, &o, out)) die(HX_EXIT_STAGE, "%s", hx_last_error());
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
    free(dir);
    nn_tokenizer_free(tok);
    nn_engine_free(e);
    return 0;
}
