/* cmd_gc.c - `hx gc [--keep N] [--dry-run]`: drop old run records (never a live run's) and every entry no kept run
 * references, listing each (with --dry-run: what it would remove, removing nothing). */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"

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
        static const char *const lists[] = {"removed_runs", "removed_entries", "removed_partials", "removed_reports"};
                for (int k = 0; k < 4; k++) {
            size_t i;
            json_t *x;
            json_array_foreach(json_object_get(rep, lists[k]), i, x) {
                const char *what = c->dry_run ? "would remove" : "removed";
                if (k == 0) printf("%s run      %s\n", what, json_string_value(x));
                else if (k == 3) printf("%s report   %s  %10.1f KiB\n", what, json_string_value(json_object_get(x, "name")),
                                        json_integer_value(json_object_get(x, "bytes")) / 1024.0);
                else printf("%s %-7s  %-12.12s  %-16s %10.1f KiB\n", what, k == 1 ? "entry" : "partial",
                            json_string_value(json_object_get(x, json_object_get(x, "key") ? "key" : "name")),
                            json_string_value(json_object_get(x, "stage")) ? json_string_value(json_object_get(x, "stage")) : "",
                            json_integer_value(json_object_get(x, "bytes")) / 1024.0);
            }
        }
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
