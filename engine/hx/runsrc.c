/* runsrc.c - run references and the store as the data source of hx report / hx diff (see runsrc.h). */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/runsrc.h"
#include "evalsuite/metrics.h"

static json_t *store_load(void *ud, const char *key, const char *file)
{
    const hx_store *s = ud;
    if (!hx_store_has(s, key)) {
        error("store entry %.12s is not in %s (removed by hx gc, or the stage did not finish)", key, s->root);
        return NULL;
    }
    char *dir = hx_store_entry_dir(s, key), *path = hx_path_join(dir, file);
    json_t *v = NULL;
    size_t n = strlen(file);
    if (n > 6 && !strcmp(file + n - 6, ".jsonl")) {
        if (ev_read_jsonl(path, &v)) v = NULL;
    } else {
        v = hx_read_json(path, 0);
    }
    free(dir);
    free(path);
    return v;
}

rp_source hx_runsrc_source(const hx_store *s)
{
    rp_source src = {store_load, (void *)s};
    return src;
}

json_t *hx_runsrc_open_run(const hx_store *s, const char *ref, const char *cmd)
{
    char *id = NULL;
    if (strcmp(ref, "latest")) {
        json_t *ids = hx_store_list_runs(s);
        id = rp_resolve_run(ids, ref);
        json_decref(ids);
        if (!id) die(HX_EXIT_USAGE, "hx %s: %s in %s", cmd, hx_last_error(), s->root);
    }
    json_t *run = hx_store_read_run(s, id ? id : ref);
    if (!run) die(HX_EXIT_STORE, "hx %s: %s", cmd, hx_last_error());
    free(id);
    return run;
}
