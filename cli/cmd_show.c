/* cmd_show.c - `hx show RUN|KEY|RUN:STAGE[axis=value]`: a run's summary (or with --json its record), or a store
 * entry's manifest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/runsrc.h"
#include "interp/slurm.h"
#include "reports/report.h"

#define SHOW_METRICS 6 /* scalar metrics printed per stage instance; the rest are counted */


static void print_json(const json_t *v)
{
    char *t = json_dumps(v, JSON_INDENT(2));
    printf("%s\n", t);
    free(t);
}

/* "1.234s", "2m05s", "1h02m" */
static void fmt_seconds(char *buf, size_t n, double s)
{
    if (!(s >= 0)) snprintf(buf, n, "-");
    else if (s < 60) snprintf(buf, n, "%.2fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* The scalar metrics of a manifest as "k=v k=v", at most SHOW_METRICS, then "(+N more)"; xmalloc'd. */
static char *metrics_text(const json_t *metrics)
{
    char *s = xstrdup("");
    int shown = 0, more = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)metrics, k, v) {
        char val[64];
        if (json_is_integer(v)) snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v)) snprintf(val, sizeof val, "%.4g", json_real_value(v));
        else if (json_is_string(v) && strlen(json_string_value(v)) < 40) snprintf(val, sizeof val, "%s", json_string_value(v));
        else if (json_is_boolean(v)) snprintf(val, sizeof val, "%s", json_is_true(v) ? "true" : "false");
        else {
            more++;
            continue;
        }
        if (shown == SHOW_METRICS) {
            more++;
            continue;
        }
        char *t = xstrfmt("%s%s%s=%s", s, *s ? " " : "", k, val);
        free(s);
        s = t;
        shown++;
    }
    if (more) {
        char *t = xstrfmt("%s%s(+%d more)", s, *s ? " " : "", more);
        free(s);
        s = t;
    }
    return s;
}

/* The run's summary: header, then one line per stage instance with its state, the time it took (for a cached one, the
 * execution that made it, from the manifest) and its metrics. */
static void print_summary(const hx_store *s, const json_t *run)
{
    const json_t *rec = json_object_get(run, "recipe"), *hx = json_object_get(run, "hx");
    char took[32];
    fmt_seconds(took, sizeof took, json_number_value(json_object_get(run, "seconds")));
    printf("run %s: %s, %s in %s\n", hx_json_str(run, "run_id"), hx_json_str(rec, "name") ? hx_json_str(rec, "name") : "?",
           hx_json_str(run, "status") ? hx_json_str(run, "status") : "?", took);
    printf("  recipe   %s\n", hx_json_str(rec, "path") ? hx_json_str(rec, "path") : "?");
    printf("  started  %s  device %s, jobs %lld, threads %lld%s\n", hx_json_str(run, "started") ? hx_json_str(run, "started") : "?",
           hx_json_str(run, "device") ? hx_json_str(run, "device") : "?", (long long)json_integer_value(json_object_get(run, "jobs")),
           (long long)json_integer_value(json_object_get(run, "threads")),
           json_is_true(json_object_get(run, "strict")) ? ", strict" : "");
    printf("  hx       %s (%s, %s)\n", hx_json_str(hx, "version") ? hx_json_str(hx, "version") : "?",
           hx_json_str(hx, "commit") ? hx_json_str(hx, "commit") : "?", hx_json_str(hx, "build") ? hx_json_str(hx, "build") : "?");
    size_t i;
    json_t *v;
    if (json_array_size(json_object_get(run, "overrides"))) {
        printf("  -S      ");
        json_array_foreach(json_object_get(run, "overrides"), i, v) printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
        printf("\n");
    }
    const char *k;
    json_object_foreach(json_object_get(run, "axes"), k, v) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("  axis     %s: %s\n", k, t);
        free(t);
    }
    json_t *stages = json_object_get(run, "stages");
    json_t *count = json_object(); /* instances per state, in order of appearance */
    int ws = 5, wa = 4;
    json_array_foreach(stages, i, v) {
        const char *st = hx_json_str(v, "state") ? hx_json_str(v, "state") : "?";
        json_object_set_new(count, st, json_integer(json_integer_value(json_object_get(count, st)) + 1));
        char *a = rp_axes_label(json_object_get(v, "axes"));
        int ls = (int)strlen(hx_json_str(v, "stage") ? hx_json_str(v, "stage") : ""), la = (int)strlen(a);
        ws = ls > ws ? ls : ws;
        wa = la > wa ? la : wa;
        free(a);
    }
    printf("  stages   %zu instances:", json_array_size(stages));
    json_object_foreach(count, k, v) printf(" %lld %s", (long long)json_integer_value(v), k);
    printf(" (time: of the execution that made the entry; a cached one's was an earlier run)\n");
    json_decref(count);
    printf("\n%-*s  %-*s  %-9s %-9s %-12s  %s\n", ws, "stage", wa, "axes", "state", "time", "key", "metrics");
    json_array_foreach(stages, i, v) {
        const char *key = hx_json_str(v, "key") ? hx_json_str(v, "key") : "", *state = hx_json_str(v, "state") ? hx_json_str(v, "state") : "?";
        char *a = rp_axes_label(json_object_get(v, "axes")), *m;
        json_t *man = *key && hx_store_has(s, key) ? hx_store_manifest(s, key) : NULL;
        double secs = json_number_value(json_object_get(v, "seconds"));
        if (man && !strcmp(state, "cached")) secs = json_number_value(json_object_get(man, "seconds"));
        fmt_seconds(took, sizeof took, secs);
        if (man) m = metrics_text(json_object_get(man, "metrics"));
        else m = xstrdup(*key && strcmp(state, "failed") && strcmp(state, "skipped") ? "(not in the store: hx gc?)" : "");
        printf("%-*s  %-*s  %-9s %-9s %-12.12s  %s\n", ws, hx_json_str(v, "stage") ? hx_json_str(v, "stage") : "?", wa, a, state, took,
               key, m);
        free(a);
        free(m);
        json_decref(man);
    }
}

