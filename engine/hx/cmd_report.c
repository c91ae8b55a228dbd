/* cmd_report.c - `hx report RUN`: the recipe's report tables from a run record and the store (no model loading). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/commands.h"
#include "engine/hx/store.h"
#include "evalsuite/metrics.h"
#include "reports/report.h"

static const char usage[] = "usage: hx report RUN|latest|PREFIX [--format md|json|tex|html] [-o FILE] [--store DIR]";

/* rp_source over the store: a stored entry's file, parsed. */
static json_t *store_load(void *ud, const char *key, const char *file)
{
    const hx_store *s = ud;
    if (!hx_store_has(s, key)) {
        error("store entry %.12s is not in %s (removed by hx gc, or the stage did not finish)", key, s->root);
        return NULL;
    }
    char *dir = hx_store_entry_dir(s, key), *path = hx_path_join(dir, file);
    json_t *v = NULL;
    size_t n = strlen(file);
    if (n > 6 && !strcmp(file + n - 6, ".jsonl")) {
        if (ev_read_jsonl(path, &v)) v = NULL;
    } else {
        json_error_t je;
        v = json_load_file(path, 0, &je);
        if (!v) error("%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    free(dir);
    free(path);
    return v;
}

static json_t *open_run(const hx_store *s, const char *ref, const char *cmd)
{
    char *id = NULL;
    if (strcmp(ref, "latest")) {
        json_t *ids = hx_store_list_runs(s);
        id = rp_resolve_run(ids, ref);
        json_decref(ids);
        if (!id) die(HX_EXIT_USAGE, "hx %s: %s in %s", cmd, hx_last_error(), s->root);
    }
    json_t *run = hx_store_read_run(s, id ? id : ref);
    if (!run) die(HX_EXIT_STORE, "hx %s: %s", cmd, hx_last_error());
    free(id);
    return run;
}

int cmd_report(int argc, char **argv)
{
    const char *ref = NULL, *format = "md", *out = NULL, *store = getenv("HX_STORE");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--format") && more) format = argv[++i];
        else if (!strncmp(a, "--format=", 9)) format = a + 9;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && more) out = argv[++i];
        else if (!strcmp(a, "--store") && more) store = argv[++i];
        else if (!strncmp(a, "--store=", 8)) store = a + 8;
        else if (a[0] == '-' && a[1]) die(HX_EXIT_USAGE, "hx report: unknown option or missing value '%s'\n%s", a, usage);
        else if (!ref) ref = a;
        else die(HX_EXIT_USAGE, "hx report: one run\n%s", usage);
    }
    if (!ref) ref = "latest";
    if (strcmp(format, "md") && strcmp(format, "json") && strcmp(format, "tex") && strcmp(format, "html"))
        die(HX_EXIT_USAGE, "hx report: --format %s: expected md, json, tex or html", format);
    hx_store s;
    if (hx_store_open(&s, store && *store ? store : ".hx") < 0) die(HX_EXIT_STORE, "%s", hx_last_error());
    json_t *run = open_run(&s, ref, "report");
    rp_source src = {store_load, &s};
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
