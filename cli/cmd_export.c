/* cmd_export.c - `hx export RUN|KEY... -o FILE.tar.zst`: store entries and run records as one archive (archive.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "interp/archive.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "interp/runsrc.h"
#include "reports/report.h"

/* A run (id, unique prefix, latest) or a key (unique prefix of at least 4 hex digits): returns 1 for a
 * run, 0 for a key, *out xmalloc'd. A ref with a dash is a run; a hex ref is a key, else a run prefix. */
static int resolve(const hx_store *s, const char *ref, char **out)
{
    if (strcmp(ref, "latest") && !strchr(ref, '-')) {
        *out = hx_store_find_key(s, ref);
        if (*out) return 0;
        char *why = xstrdup(hx_last_error());
        json_t *ids = hx_store_list_runs(s);
        *out = rp_resolve_run(ids, ref);
        json_decref(ids);
        if (!*out) die(HX_EXIT_USAGE, "hx export: %s", why);
        free(why);
        return 1;
    }
    json_t *run = hx_runsrc_open_run(s, ref, "export");
    const char *id = json_string_value(json_object_get(run, "run_id"));
    if (!id) die(HX_EXIT_STORE, "hx export: the run record of '%s' has no run_id", ref);
    *out = xstrdup(id);
    json_decref(run);
    return 1;
}

int cmd_export(hx_cli *c)
{
    const char *out = hx_cli_str(c, "output");
    int with_inputs = hx_cli_given(c, "with-inputs");
    const char *kinds = hx_cli_str(c, "kinds");
    if (!out || !*out) die(HX_EXIT_USAGE, "hx export: -o FILE.tar.zst is required; see 'hx export --help'");
    /* The archive is renamed over the target: only a regular file may be replaced (as root, a rename
     * over /dev/full replaces the device node; over a symlink, the link). */
    struct stat st;
    if (lstat(out, &st) == 0 && !S_ISREG(st.st_mode))
        die(HX_EXIT_USAGE, "hx export: '%s' exists and is not a regular file (%s); give a new file name or a regular "
            "file to replace", out, S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symbolic link"
            : "a device or other special file");
    hx_store s;
    hx_cli_open_store(c, &s);
    char **runs = xcalloc((size_t)c->n_args + 1, sizeof *runs), **keys = xcalloc((size_t)c->n_args + 1, sizeof *keys);
    int nr = 0, nk = 0;
    for (int i = 0; i < c->n_args; i++) {
        char *r;
        if (resolve(&s, c->args[i], &r)) runs[nr++] = r;
        else keys[nk++] = r;
    }
    json_t *rep = json_object();
    if (hx_archive_export(&s, (const char *const *)runs, nr, (const char *const *)keys, nk, with_inputs, kinds, out, rep) < 0)
        die(HX_EXIT_STORE, "hx export: %s", hx_last_error());
    if (c->json) {
        json_object_set_new(rep, "file", json_string(out));
        char *t = json_dumps(rep, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
    } else {
        long long n = json_integer_value(json_object_get(rep, "entries")),
                  full = json_integer_value(json_object_get(rep, "with_outputs")),
                  runs_n = json_integer_value(json_object_get(rep, "runs"));
        printf("exported %lld entr%s (%lld with outputs, %lld manifest%s only) and %lld run%s to %s: %.1f KiB "
               "(outputs %.1f KiB)\n",
               n, n == 1 ? "y" : "ies", full, n - full, n - full == 1 ? "" : "s", runs_n, runs_n == 1 ? "" : "s", out,
               json_integer_value(json_object_get(rep, "bytes")) / 1024.0,
               json_integer_value(json_object_get(rep, "output_bytes")) / 1024.0);
    }
    json_decref(rep);
    for (int i = 0; i < nr; i++) free(runs[i]);
    for (int i = 0; i < nk; i++) free(keys[i]);
    free(runs);
    free(keys);
    hx_store_release(&s);
    return 0;
}
