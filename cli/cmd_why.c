/* cmd_why.c - `hx why RECIPE STAGE`: which hash components changed since the stage last ran. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/canon.h"
#include "cli/cli.h"
#include "cli/commands.h"

/* Explain instance I; for a changed input, explain that input too (indented), once per instance. */
static void explain(const hx_plan *p, const json_t *states, int i, int depth, int *seen)
{
    const hx_instance *in = &p->inst[i];
    json_t *st = json_array_get(states, (size_t)i);
    json_t *prev = json_object_get(st, "previous");
    const char *state = json_string_value(json_object_get(st, "state"));
    char *label = hx_plan_axes_label(in->axes);
    printf("%*s%s%s%s%s: %s, key %.12s\n", 2 * depth, "", in->stage_name, *label ? " (" : "", label, *label ? ")" : "",
           state, in->key);
    free(label);
    if (seen[i]++) return;
    hx_cli_print_external(in, 2 * depth + 2);
    if (!prev) {
        if (!strcmp(state, "stale"))
            printf("%*s  %s: it executes again\n", 2 * depth, "", json_string_value(json_object_get(st, "reason")));
        else
            printf("%*s  never executed in this store (no run of this recipe has it)\n", 2 * depth, "");
        return;
    }
    const char *pkey = json_string_value(json_object_get(prev, "key"));
    const char *run = json_string_value(json_object_get(prev, "run_id"));
    const char *reason = json_string_value(json_object_get(st, "reason"));
    if (pkey && !strcmp(pkey, in->key)) {
        if (!strcmp(state, "stale")) /* same key, but an input's content changed under it */
            printf("%*s  same key as in run %s, but %s: it executes again\n", 2 * depth, "", run, reason);
        else
            printf("%*s  unchanged since run %s%s\n", 2 * depth, "", run,
                   state[0] == 'c' ? "" : ", but its store entry is gone (removed by gc or by hand)");
        return;
    }
    printf("%*s  last executed in run %s with key %.12s; changed:\n", 2 * depth, "", run, pkey ? pkey : "?");
    json_t *d = hx_cli_diff(p, i, prev);
    for (size_t j = 0; j < json_array_size(d); j++)
        printf("%*s    %s\n", 2 * depth, "", json_string_value(json_array_get(d, j)));
    json_decref(d);
    json_t *pin = json_object_get(prev, "inputs");
    for (int j = 0; j < in->n_inputs; j++) {
        const char *old = json_string_value(json_object_get(pin, in->roles[j]));
        int src = in->input_inst[j];
        if (old && strcmp(old, p->inst[src].key)) explain(p, states, src, depth + 2, seen);
    }
}

int cmd_why(hx_cli *c)
{
    hx_cli_planned v;
    hx_cli_plan_open(c, &v);
    int *insts = hx_plan_stage_instances(&v.p, c->args[1]);
    if (!insts) {
        json_t *names = json_array();
        for (int s = 0; s < v.p.n_stages; s++) json_array_append_new(names, json_string(v.p.stage_names[s]));
        die(HX_EXIT_USAGE, "hx why: no stage '%s' in %s%s", c->args[1], c->recipe, hx_suggest_hint(c->args[1], names));
    }
    int *seen = xcalloc((size_t)v.p.n + 1, sizeof *seen);
    for (int k = 0; insts[k] >= 0; k++) explain(&v.p, v.states, insts[k], 0, seen);
    free(seen);
    free(insts);
    hx_cli_plan_close(&v);
    return 0;
}
