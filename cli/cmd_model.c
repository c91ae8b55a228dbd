/* cmd_model.c - opening the checkpoint, tokenizer and engine of a command that runs a model (generate, score). */
#include <stdlib.h>

#include "base/base.h"
#include "cli/cmd_model.h"
#include "interp/runsrc.h"

void cmd_model_open(cmd_model *cm, const hx_cli *c)
{
    const char *tokspec = hx_cli_str(c, "tokenizer");
    cm->dir = hx_runsrc_model_dir(c->args[0], c->store_dir, c->name);
    if (nn_tokenizer_open(&cm->tok, tokspec ? tokspec : cm->dir))
        die(HX_EXIT_USAGE, "%s\nhint: pass --tokenizer FILE|DIR|qwen3", hx_last_error());
    cm->engine = nn_engine_new(c->device, c->threads);
    if (!cm->engine) die(HX_EXIT_USAGE, "%s", hx_last_error());
    cm->model = nn_engine_model(cm->engine, cm->dir, cm->dir);
    if (!cm->model) die(HX_EXIT_STAGE, "%s", hx_last_error());
}

void cmd_model_close(cmd_model *cm)
{
    nn_tokenizer_free(cm->tok);
    nn_engine_free(cm->engine);
    free(cm->dir);
}
