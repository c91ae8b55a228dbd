/* cmd_plan.c - `hx plan RECIPE`: every stage instance with its axes, key, cache state and why. */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/estimate.h"

int cmd_plan(hx_cli *c)
{
    hx_cli_planned v;
    hx_cli_plan_open(c, &v);
    hx_estimate *est = xcalloc((size_t)v.p.n + 1, sizeof *est);
    hx_estimator *e = hx_estimator_new(&v.s);
    hx_estimate_plan(e, &v.p, &v.s, est);
    hx_estimator_free(e);
    if (c->json) {
        /* One object per line inside the array: easy for jq and for grep alike. */
        printf("[");
        for (int i = 0; i < v.p.n; i++) {
            const hx_instance *in = &v.p.inst[i];
            json_t *st = json_array_get(v.states, (size_t)i);
            json_t *o = json_pack("{s:s,s:s,s:O,s:s,s:O,s:O,s:O}", "stage", in->stage_name, "kind", in->kind->name,
                                  "axes", in->axes, "key", in->key, "state", json_object_get(st, "state"), "inputs",
                                  in->inputs, "reason", json_object_get(st, "reason"));
            if (in->external) json_object_set(o, "external", in->external);
            json_object_set_new(o, "estimate", json_pack("{s:o,s:s}", "seconds", est[i].seconds < 0 ? json_null()
                                                         : hx_json_num(est[i].seconds), "how", est[i].how));
            char *t = json_dumps(o, JSON_COMPACT);
            printf("%s\n%s", i ? "," : "", t);
            free(t);
            json_decref(o);
        }
        printf("\n]\n");
    } else {
        int cached = 0;
        for (int i = 0; i < v.p.n; i++) {
            const hx_instance *in = &v.p.inst[i];
            json_t *st = json_array_get(v.states, (size_t)i);
            const char *state = json_string_value(json_object_get(st, "state"));
            cached += state[0] == 'c';
            char *label = hx_plan_axes_label(in->axes);
            printf("%-7s %-16s %-32s %.12s  %s\n", state, in->stage_name, *label ? label : "(shared)", in->key,
                   json_string_value(json_object_get(st, "reason")));
            free(label);
            hx_cli_print_external(in, 8);
            if (est[i].seconds < 0) printf("        time ?: %s\n", est[i].how);
            else if (est[i].seconds > 0 || state[0] != 'c') printf("        time %.2fs: %s\n", est[i].seconds, est[i].how);
        }
        printf("%d instance%s (%d arm%s): %d cached, %d to run\n", v.p.n, v.p.n == 1 ? "" : "s", v.p.n_arms,
               v.p.n_arms == 1 ? "" : "s", cached, v.p.n - cached);
        double *secs = xcalloc((size_t)v.p.n + 1, sizeof *secs), serial, wall;
        int unknown;
        for (int i = 0; i < v.p.n; i++) secs[i] = est[i].seconds;
        hx_estimate_totals(&v.p, secs, c->jobs, &serial, &wall, &unknown);
        if (cached < v.p.n) {
            printf("time: %s%.2fs with --jobs %d, %s%.2fs one after another", unknown ? ">= " : "", wall, c->jobs,
                   unknown ? ">= " : "", serial);
            if (unknown) printf(" (%d instance%s without an estimate)", unknown, unknown == 1 ? "" : "s");
            printf("\n");
        }
        free(secs);
    }
    free(est);
    hx_cli_plan_close(&v);
    return 0;
}
