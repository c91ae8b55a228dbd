/* cmd_diff.c - `hx diff RUN_A RUN_B` (parameters, stage keys, every matched eval compared) and
 * `hx diff RUN:STAGE[axis=value] RUN:STAGE[..]` (any two evals: paired deltas, did, retention, flipped items). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/commands.h"
#include "engine/hx/store.h"
#include "engine/hx/runsrc.h"
#include "reports/report.h"

int cmd_diff(int argc, char **argv)
{
    const char *ref[2] = {NULL, NULL}, *store = getenv("HX_STORE");
    const char *usage = hx_cmd_find("diff")->usage; /* the command table's */
    int json = 0, nref = 0, flips = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--store") && more) store = argv[++i];
        else if (!strncmp(a, "--store=", 8)) store = a + 8;
        else if (!strcmp(a, "--flips") && more) flips = atoi(argv[++i]);
        else if (a[0] == '-' && a[1]) die(HX_EXIT_USAGE, "hx diff: unknown option or missing value '%s'\nusage: hx diff %s", a, usage);
        else if (nref < 2) ref[nref++] = a;
        else die(HX_EXIT_USAGE, "hx diff: two runs or two evals\nusage: hx diff %s", usage);
    }
    if (nref != 2) die(HX_EXIT_USAGE, "hx diff: two runs or two evals\nusage: hx diff %s", usage);
    const char *colon[2] = {strchr(ref[0], ':'), strchr(ref[1], ':')};
    if (!colon[0] != !colon[1])
        die(HX_EXIT_USAGE, "hx diff: give two runs or two evals (RUN:STAGE[axis=value]), not one of each\nusage: hx diff %s", usage);
    hx_store s;
    if (hx_store_open(&s, store && *store ? store : ".hx") < 0) die(HX_EXIT_STORE, "%s", hx_last_error());
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
    return 0;
}
