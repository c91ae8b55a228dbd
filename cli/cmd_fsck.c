/* cmd_fsck.c - `hx fsck [KEY...] [--repair]`: check store entries and run records in full; move bad ones to quarantine/. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"

/* Every name under store/<xx>/ (entries, and whatever else is there: a problem of its own). */
static json_t *all_entries(const hx_store *s, json_t *problems)
{
    json_t *keys = json_array();
    char *sdir = xstrfmt("%s/store", s->root);
    DIR *d = opendir(sdir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *shard = hx_path_join(sdir, e->d_name);
        DIR *d2 = strlen(e->d_name) == 2 ? opendir(shard) : NULL;
        struct dirent *e2;
        if (!d2) json_array_append_new(problems, json_sprintf("%s: not a store shard (store/<k[0:2]>/)", shard));
        while (d2 && (e2 = readdir(d2))) {
            if (e2->d_name[0] == '.') continue;
            size_t n = strlen(e2->d_name);
            if (n == 64 && strspn(e2->d_name, "0123456789abcdef") == 64 && !strncmp(e2->d_name, e->d_name, 2))
                json_array_append_new(keys, json_string(e2->d_name));
            else
                json_array_append_new(problems, json_sprintf("%s/%s: not a store entry (store/<k[0:2]>/<key>)", shard,
                                                             e2->d_name));
        }
        if (d2) closedir(d2);
        free(shard);
    }
    if (d) closedir(d);
    free(sdir);
    return keys;
}

int cmd_fsck(hx_cli *c)
{
    hx_store s;
    hx_cli_open_store(c, &s);
    json_t *other = json_array(), *keys, *bad = json_array(), *moved = json_array(), *busy = json_array();
    if (c->n_args) {
        keys = json_array();
        for (int i = 0; i < c->n_args; i++) {
            char *k = hx_store_find_key(&s, c->args[i]);
            if (!k) die(HX_EXIT_USAGE, "hx fsck: %s", hx_last_error());
            json_array_append_new(keys, json_string(k));
            free(k);
        }
    } else {
        keys = all_entries(&s, other);
    }
    size_t i;
    json_t *kv;
    json_array_foreach(keys, i, kv) {
        const char *key = json_string_value(kv);
        hx_lock lock;
        int r = hx_store_lock(&s, key, 0, NULL, &lock);
        if (r < 0) die(HX_EXIT_STORE, "hx fsck: %s", hx_last_error());
        if (r > 0) { /* a run is executing or checking it right now */
            json_array_append_new(busy, json_string(key));
            continue;
        }
        json_t *problems = json_array();
        if (hx_store_check(&s, key, problems) != 0) {
            json_t *m = hx_store_manifest(&s, key);
            const char *stage = json_string_value(json_object_get(m, "stage"));
            json_array_append_new(bad, json_pack("{s:s,s:s,s:O}", "key", key, "stage", stage ? stage : "?", "problems",
                                                 problems));
            json_decref(m);
            char *where = NULL;
            if (c->repair) {
                if (hx_store_quarantine(&s, key, &where) == 0)
                    json_array_append_new(moved, json_pack("{s:s,s:s}", "key", key, "to", where));
                else
                    json_array_append_new(other, json_sprintf("%.12s: cannot repair: %s", key, hx_last_error()));
            }
            free(where);
        }
        json_decref(problems);
        hx_store_unlock(&lock);
    }
    json_t *run_problems = json_array(), *bad_runs = json_array();
    if (!c->n_args) {
        hx_store_check_runs(&s, run_problems, bad_runs);
        json_array_foreach(bad_runs, i, kv) {
            char *where = NULL;
            if (!c->repair) continue;
            if (hx_store_quarantine_run(&s, json_string_value(kv), &where) == 0)
                json_array_append_new(moved, json_pack("{s:O,s:s}", "run", kv, "to", where));
            else
                json_array_append_new(other, json_sprintf("run %s: cannot repair: %s", json_string_value(kv), hx_last_error()));
            free(where);
        }
    }
    int n_problems = (int)(json_array_size(bad) + json_array_size(run_problems) + json_array_size(other));
    if (c->json) {
        json_t *out = json_pack("{s:I,s:O,s:O,s:O,s:O,s:O,s:b}", "entries_checked", (json_int_t)json_array_size(keys),
                                "bad_entries", bad, "run_problems", run_problems, "other", other, "busy", busy,
                                "quarantined", moved, "ok", !n_problems);
        char *t = json_dumps(out, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
        json_decref(out);
    } else {
        json_t *b;
        json_array_foreach(bad, i, b) {
            size_t j;
            json_t *pr;
            json_array_foreach(json_object_get(b, "problems"), j, pr)
                printf("bad      %.12s  %-16s %s\n", json_string_value(json_object_get(b, "key")),
                       json_string_value(json_object_get(b, "stage")), json_string_value(pr));
        }
        json_array_foreach(run_problems, i, b) printf("bad run  %s\n", json_string_value(b));
        json_array_foreach(other, i, b) printf("problem  %s\n", json_string_value(b));
        json_array_foreach(busy, i, b) printf("busy     %.12s  in use by a running hx; not checked\n", json_string_value(b));
        json_array_foreach(moved, i, b)
            printf("moved    %s -> %s\n",
                   json_string_value(json_object_get(b, "key")) ?: json_string_value(json_object_get(b, "run")),
                   json_string_value(json_object_get(b, "to")));
        printf("%zu entr%s checked: %zu bad; %zu run record problem%s; %zu other problem%s%s\n", json_array_size(keys),
               json_array_size(keys) == 1 ? "y" : "ies", json_array_size(bad), json_array_size(run_problems),
               json_array_size(run_problems) == 1 ? "" : "s", json_array_size(other),
               json_array_size(other) == 1 ? "" : "s",
               n_problems && !c->repair ? "\nhint: hx fsck --repair moves bad entries and records to quarantine/ "
                                         "(nothing is deleted); hx run executes missing entries again"
                                       : "");
    }
    json_decref(keys);
    json_decref(bad);
    json_decref(moved);
    json_decref(busy);
    json_decref(other);
    json_decref(run_problems);
    json_decref(bad_runs);
    hx_store_release(&s);
    return n_problems ? HX_EXIT_STORE : HX_EXIT_OK;
}
