/* cmd_diff.c - `hx diff RUN_A RUN_B`: parameters, stage keys, eval metrics with deltas and confidence, flipped items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/commands.h"
#include "engine/hx/store.h"
#include "engine/hx/runsrc.h"
#include "reports/report.h"

static const char usage[] = "usage: hx diff RUN_A RUN_B [--json] [--flips N] [--store DIR]   (RUN: id, unique prefix or latest)";

int cmd_diff(int argc, char **argv)
{
    const char *ref[2] = {NULL, NULL}, *store = getenv("HX_STORE");
    int json = 0, nref = 0, flips = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--store") && more) store = argv[++i];
        else if (!strncmp(a, "--store=", 8)) store = a + 8;
        else if (!strcmp(a, "--flips") && more) flips = atoi(argv[++i]);
        else if (a[0] == '-' && a[1]) die(HX_EXIT_USAGE, "hx diff: unknown option or missing value '%s'\n%s", a, usage);
        else if (nref < 2) ref[nref++] = a;
        else die(HX_EXIT_USAGE, "hx diff: two runs\n%s", usage);
    }
    if (nref != 2) die(HX_EXIT_USAGE, "hx diff: two runs\n%s", usage);
    hx_store s;
    if (hx_store_open(&s, store && *store ? store : ".hx") < 0) die(HX_EXIT_STORE, "%s", hx_last_error());
    json_t *a = hx_runsrc_open_run(&s, ref[0], "diff"), *b = hx_runsrc_open_run(&s, ref[1], "diff");
    rp_source src = hx_runsrc_source(&s);
    json_t *d = rp_diff(a, b, &src, 0);
    if (!d) die(HX_EXIT_USAGE, "hx diff: %s", hx_last_error());
    char *text = json ? json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(9)) : rp_diff_text(d, flips < 0 ? 0 : flips);
    fputs(text, stdout);
    if (json) fputs("\n", stdout);
    free(text);
    json_decref(d);
    json_decref(a);
    json_decref(b);
    hx_store_release(&s);
    return 0;
}
