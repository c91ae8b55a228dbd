/* runsrc.c - run references and the store as the data source of hx report / hx diff (see runsrc.h). */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/recipe.h"
#include "interp/runsrc.h"
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

/* ---- stage and model references ---- */

/* An axis value of a run record against the text of a reference: strings as text, numbers by value. */
static int axis_value_is(const json_t *v, const char *text)
{
    if (json_is_string(v)) return !strcmp(json_string_value(v), text);
    if (json_is_number(v)) {
        char *end;
        double d = strtod(text, &end);
        return *text && !*end && d == json_number_value(v);
    }
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY); /* true, false, null, lists */
    int same = d && !strcmp(d, text);
    free(d);
    return same;
}

/* "stage[a=1,b=x]" (or "stage" without axes), xmalloc'd. */
static char *instance_label(const json_t *e)
{
    char *s = xstrfmt("%s", json_string_value(json_object_get(e, "stage")));
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach(json_object_get(e, "axes"), k, v) {
        char *val = json_is_string(v) ? xstrdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *t = xstrfmt("%s%s%s=%s", s, first ? "[" : ",", k, val);
        free(val);
        free(s);
        s = t;
        first = 0;
    }
    if (!first) {
        char *t = xstrfmt("%s]", s);
        free(s);
        s = t;
    }
    return s;
}

/* "[a=1,b=x]" -> {"a": "1", "b": "x"}; NULL + error() on a malformed list. */
static json_t *parse_axes(const char *ref, const char *br)
{
    size_t n = strlen(br);
    if (br[n - 1] != ']')
        return (void)error("'%s': the axes end with ']': RUN:STAGE[axis=value,...]", ref), NULL;
    json_t *axes = json_object();
    char *body = xstrdup(br + 1), *save = NULL;
    body[n - 2] = 0;
    for (char *kv = strtok_r(body, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv || !eq[1]) {
            error("'%s': '%s' is not axis=value", ref, kv);
            json_decref(axes);
            free(body);
            return NULL;
        }
        *eq = 0;
        json_object_set_new(axes, kv, json_string(eq + 1));
    }
    free(body);
    return axes;
}

json_t *hx_runsrc_stage(const hx_store *s, const char *ref)
{
    const char *colon = strchr(ref, ':');
    if (!colon) return (void)error("'%s' is not RUN:STAGE[axis=value,...]", ref), NULL;
    const char *st = colon + 1, *br = strchr(st, '[');
    size_t run_len = (size_t)(colon - ref), st_len = br ? (size_t)(br - st) : strlen(st);
    char *run_ref = run_len ? xstrfmt("%.*s", (int)run_len, ref) : xstrdup("latest");
    char *stage = xstrfmt("%.*s", (int)st_len, st), *id = NULL;
    json_t *want = NULL, *run = NULL, *found = NULL;
    if (!*stage) {
        error("'%s' names no stage: RUN:STAGE[axis=value,...]", ref);
        goto out;
    }
    if (br && !(want = parse_axes(ref, br))) goto out;
    if (strcmp(run_ref, "latest")) {
        json_t *ids = hx_store_list_runs(s);
        id = rp_resolve_run(ids, run_ref);
        json_decref(ids);
        if (!id) goto out;
    }
    if (!(run = hx_store_read_run(s, id ? id : run_ref))) goto out;
    const char *run_id = json_string_value(json_object_get(run, "run_id"));
    json_t *stages = json_object_get(run, "stages"), *names = json_array(), *e;
    json_t *matches = json_array();
    json_t *axis_names = json_object(); /* every axis of the stage's instances */
    const char *unknown = NULL;          /* an axis of the reference that no instance has */
    size_t i;
    json_array_foreach(stages, i, e) {
        const char *nm = json_string_value(json_object_get(e, "stage"));
        if (!nm) continue;
        int seen = 0;
        for (size_t j = 0; j < json_array_size(names) && !seen; j++)
            seen = !strcmp(json_string_value(json_array_get(names, j)), nm);
        if (!seen) json_array_append_new(names, json_string(nm));
        if (strcmp(nm, stage)) continue;
        const char *k;
        json_t *v, *axes = json_object_get(e, "axes");
        int ok = 1;
        json_object_update(axis_names, axes);
        json_object_foreach(want, k, v) {
            json_t *have = json_object_get(axes, k);
            ok &= have && axis_value_is(have, json_string_value(v));
        }
        if (ok) json_array_append(matches, e);
    }
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
        if (!unknown && !json_object_get(axis_names, k)) unknown = k;
    size_t nm = json_array_size(matches);
    if (nm == 1) {
        found = json_incref(json_array_get(matches, 0));
    } else {
        char *list = xstrdup(""); /* the stage's instances, or the run's stages */
        json_array_foreach(stages, i, e) {
            const char *nm_e = json_string_value(json_object_get(e, "stage"));
            if (!nm_e || strcmp(nm_e, stage)) continue;
            char *lab = instance_label(e), *t = xstrfmt("%s%s%s", list, *list ? ", " : "", lab);
            free(lab);
            free(list);
            list = t;
        }
        if (!*list) {
            json_array_foreach(names, i, e) {
                char *t = xstrfmt("%s%s%s", list, *list ? ", " : "", json_string_value(e));
                free(list);
                list = t;
            }
            error("run %s has no stage '%s'%s; its stages: %s", run_id, stage, hx_suggest_hint(stage, names), list);
        } else if (unknown)
            error("stage '%s' of run %s has no axis '%s'%s; its instances: %s", stage, run_id, unknown,
                  hx_suggest_hint(unknown, axis_names), list);
        else if (nm == 0)
            error("no instance of stage '%s' in run %s has %s; its instances: %s", stage, run_id, br, list);
        else
            error("stage '%s' of run %s has %zu instances (%s): name one with [axis=value,...]", stage, run_id, nm,
                  list);
        free(list);
    }
    json_decref(names);
    json_decref(matches);
    json_decref(axis_names);
out:
    json_decref(want);
    json_decref(run);
    free(run_ref);
    free(stage);
    free(id);
    return found;
}

