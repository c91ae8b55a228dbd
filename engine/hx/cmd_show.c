/* cmd_show.c - `hx show RUN|KEY`: print a run record or a store entry's manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/cli.h"
#include "engine/hx/commands.h"
#include "engine/hx/slurm.h"

int cmd_show(int argc, char **argv)
{
    hx_cli c;
    hx_cli_parse(&c, argc, argv, "store", 1, 1);
    hx_store s;
    hx_cli_open_store(&c, &s);
    const char *what = c.args[0];
    json_t *v = NULL;
    /* A run id has dashes where a key has hex: YYYYmmdd-HHMMSS-mmmxx. */
    if (!strcmp(what, "latest") || strchr(what, '-')) {
        v = hx_store_read_run(&s, what);
        if (!v) die(HX_EXIT_USAGE, "hx show: %s", hx_last_error());
        /* a Slurm run (--detach) is followed here: its record catches up with its jobs */
        int changed = hx_slurm_refresh(&s, v);
        if (changed < 0) log_warn("hx show: %s", hx_last_error());
        else if (changed && hx_store_update_run(&s, json_string_value(json_object_get(v, "run_id")), v) < 0)
            log_warn("hx show: %s", hx_last_error());
    } else {
        char *key = hx_store_find_key(&s, what);
        if (!key) die(HX_EXIT_USAGE, "hx show: %s", hx_last_error());
        v = hx_store_manifest(&s, key);
        free(key);
        if (!v) die(HX_EXIT_STORE, "hx show: %s", hx_last_error());
    }
    char *t = json_dumps(v, JSON_INDENT(2));
    printf("%s\n", t);
    free(t);
    json_decref(v);
    hx_store_release(&s);
    hx_cli_release(&c);
    return 0;
}
