/* cmd_runs.c - `hx runs`: every run record of a store, newest first (dead and malformed ones marked); `--metrics`:
 * one table of the runs' headline metrics and the parameters that differ (reports/runs.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/runsrc.h"
#include "interp/slurm.h"
#include "reports/report.h"

/* A running run's progress: {done, total, running: [{instance, key, done, total, unit, rate, eta_s, extra, age_s}]}
 * from its record (the instances finished and started) and each running instance's live record (exec.c). */
static json_t *run_progress(const hx_store *s, const json_t *run)
{
    json_t *stages = json_object_get(run, "stages"), *running = json_array();
    int done = 0;
    size_t i;
    json_t *st;
    json_array_foreach(stages, i, st) {
        const char *state = json_string_value(json_object_get(st, "state")), *key = json_string_value(json_object_get(st, "key"));
        if (!state || !strcmp(state, "pending")) continue;
        if (strcmp(state, "running")) {
            done++;
            continue;
        }
        char *path = key ? hx_store_live_path(s, key) : NULL;
        json_t *live = path && hx_file_exists(path) ? hx_read_json(path, 0) : NULL;
        hx_clear_error();
        json_t *o = json_pack("{s:s?,s:O}", "key", key, "axes", json_object_get(st, "axes"));
        json_object_set(o, "stage", json_object_get(st, "stage"));
        if (live) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            static const char *const f[] = {"instance", "done", "total", "unit", "rate", "eta_s", "extra", NULL};
            for (int k = 0; f[k]; k++) json_object_set(o, f[k], json_object_get(live, f[k]));
            json_object_set_new(o, "age_s", hx_json_num(ts.tv_sec + ts.tv_nsec * 1e-9 -
                                                        json_number_value(json_object_get(live, "updated"))));
        }
        json_decref(live);
        free(path);
        json_array_append_new(running, o);
    }
    return json_pack("{s:i,s:i,s:o}", "done", done, "total", (int)json_array_size(stages), "running", running);
}

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
    else if (!strcmp(status, "running")) json_object_set_new(o, "progress", run_progress(s, run));
    json_decref(run);
    return o;
}

/* "  3/8 instances done; running teacher: 1200/4800 tok (25.0%), 4100 tok/s, ETA 1s (2s ago)" */
static void print_progress(const json_t *pr)
{
    if (!pr) return;
    printf("    %lld/%lld instances done\n", (long long)json_integer_value(json_object_get(pr, "done")),
           (long long)json_integer_value(json_object_get(pr, "total")));
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(pr, "running"), i, r) {
        const char *name = json_string_value(json_object_get(r, "instance"));
        if (!json_object_get(r, "done")) {
            printf("    running %s (no progress reported yet)\n", json_string_value(json_object_get(r, "stage")));
            continue;
        }
        double done = json_number_value(json_object_get(r, "done")), total = json_number_value(json_object_get(r, "total"));
        const char *unit = json_string_value(json_object_get(r, "unit"));
        json_t *eta = json_object_get(r, "eta_s");
        char etas[32] = "?";
        if (json_is_number(eta)) snprintf(etas, sizeof etas, "%.0fs", json_number_value(eta));
        printf("    running %s: %.0f/%.0f %s (%.1f%%), %.0f %s/s, ETA %s (as of %.0fs ago)\n", name ? name : "?", done,
               total, unit ? unit : "", total > 0 ? 100 * done / total : 0, json_number_value(json_object_get(r, "rate")),
               unit ? unit : "", etas, json_number_value(json_object_get(r, "age_s")));
    }
}

/* `hx runs --metrics [RUN...]`: the runs named (else every readable record, newest first) as one table. */
static void print_metrics(const hx_store *s, const json_t *ids, const char *const *refs, int n_refs,
                          const rp_runs_filter *f, int json)
{
    json_t *runs = json_array();
    for (int i = 0; i < n_refs; i++) json_array_append_new(runs, hx_runsrc_open_run(s, refs[i], "runs"));
    for (size_t i = json_array_size(ids); !n_refs && i-- > 0;) {
        json_t *run = hx_store_read_run(s, json_string_value(json_array_get(ids, i)));
        if (run) json_array_append_new(runs, run); /* a malformed record has no metrics: plain `hx runs` shows it */
    }
    rp_source src = hx_runsrc_source(s);
    json_t *tab = rp_runs_table(runs, f, &src);
    if (!tab) die(HX_EXIT_USAGE, "hx runs: %s", hx_last_error());
    char *t = json ? json_dumps(tab, JSON_COMPACT | JSON_REAL_PRECISION(9)) : rp_runs_text(tab);
    fputs(t, stdout);
    if (json) fputs("\n", stdout);
    else if (!json_array_size(json_object_get(tab, "rows"))) printf("no run rows match in %s\n", s->root);
    free(t);
    json_decref(tab);
    json_decref(runs);
}

int cmd_runs(hx_cli *c)
{
    int n_where = 0;
    const char **where = hx_cli_list(c, "where", &n_where), *recipe = hx_cli_str(c, "recipe");
    const char *const *refs = (const char *const *)c->args;
    int metrics = hx_cli_given(c, "metrics"), n_refs = c->n_args;
    if (!metrics && (n_where || n_refs))
        die(HX_EXIT_USAGE, "hx runs: %s goes with --metrics; see 'hx runs --help'", n_where ? "--where" : "a RUN");
    hx_store s;
    hx_cli_open_store(c, &s);
    json_t *ids = hx_store_list_runs(&s);
    if (metrics) {
        rp_runs_filter f = {recipe, where, n_where};
        print_metrics(&s, ids, refs, n_refs, &f, c->json);
        json_decref(ids);
        hx_store_release(&s);
        free(where);
        return 0;
    }
    json_t *all = json_array();
    for (size_t i = json_array_size(ids); i-- > 0;) {
        json_t *o = row(&s, json_string_value(json_array_get(ids, i)));
        const char *name = json_string_value(json_object_get(o, "recipe"));
        if (!recipe || (name && !strcmp(name, recipe))) json_array_append_new(all, o);
        else json_decref(o);
    }
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
            print_progress(json_object_get(o, "progress"));
        }
        if (!json_array_size(all)) printf("no runs in %s\n", s.root);
    }
    json_decref(all);
    json_decref(ids);
    hx_store_release(&s);
    free(where);
    return 0;
}
