/* cmd_diff.c - `hx diff RUN_A RUN_B`: parameters, stage keys, eval metrics with deltas and confidence, flipped items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/commands.h"
#include "engine/hx/store.h"
#include "evalsuite/metrics.h"
#include "reports/report.h"

static const char usage[] = "usage: hx diff RUN_A RUN_B [--json] [--flips N] [--store DIR]   (RUN: id, unique prefix or latest)";

/* rp_source over the store (as in cmd_report.c: each command file keeps its own glue). */
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

static json_t *open_run(const hx_store *s, const char *ref)
{
    char *id = NULL;
    if (strcmp(ref, "latest")) {
        json_t *ids = hx_store_list_runs(s);
        id = rp_resolve_run(ids, ref);
        json_decref(ids);
        if (!id) die(HX_EXIT_USAGE, "hx diff: %s in %s", hx_last_error(), s->root);
    }
    json_t *run = hx_store_read_run(s, id ? id : ref);
    if (!run) die(HX_EXIT_STORE, "hx diff: %s", hx_last_error());
    free(id);
    return run;
}

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
    json_t *a = open_run(&s, ref[0]), *b = open_run(&s, ref[1]);
    rp_source src = {store_load, &s};
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
