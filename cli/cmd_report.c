/* cmd_report.c - `hx report RUN`: the recipe's report tables and figures from a run record and the store (no model
 * loading): the report folder (every format), or one --format to stdout or -o FILE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/store.h"
#include "interp/runsrc.h"
#include "reports/report.h"

int cmd_report(hx_cli *c)
{
    const char *ref = c->n_args ? c->args[0] : "latest", *format = hx_cli_str(c, "format"),
               *out = hx_cli_str(c, "output");
    if (!format && out) format = rp_format_of_path(out); /* -o report.md: that one file, as before the folder */
    if (format && !rp_format_known(format)) die(HX_EXIT_USAGE, "hx report: --format %s: expected " RP_FORMATS, format);
    hx_store s;
    if (hx_store_open(&s, c->store_dir) < 0) die(HX_EXIT_STORE, "%s", hx_last_error());
    json_t *run = hx_runsrc_open_run(&s, ref, "report");
    rp_source src = hx_runsrc_source(&s);
    json_t *rep = rp_report_build(run, &src);
    if (!rep) die(HX_EXIT_USAGE, "hx report: run %s: %s", json_string_value(json_object_get(run, "run_id")), hx_last_error());
    if (!format) { /* the report folder: -o DIR, else reports/<run>/ under the store; one line per file written */
        const char *id = json_string_value(json_object_get(run, "run_id"));
        if (!out && !hx_store_is_run_id(id ? id : "")) die(HX_EXIT_STORE, "hx report: the run record has no valid run_id");
        char *dir = out ? xstrdup(out) : hx_store_report_dir(&s, id);
        json_t *files = json_array();
        if (rp_write_dir(rep, dir, files))
            die(HX_EXIT_STORE, "hx report: %s\nhint: write the folder elsewhere with -o DIR, or one format with --format", hx_last_error());
        for (size_t i = 0; i < json_array_size(files); i++) printf("%s\n", json_string_value(json_array_get(files, i)));
        json_decref(files);
        free(dir);
    } else { /* one format: to -o FILE, or to stdout */
        char *text;
        if (rp_render(rep, format, &text)) die(HX_EXIT_USAGE, "hx report: %s", hx_last_error());
        if (!out) fputs(text, stdout);
        else if (hx_write_file_atomic(out, text, strlen(text))) die(HX_EXIT_STORE, "hx report: %s", hx_last_error());
        free(text);
    }
    json_decref(rep);
    json_decref(run);
    hx_store_release(&s);
    return 0;
}
