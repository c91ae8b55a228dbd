/* cmd_model.h - what the commands that run a checkpoint (generate, score) share: opening MODEL with its tokenizer. */
#ifndef HX_CMD_MODEL_H
#define HX_CMD_MODEL_H

#include "cli/cli.h"
#include "nn/engine.h"
#include "nn/tokenizer.h"

/* A checkpoint opened for a command: its directory, tokenizer, and the engine that holds the model. */
typedef struct cmd_model {
    char *dir;        /* the checkpoint directory (hx_runsrc_model_dir) */
    nn_tokenizer *tok;
    nn_engine *engine;
    nn_model *model;  /* the engine's */
} cmd_model;

/*
 * Opens the command's MODEL argument (c->args[0]: a directory or a store reference in --store), its tokenizer
 * (--tokenizer, else the checkpoint's own tokenizer.json) and the model on --device with --threads. Dies as
 * hx_runsrc_model_dir does on a bad reference (2, or 3 for the store), with 2 on a bad tokenizer (with a hint) or
 * device, and with 1 when the checkpoint does not load.
 */
void cmd_model_open(cmd_model *cm, const hx_cli *c);
void cmd_model_close(cmd_model *cm);

#endif
