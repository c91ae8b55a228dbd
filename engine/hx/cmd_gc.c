/* cmd_gc.c - `hx gc [--keep N]`: drop old run records (never a live run's) and every entry no kept run references. */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"

int cmd_gc(hx_cli *c)
{
    hx_store s;
    hx_cli_open_store(c, &s);
    json_t *rep = json_object();
    if (hx_store_gc(&s, c->keep, c->dry_run, rep) < 0) die(HX_EXIT_STORE, "hx gc: %s", hx_last_error());
    if (c->json) {
        json_object_set_new(rep, "dry_run", json_boolean(c->dry_run));
        char *t = json_dumps(rep, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
    } else {
        printf("%s%lld run record%s and %lld store entr%s removed, %.1f MiB freed; %lld run%s kept (%lld in progress)\n",
               c->dry_run ? "(dry run) " : "", (long long)json_integer_value(json_object_get(rep, "runs_removed")),
               json_integer_value(json_object_get(rep, "runs_removed")) == 1 ? "" : "s",
               (long long)json_integer_value(json_object_get(rep, "entries_removed")),
               json_integer_value(json_object_get(rep, "entries_removed")) == 1 ? "y" : "ies",
               json_integer_value(json_object_get(rep, "bytes_freed")) / 1048576.0,
               (long long)json_integer_value(json_object_get(rep, "runs_kept")),
               json_integer_value(json_object_get(rep, "runs_kept")) == 1 ? "" : "s",
               (long long)json_integer_value(json_object_get(rep, "runs_live")));
    }
    json_decref(rep);
    hx_store_release(&s);
    return 0;
}
