/* cmd_dag.c - `hx dag RECIPE`: the plan as Graphviz dot, nodes coloured by cache state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"

static void dot_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if (*s == '\n') fputs("\\n", stdout);
        else putchar(*s);
    }
    putchar('"');
}

int cmd_dag(int argc, char **argv)
{
    hx_cli c;
    hx_cli_parse(&c, argc, argv, "S store strict", 1, 1);
    hx_recipe r;
    hx_plan p;
    hx_cli_load(&c, &r, &p);
    hx_store s;
    hx_cli_open_store(&c, &s);
    json_t *states = hx_cli_plan_states(&p, &s);
    printf("digraph ");
    dot_string(r.name);
    printf(" {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n");
    for (int i = 0; i < p.n; i++) {
        const hx_instance *in = &p.inst[i];
        const char *state = json_string_value(json_object_get(json_array_get(states, (size_t)i), "state"));
        const char *color = !strcmp(state, "cached") ? "palegreen" : !strcmp(state, "stale") ? "orange" : "lightblue";
        char *label = hx_plan_axes_label(in->axes);
        char *text = xstrfmt("%s\n%s%s%.12s\n%s", in->stage_name, label, *label ? "\n" : "", in->key, state);
        printf("  i%d [label=", i);
        dot_string(text);
        printf(", fillcolor=%s];\n", color);
        free(text);
        free(label);
    }
    for (int i = 0; i < p.n; i++)
        for (int j = 0; j < p.inst[i].n_inputs; j++) {
            printf("  i%d -> i%d [label=", p.inst[i].input_inst[j], i);
            dot_string(p.inst[i].roles[j]);
            printf("];\n");
        }
    printf("}\n");
    json_decref(states);
    hx_plan_release(&p);
    hx_recipe_release(&r);
    hx_store_release(&s);
    hx_cli_release(&c);
    return 0;
}