char *hx_runsrc_model_dir(const char *ref, const char *store_dir, const char *cmd)
{
    static const char forms[] =
        "a model is a checkpoint directory, RUN:STAGE[axis=value,...] (RUN: a run id, a unique prefix or latest;\n"
        "  e.g. latest:finetune[masking=completion_only]) or a store key prefix (4+ hex digits; see hx show RUN)";
    if (hx_is_dir(ref)) return xstrdup(ref);
    size_t n = strlen(ref);
    int stage_ref = strchr(ref, ':') != NULL, key_ref = n >= 4 && n <= 64 && strspn(ref, "0123456789abcdef") == n;
    if (!stage_ref && !key_ref) die(HX_EXIT_USAGE, "hx %s: '%s' is not a directory\n  %s", cmd, ref, forms);
    if (!hx_is_dir(store_dir))
        die(HX_EXIT_USAGE, "hx %s: '%s' is not a directory, and there is no store at %s to look it up in (--store DIR "
                           "or HX_STORE)\n  %s", cmd, ref, store_dir, forms);
    hx_store s;
    if (hx_store_open(&s, store_dir) < 0) die(HX_EXIT_STORE, "hx %s: %s", cmd, hx_last_error());
    char *key = NULL;
    if (stage_ref) {
        json_t *e = hx_runsrc_stage(&s, ref);
        if (!e) die(HX_EXIT_USAGE, "hx %s: %s\n  %s", cmd, hx_last_error(), forms);
        key = xstrdup(json_string_value(json_object_get(e, "key")) ? json_string_value(json_object_get(e, "key")) : "");
        json_decref(e);
    } else if (!(key = hx_store_find_key(&s, ref)))
        die(HX_EXIT_USAGE, "hx %s: %s\n  %s", cmd, hx_last_error(), forms);
    if (!hx_store_has(&s, key))
        die(HX_EXIT_STORE, "hx %s: %s is store entry %.12s, which is not in %s (removed by hx gc, or the stage did not "
                           "finish)", cmd, ref, key, s.root);
    char *dir = hx_store_entry_dir(&s, key), *cfg = hx_path_join(dir, "config.json");
    if (!hx_file_exists(cfg))
        die(HX_EXIT_USAGE, "hx %s: %s (store entry %.12s) is not a model: no config.json in %s (models come from "
                           "pretrain, convert, align, distill and finetune stages)", cmd, ref, key, dir);
    free(cfg);
    free(key);
    hx_store_release(&s);
    return dir;
}
