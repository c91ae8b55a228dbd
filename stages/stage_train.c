/* stage_train.c - what every training stage kind shares: the training loop's configuration from the stage's context
 * and the metrics of its fit. */
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

void stage_train_metrics(hx_stage_ctx *c, const nn_model *m, const nn_trainer *tr, const nn_fit_result *res)
{
    if (c->metrics) {
        json_object_set_new(c->metrics, "final_loss", hx_json_num(res->last_loss));
        json_object_set_new(c->metrics, "train_tokens", json_integer(tr->tokens));
        json_object_set_new(c->metrics, "tokens_per_s", hx_json_num(res->tokens_per_s));
        json_object_set_new(c->metrics, "peak_mem_bytes", json_integer((json_int_t)res->peak_mem));
        json_object_set_new(c->metrics, "params", json_integer((json_int_t)nn_config_n_params(&m->cfg)));
    }
    log_info("loss %.4f -> %.4f after %d steps (%.1fs, %.0f tok/s, peak %.2f GiB on %s)", res->first_loss,
             res->last_loss, tr->step, res->seconds, res->tokens_per_s, res->peak_mem / 1073741824.0, m->be->name);
}
