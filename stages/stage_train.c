/* stage_train.c - what every training stage kind shares: the training loop's configuration from the stage's context. */
#include <stdlib.h>
#include <string.h>

#include "stages/stage_train.h"

void stage_train_fit_cfg(hx_stage_ctx *c, nn_fit_cfg *fc, int steps, const char *log_path)
{
    memset(fc, 0, sizeof *fc);
    fc->label = c->stage_name;
    fc->ckpt_dir = c->ckpt_dir;
    fc->log_path = log_path;
    fc->steps = steps;
    fc->log_every = (int)hx_with_int(c, "log_every");
    fc->ckpt_every = (int)hx_with_int(c, "ckpt_every");
    fc->tokens_per_step = hx_with_int(c, "accum") * hx_with_int(c, "batch") * hx_with_int(c, "seq_len");
    fc->interrupted = c->interrupted;
    const char *stop = getenv("HX_TEST_INTERRUPT_STEP");
    fc->stop_after = stop ? atoi(stop) : 0;
}