int cmd_show(hx_cli *c)
{
    hx_store s;
    hx_cli_open_store(c, &s);
    const char *what = c->args[0];
    size_t n = strlen(what);
    int hex = n >= 4 && n <= 64 && strspn(what, "0123456789abcdef") == n;
    json_t *v = NULL;
    char *key = NULL;
    if (strchr(what, ':')) { /* RUN:STAGE[axis=value]: that instance's manifest */
        json_t *e = hx_runsrc_stage(&s, what);
        if (!e) die(HX_EXIT_USAGE, "hx show: %s", hx_last_error());
        key = xstrdup(hx_json_str(e, "key") ? hx_json_str(e, "key") : "");
        json_decref(e);
        if (!hx_store_has(&s, key))
            die(HX_EXIT_STORE, "hx show: %s is store entry %.12s, which is not in %s (hx gc?)", what, key, s.root);
    } else if (hex && !(key = hx_store_find_key(&s, what))) {
        /* a hex run prefix such as 20261203 */
        char *why = xstrdup(hx_last_error());
        json_t *ids = hx_store_list_runs(&s);
        char *id = rp_resolve_run(ids, what);
        json_decref(ids);
        if (!id) die(HX_EXIT_USAGE, "hx show: %s (as a key: %s)", hx_last_error(), why);
        free(why);
        v = hx_runsrc_open_run(&s, id, "show");
        free(id);
    } else if (!hex) {
        v = hx_runsrc_open_run(&s, what, "show");
    }
    if (v && !key) {
        /* a Slurm run (--detach) is followed here: its record catches up with its jobs */
        int changed = hx_slurm_refresh(&s, v);
        if (changed < 0) log_warn("hx show: %s", hx_last_error());
        else if (changed && hx_store_update_run(&s, json_string_value(json_object_get(v, "run_id")), v) < 0)
            log_warn("hx show: %s", hx_last_error());
    }
    if (key) {
        v = hx_store_manifest(&s, key);
        if (!v) die(HX_EXIT_STORE, "hx show: %s", hx_last_error());
        print_json(v);
    } else if (c->json) {
        print_json(v);
    } else {
        print_summary(&s, v);
    }
    free(key);
    json_decref(v);
    hx_store_release(&s);
    return 0;
}
