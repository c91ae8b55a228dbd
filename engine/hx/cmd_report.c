/* cmd_report.c - `hx report RUN`: the recipe's report tables from a run record and the store (no model loading). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"
#include "engine/hx/store.h"
#include "engine/hx/runsrc.h"
#include "reports/report.h"

int cmd_report(hx_cli *c)
{
    const char *ref = c->n_args ? c->args[0] : "latest", *format = hx_cli_str(c, "format"),
               *out = hx_cli_str(c, "output");
    hx_store s;
    if (hx_store_open(&s, c->store_dir) < 0) die(HX_EXIT_STORE, "%s", hx_last_error());
    json_t *run = hx_runsrc_open_run(&s, ref, "report");
    rp_source src = hx_runsrc_source(&s);
    json_t *rep = rp_report_build(run, &src);
    if (!rep) die(HX_EXIT_USAGE, "hx report: run %s: %s", json_string_value(json_object_get(run, "run_id")), hx_last_error());
    char *text;
    if (rp_render(rep, format, &text)) die(HX_EXIT_USAGE, "hx report: %s", hx_last_error());
    if (out) {
        if (hx_write_file_atomic(out, text, strlen(text))) die(HX_EXIT_STORE, "hx report: %s", hx_last_error());
    } else {
        fputs(text, stdout);
    }
    free(text);
    json_decref(rep);
    json_decref(run);
    hx_store_release(&s);
    return 0;
}
