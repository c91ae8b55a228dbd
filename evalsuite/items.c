/* items.c - reading an eval's benchmark items from bench/<task>.jsonl of its data and bench inputs. */
#include <dirent.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/items.h"
#include "evalsuite/lmeval.h"
#include "evalsuite/metrics.h"
#include "evalsuite/prompt.h"

static int want(json_t *list, const char *name, int glob)
{
    if (!json_array_size(list)) return 1;
    size_t i;
    json_t *g;
    json_array_foreach(list, i, g)
        if (glob ? !fnmatch(json_string_value(g), name, 0) : !strcmp(json_string_value(g), name)) return 1;
    return 0;
}

static int cmp_path(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Task files of every directory's bench/, filtered by `tasks`, sorted by task name: xmalloc'd paths. */
static int list_tasks(const char *const *dirs, const char *const *roles, int n_dirs, json_t *globs, const char *who,
                      char ***paths, int *n)
{
    char **v = NULL, *avail = xstrdup("");
    int k = 0, rc = 0;
    json_t *seen = json_object();
    for (int d = 0; d < n_dirs && !rc; d++) {
        char *bench = hx_path_join(dirs[d], "bench");
        DIR *dh = opendir(bench);
        if (!dh) rc = error("stage '%s': %s: no bench/ directory in the `%s` input", who, bench, roles[d]);
        for (struct dirent *e; !rc && (e = readdir(dh));) {
            size_t len = strlen(e->d_name);
            if (len <= 6 || strcmp(e->d_name + len - 6, ".jsonl")) continue;
            char *task = xstrfmt("%.*s", (int)(len - 6), e->d_name);
            char *a = xstrfmt("%s%s%s", avail, *avail ? ", " : "", task);
            free(avail);
            avail = a;
            if (json_object_get(seen, task))
                rc = error("stage '%s': the task '%s' is in two inputs, `%s` and `%s`; rename one benchmark file", who,
                           task, json_string_value(json_object_get(seen, task)), roles[d]);
            else if (want(globs, task, 1)) {
                v = xrealloc(v, (size_t)(k + 1) * sizeof *v);
                v[k++] = xstrfmt("%s/%s", bench, e->d_name);
            }
            json_object_set_new(seen, task, json_string(roles[d]));
            free(task);
        }
        if (dh) closedir(dh);
        free(bench);
    }
    json_decref(seen);
    if (!rc && !k)
        rc = error("stage '%s': no bench task matches `tasks`; the inputs have: %s", who, *avail ? avail : "none");
    free(avail);
    if (rc) {
        for (int i = 0; i < k; i++) free(v[i]);
        free(v);
        return -1;
    }
    /* sorted by task name (the file's base name), whichever input it comes from */
    char **keyed = xmalloc((size_t)k * sizeof *keyed);
    for (int i = 0; i < k; i++) {
        const char *base = strrchr(v[i], '/') + 1;
        keyed[i] = xstrfmt("%.*s\t%s", (int)(strlen(base) - 6), base, v[i]); /* "\t" sorts before any name byte */
        free(v[i]);
    }
    qsort(keyed, (size_t)k, sizeof *keyed, cmp_path);
    for (int i = 0; i < k; i++) {
        v[i] = xstrdup(strchr(keyed[i], '\t') + 1);
        free(keyed[i]);
    }
    free(keyed);
    *paths = v;
    *n = k;
    return 0;
}

static int parse_all(json_t *docs, struct ev_item **out)
{
    size_t n = json_array_size(docs);
    ev_item *v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        if (ev_item_parse(json_array_get(docs, i), "", &v[i])) BUG("items: item %zu parsed once, not twice", i);
    *out = v;
    return (int)n;
}

int ev_items_load(ev_itemset *s, const char *const *dirs, const char *const *roles, int n_dirs, json_t *tasks,
                  json_t *splits, int limit, const char *who)
{
    memset(s, 0, sizeof *s);
    char **paths = NULL;
    int np = 0, rc = 0;
    if (list_tasks(dirs, roles, n_dirs, tasks, who, &paths, &np)) return -1;
    s->all_docs = json_array();
    s->sel_docs = json_array();
    s->n_original = json_object();
    for (int t = 0; t < np && !rc; t++) {
        json_t *items;
        if (ev_read_jsonl(paths[t], &items)) {
            rc = -1;
            break;
        }
        json_t *counts = json_object();
        size_t i;
        json_t *o;
        json_array_foreach(items, i, o) {
            char *where = xstrfmt("%s:%zu", paths[t], i + 1);
            ev_item it;
            rc = ev_item_parse(o, where, &it);
            free(where);
            if (rc) break;
            json_array_append(s->all_docs, o);
            char *lm = ev_lm_task(&it);
            json_int_t had = json_integer_value(json_object_get(s->n_original, lm));
            json_object_set_new(s->n_original, lm, json_integer(had + 1));
            free(lm);
            json_int_t have = json_integer_value(json_object_get(counts, it.split));
            if (want(splits, it.split, 0) && (!limit || have < limit)) {
                json_array_append(s->sel_docs, o);
                json_object_set_new(counts, it.split, json_integer(have + 1));
            }
            ev_item_release(&it);
        }
        json_decref(counts);
        json_decref(items);
    }
    for (int t = 0; t < np; t++) free(paths[t]);
    free(paths);
    if (!rc && !json_array_size(s->sel_docs)) rc = error("stage '%s': no items left after `splits` and `limit`", who);
    if (rc) {
        ev_items_release(s);
        return -1;
    }
    s->n_all = parse_all(s->all_docs, &s->all);
    s->n = parse_all(s->sel_docs, &s->it);
    return 0;
}

void ev_items_release(ev_itemset *s)
{
    for (int i = 0; i < s->n_all; i++) ev_item_release(&s->all[i]);
    for (int i = 0; i < s->n; i++) ev_item_release(&s->it[i]);
    free(s->all);
    free(s->it);
    json_decref(s->all_docs);
    json_decref(s->sel_docs);
    json_decref(s->n_original);
    memset(s, 0, sizeof *s);
}
