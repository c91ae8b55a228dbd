/* cmd_diff.c - `hx diff RUN_A RUN_B` (parameters, stage keys, every matched eval compared) and
 * `hx diff RUN:STAGE[axis=value] RUN:STAGE[..]` (any two evals: paired deltas, did, retention, flipped items). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/store.h"
#include "interp/runsrc.h"
#include "reports/report.h"

int cmd_diff(hx_cli *c)
{
    const char *ref[2] = {c->args[0], c->args[1]};
    int json = c->json, flips = hx_cli_int(c, "flips", 10);
    char *usage = hx_help_usage(c->cmd, c->name);
    const char *colon[2] = {strchr(ref[0], ':'), strchr(ref[1], ':')};
    if (!colon[0] != !colon[1])
        die(HX_EXIT_USAGE, "hx diff: give two runs or two evals (RUN:STAGE[axis=value]), not one of each\n%s", usage);
    hx_store s;
    if (hx_store_open(&s, c->store_dir) < 0) die(HX_EXIT_STORE, "%s", hx_last_error());
    rp_source src = hx_runsrc_source(&s);
    json_t *run[2], *d;
    if (colon[0]) {
        const json_t *rec[2];
        for (int k = 0; k < 2; k++) {
            char *id = xstrfmt("%.*s", (int)(colon[k] - ref[k]), ref[k]);
            run[k] = hx_runsrc_open_run(&s, *id ? id : "latest", "diff");
            free(id);
            rec[k] = rp_find_instance(run[k], colon[k] + 1);
            if (!rec[k]) die(HX_EXIT_USAGE, "hx diff: %s", hx_last_error());
        }
        d = rp_diff_instances(run[0], rec[0], run[1], rec[1], &src, 0);
    } else {
        run[0] = hx_runsrc_open_run(&s, ref[0], "diff");
        run[1] = hx_runsrc_open_run(&s, ref[1], "diff");
        d = rp_diff(run[0], run[1], &src, 0);
    }
    if (!d) die(HX_EXIT_USAGE, "hx diff: %s", hx_last_error());
    char *text = json ? json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(9)) : rp_diff_text(d, flips < 0 ? 0 : flips);
    fputs(text, stdout);
    if (json) fputs("\n", stdout);
    free(text);
    json_decref(d);
    json_decref(run[0]);
    json_decref(run[1]);
    hx_store_release(&s);
    free(usage);
    return 0;
}
