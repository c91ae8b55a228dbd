/* cmd_runs.c - `hx runs`: every run record of a store, newest first (dead and malformed ones marked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"
#include "engine/hx/slurm.h"

/* One row of `hx runs` for record ID: every record is listed, a malformed one as such. */
static json_t *row(const hx_store *s, const char *id)
{
    json_t *run = hx_store_read_run(s, id);
    if (!run)
        return json_pack("{s:s,s:s,s:s}", "run_id", id, "status", "malformed", "problem", hx_last_error());
    int changed = hx_slurm_refresh(s, run); /* a Slurm run catches up with its jobs */
    if (changed < 0) log_warn("%s", hx_last_error());
    else if (changed && hx_store_update_run(s, id, run) < 0) log_warn("%s", hx_last_error());
    int counts[4] = {0};
    static const char *names[] = {"executed", "cached", "failed", "skipped"};
    json_t *stages = json_object_get(run, "stages");
    for (size_t j = 0; j < json_array_size(stages); j++) {
        const char *st = json_string_value(json_object_get(json_array_get(stages, j), "state"));
        for (int k = 0; k < 4; k++) counts[k] += st && !strcmp(st, names[k]);
    }
    const char *status = json_string_value(json_object_get(run, "status"));
    const char *recipe = json_string_value(json_object_get(json_object_get(run, "recipe"), "name"));
    const char *started = json_string_value(json_object_get(run, "started"));
    const char *bad = !status ? "no status" : !recipe ? "no recipe name" : !json_is_array(stages) ? "no stages list"
                    : hx_store_run_time(run) < 0 ? "start time missing, malformed or in the future" : NULL;
    /* A run whose process is gone (killed, machine crashed) never ends its record: say so. */
    if (status && !strcmp(status, "running") && hx_store_run_alive(run) == 0) status = "dead";
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:i,s:i,s:i}", "run_id", id, "status", bad ? "malformed" : status,
                          "recipe", recipe ? recipe : "?", "started", started ? started : "?", "seconds",
                          hx_json_num(json_number_value(json_object_get(run, "seconds"))), "executed", counts[0], "cached",
                          counts[1], "failed", counts[2], "skipped", counts[3]);
    if (bad) json_object_set_new(o, "problem", json_string(bad));
    json_decref(run);
    return o;
}

int cmd_runs(hx_cli *c)
{
    hx_store s;
    hx_cli_open_store(c, &s);
    json_t *ids = hx_store_list_runs(&s), *all = json_array();
    for (size_t i = json_array_size(ids); i-- > 0;) json_array_append_new(all, row(&s, json_string_value(json_array_get(ids, i))));
    if (c->json) {
        char *t = json_dumps(all, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
    } else {
        for (size_t i = 0; i < json_array_size(all); i++) {
            json_t *o = json_array_get(all, i);
            const char *problem = json_string_value(json_object_get(o, "problem"));
            if (problem && !json_object_get(o, "recipe")) {
                printf("%s  %-11s %s\n", json_string_value(json_object_get(o, "run_id")), "malformed", problem);
                continue;
            }
            printf("%s  %-11s %-24s %3lld executed %3lld cached %3lld failed %3lld skipped %8.2fs%s%s\n",
                   json_string_value(json_object_get(o, "run_id")), json_string_value(json_object_get(o, "status")),
                   json_string_value(json_object_get(o, "recipe")),
                   (long long)json_integer_value(json_object_get(o, "executed")),
                   (long long)json_integer_value(json_object_get(o, "cached")),
                   (long long)json_integer_value(json_object_get(o, "failed")),
                   (long long)json_integer_value(json_object_get(o, "skipped")),
                   json_number_value(json_object_get(o, "seconds")), problem ? "  " : "", problem ? problem : "");
        }
        if (!json_array_size(all)) printf("no runs in %s\n", s.root);
    }
    json_decref(all);
    json_decref(ids);
    hx_store_release(&s);
    return 0;
}
