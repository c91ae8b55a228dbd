/* cmd_runs.c - `hx runs`: the run records of a store, newest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"
#include "engine/hx/slurm.h"

int cmd_runs(int argc, char **argv)
{
    hx_cli c;
    hx_cli_parse(&c, argc, argv, "store json", 0, 0);
    hx_store s;
    hx_cli_open_store(&c, &s);
    json_t *ids = hx_store_list_runs(&s), *all = json_array();
    for (size_t i = json_array_size(ids); i-- > 0;) {
        const char *id = json_string_value(json_array_get(ids, i));
        json_t *run = hx_store_read_run(&s, id);
        if (!run) {
            log_warn("%s", hx_last_error());
            continue;
        }
        int changed = hx_slurm_refresh(&s, run); /* a Slurm run catches up with its jobs */
        if (changed < 0) log_warn("%s", hx_last_error());
        else if (changed && hx_store_update_run(&s, id, run) < 0) log_warn("%s", hx_last_error());
        int counts[4] = {0};
        static const char *names[] = {"executed", "cached", "failed", "skipped"};
        json_t *stages = json_object_get(run, "stages");
        for (size_t j = 0; j < json_array_size(stages); j++) {
            const char *st = json_string_value(json_object_get(json_array_get(stages, j), "state"));
            for (int k = 0; k < 4; k++) counts[k] += st && !strcmp(st, names[k]);
        }
        json_t *o = json_pack("{s:s,s:O,s:O,s:O,s:O,s:i,s:i,s:i,s:i}", "run_id", id, "status",
                              json_object_get(run, "status"), "recipe",
                              json_object_get(json_object_get(run, "recipe"), "name"), "started",
                              json_object_get(run, "started"), "seconds", json_object_get(run, "seconds"), "executed",
                              counts[0], "cached", counts[1], "failed", counts[2], "skipped", counts[3]);
        if (o) json_array_append_new(all, o);
        json_decref(run);
    }
    if (c.json) {
        char *t = json_dumps(all, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
    } else {
        for (size_t i = 0; i < json_array_size(all); i++) {
            json_t *o = json_array_get(all, i);
            printf("%s  %-11s %-24s %3lld executed %3lld cached %3lld failed %3lld skipped %8.2fs\n",
                   json_string_value(json_object_get(o, "run_id")), json_string_value(json_object_get(o, "status")),
                   json_string_value(json_object_get(o, "recipe")),
                   (long long)json_integer_value(json_object_get(o, "executed")),
                   (long long)json_integer_value(json_object_get(o, "cached")),
                   (long long)json_integer_value(json_object_get(o, "failed")),
                   (long long)json_integer_value(json_object_get(o, "skipped")),
                   json_number_value(json_object_get(o, "seconds")));
        }
        if (!json_array_size(all)) printf("no runs in %s\n", s.root);
    }
    json_decref(all);
    json_decref(ids);
    hx_store_release(&s);
    hx_cli_release(&c);
    return 0;
}
