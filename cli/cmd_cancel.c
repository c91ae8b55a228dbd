/* cmd_cancel.c - `hx cancel RUN`: scancel the Slurm jobs of a run and record it as cancelled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/slurm.h"

#define CANCEL_WAIT 60 /* seconds to wait for cancelled jobs to stop (they checkpoint on SIGTERM) */

int cmd_cancel(hx_cli *c)
{
    hx_store s;
    hx_cli_open_store(c, &s);
    json_t *run = hx_store_read_run(&s, c->args[0]);
    if (!run) die(HX_EXIT_USAGE, "hx cancel: %s", hx_last_error());
    const char *id = json_string_value(json_object_get(run, "run_id"));
    if (!json_object_get(run, "slurm"))
        die(HX_EXIT_USAGE, "hx cancel: run %s was not submitted to Slurm (a local run stops with Ctrl-C)", id);
    int n = hx_slurm_cancel(&s, run);
    if (n < 0) die(HX_EXIT_STORE, "hx cancel %s: %s", id, hx_last_error());
    /* Follow the cancelled jobs until they have stopped, so the record says how each ended. */
    int left = 1;
    for (int t = 0; n > 0 && t < CANCEL_WAIT * 2 && left; t++) {
        if (hx_slurm_refresh(&s, run) < 0) log_warn("%s", hx_last_error());
        left = 0;
        json_t *stages = json_object_get(run, "stages");
        for (size_t i = 0; i < json_array_size(stages); i++) {
            const char *st = json_string_value(json_object_get(json_array_get(stages, i), "state"));
            left += st && (!strcmp(st, "pending") || !strcmp(st, "running"));
        }
        if (left) usleep(500000);
    }
    if (hx_store_update_run(&s, id, run) < 0) die(HX_EXIT_STORE, "hx cancel %s: %s", id, hx_last_error());
    if (c->json) printf("{\"run_id\":\"%s\",\"cancelled\":%d}\n", id, n);
    else printf("run %s: %d slurm job%s cancelled; status %s\n", id, n, n == 1 ? "" : "s",
                json_string_value(json_object_get(run, "status")));
    json_decref(run);
    hx_store_release(&s);
    return 0;
}
