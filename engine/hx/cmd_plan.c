/* cmd_plan.c - `hx plan RECIPE`: every stage instance with its axes, key, cache state and why. */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"

int cmd_plan(hx_cli *c)
{
    hx_recipe r;
    hx_plan p;
    hx_cli_load(c, &r, &p);
    hx_store s;
    hx_cli_open_store(c, &s);
    json_t *states = hx_cli_plan_states(&p, &s);
    if (c->json) {
        /* One object per line inside the array: easy for jq and for grep alike. */
        printf("[");
        for (int i = 0; i < p.n; i++) {
            const hx_instance *in = &p.inst[i];
            json_t *st = json_array_get(states, (size_t)i);
            json_t *o = json_pack("{s:s,s:s,s:O,s:s,s:O,s:O,s:O}", "stage", in->stage_name, "kind", in->kind->name,
                                  "axes", in->axes, "key", in->key, "state", json_object_get(st, "state"), "inputs",
                                  in->inputs, "reason", json_object_get(st, "reason"));
            if (in->external) json_object_set(o, "external", in->external);
            char *t = json_dumps(o, JSON_COMPACT);
            printf("%s\n%s", i ? "," : "", t);
            free(t);
            json_decref(o);
        }
        printf("\n]\n");
    } else {
        int cached = 0;
        for (int i = 0; i < p.n; i++) {
            const hx_instance *in = &p.inst[i];
            json_t *st = json_array_get(states, (size_t)i);
            const char *state = json_string_value(json_object_get(st, "state"));
            cached += state[0] == 'c';
            char *label = hx_plan_axes_label(in->axes);
            printf("%-7s %-16s %-32s %.12s  %s\n", state, in->stage_name, *label ? label : "(shared)", in->key,
                   json_string_value(json_object_get(st, "reason")));
            free(label);
            hx_cli_print_external(in, 8);
        }
        printf("%d instance%s (%d arm%s): %d cached, %d to run\n", p.n, p.n == 1 ? "" : "s", p.n_arms,
               p.n_arms == 1 ? "" : "s", cached, p.n - cached);
    }
    json_decref(states);
    hx_plan_release(&p);
    hx_recipe_release(&r);
    hx_store_release(&s);
    return 0;
}
