/* store_entry.c - store entries: output digests, read-only trees, checks (fsck), discard, quarantine, atomic commit. */
#include "interp/store_internal.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "base/sort.h"
#include "interp/canon.h"

/* ---- outputs ---- */

static int hash_file(const char *path, char hex[65], int do_sync)
{
    if (hx_sha256_file_hex(path, hex) < 0) return -1;
    if (do_sync) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0) {
            int e = errno;
            if (fd >= 0) close(fd);
            return error("cannot sync '%s': %s", path, strerror(e));
        }
        close(fd);
    }
    return 0;
}


/* Regular files under DIR/REL, relative paths appended to *list; subdirectories synced when do_sync. */
static int list_files(const char *dir, const char *rel, char ***list, size_t *n, size_t *cap, int depth, int do_sync)
{
    char *full = *rel ? hx_path_join(dir, rel) : xstrdup(dir);
    DIR *d = opendir(full);
    if (!d) {
        error("cannot read directory '%s': %s", full, strerror(errno));
        free(full);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!*rel && !strcmp(e->d_name, "manifest.json")) continue;
        char *r = *rel ? xstrfmt("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
        char *p = hx_path_join(dir, r);
        struct stat st;
        if (lstat(p, &st) < 0) rc = error("cannot stat '%s': %s", p, strerror(errno));
        else if (S_ISDIR(st.st_mode)) {
            if (depth > 32) rc = error("'%s': outputs nested too deeply", p);
            else rc = list_files(dir, r, list, n, cap, depth + 1, do_sync);
            free(r);
            r = NULL;
        } else if (S_ISREG(st.st_mode) && !hx_store_rel_ok(r)) {
            rc = error("'%s': not a name an entry may hold (backslash, control characters, or a path over %d bytes)",
                       p, HX_STORE_REL_MAX);
        } else if (S_ISREG(st.st_mode)) {
            if (*n == *cap) *list = xrealloc(*list, (*cap = *cap ? 2 * *cap : 16) * sizeof **list);
            (*list)[(*n)++] = r;
            r = NULL;
        } else {
            rc = error("'%s': a stage's outputs must be regular files and directories", p);
        }
        free(r);
        free(p);
    }
    closedir(d);
    if (rc == 0 && *rel && do_sync) rc = hx_fsync_dir(full);
    free(full);
    return rc;
}

static long long mtime_ns(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Committed outputs are read-only: files 0444, directories 0555 (TOP itself too when top is set). */
static int seal_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    mode_t mode = flag == FTW_DP || flag == FTW_D ? 0555 : S_ISREG(st->st_mode) ? 0444 : 0;
    if (mode && chmod(path, mode) < 0) return error("cannot make '%s' read-only: %s", path, strerror(errno));
    return 0;
}

static int seal_tree(const char *dir)
{
    return nftw(dir, seal_fn, 32, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

/* Give the owner write permission back on every directory under DIR (so it can be renamed or removed). */
static int unseal_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D && chmod(path, (st->st_mode & 07777) | S_IWUSR) < 0)
        return error("cannot make '%s' writable: %s", path, strerror(errno));
    return 0;
}

static int unseal_tree(const char *dir)
{
    if (!hx_file_exists(dir)) return 0;
    return nftw(dir, unseal_fn, 32, FTW_PHYS) ? -1 : 0;
}

/* Remove a (possibly read-only) entry directory. */
int hx_store_rm_entry(const char *dir)
{
    if (unseal_tree(dir) < 0) return -1;
    return hx_rm_rf(dir);
}

/* The first problem becomes the error message; every problem is appended to LIST (when given). */
void hx_store_problem(json_t *list, int *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    if (!*n) error("%s", msg ? msg : "?");
    if (list) json_array_append_new(list, json_string(msg ? msg : "?"));
    free(msg);
    (*n)++;
}

int hx_store_manifest_key(const json_t *m, char key[65])
{
    const char *kind = json_string_value(json_object_get(m, "kind"));
    json_t *kv = json_object_get(m, "kind_version"), *w = json_object_get(m, "with"), *in = json_object_get(m, "inputs");
    json_t *ext = json_object_get(m, "external");
    if (!kind || !json_is_integer(kv) || !json_is_object(w) || !json_is_object(in) || (ext && !json_is_object(ext)))
        return error("the manifest lacks kind, kind_version, with or inputs");
    return hx_canon_key_ext(kind, (int)json_integer_value(kv), w, in, ext,
                            json_string_value(json_object_get(m, "hx_binary")), key);
}

/* Check KEY's entry; full: re-hash everything, recompute the key, and compare the files on disk with the
 * manifest's list exactly. Returns the number of problems found (each appended to LIST). */
static int check_entry(const hx_store *s, const char *key, int full, json_t *list)
{
    int n = 0;
    char *dir = hx_store_entry_dir(s, key), *mp = hx_store_manifest_path(s, key);
    struct stat mst;
    int mreg = lstat(mp, &mst) == 0 && S_ISREG(mst.st_mode);
    free(mp);
    json_t *m = mreg ? hx_store_manifest(s, key) : NULL;
    if (!mreg) error("%s/manifest.json: missing, or not a regular file", dir);
    if (!m) {
        hx_store_problem(list, &n, "%s", hx_last_error());
        free(dir);
        return n;
    }
    const char *mk = json_string_value(json_object_get(m, "key"));
    if (!mk || strcmp(mk, key)) hx_store_problem(list, &n, "%s/manifest.json: key '%s' is not the entry's key", dir, mk ? mk : "");
    if (full) {
        char k2[65];
        if (hx_store_manifest_key(m, k2) < 0)
            hx_store_problem(list, &n, "%s/manifest.json: %s", dir, hx_last_error());
        else if (strcmp(k2, key))
            hx_store_problem(list, &n, "%s/manifest.json: kind, with, inputs and external hash to %.12s..., not to its key (an "
                    "edited manifest, or a --strict entry made before manifests recorded the binary)", dir, k2);
    }
    json_t *outs = json_object_get(m, "outputs"), *listed = json_object();
    char *realdir = realpath(dir, NULL);
    if (!json_is_array(outs)) hx_store_problem(list, &n, "%s/manifest.json: no 'outputs' list", dir);
    for (size_t i = 0; i < json_array_size(outs); i++) {
        json_t *o = json_array_get(outs, i);
        const char *rel = json_string_value(json_object_get(o, "path"));
        const char *want = json_string_value(json_object_get(o, "sha256"));
        json_t *size = json_object_get(o, "size");
        if (!rel || !want || !hx_store_is_key(want) || !json_is_integer(size)) {
            hx_store_problem(list, &n, "%s/manifest.json: output %zu has no path, sha256 or size", dir, i);
            continue;
        }
        if (!hx_store_rel_ok(rel) || !strcmp(rel, "manifest.json")) {
            hx_store_problem(list, &n, "%s/manifest.json: output path '%s' is not a file inside the entry", dir, rel);
            continue;
        }
        if (json_object_get(listed, rel)) {
            hx_store_problem(list, &n, "%s/manifest.json: output '%s' is listed twice", dir, rel);
            continue;
        }
        json_object_set_new(listed, rel, json_true());
        char *p = hx_path_join(dir, rel), *real = realpath(p, NULL);
        struct stat st;
        size_t dl = realdir ? strlen(realdir) : 0;
        if (lstat(p, &st) < 0) hx_store_problem(list, &n, "%s: missing (recorded in the manifest)", p);
        else if (!S_ISREG(st.st_mode)) hx_store_problem(list, &n, "%s: not a regular file", p);
        else if (!real || !realdir || strncmp(real, realdir, dl) || real[dl] != '/')
            hx_store_problem(list, &n, "%s: resolves outside the entry (a symbolic link on the way)", p);
        else if ((long long)st.st_size != json_integer_value(size))
            hx_store_problem(list, &n, "%s: size %lld, the manifest recorded %lld", p, (long long)st.st_size,
                    (long long)json_integer_value(size));
        else if (full || mtime_ns(&st) != json_integer_value(json_object_get(o, "mtime_ns"))) {
            char hex[65];
            if (hash_file(p, hex, 0) < 0) hx_store_problem(list, &n, "%s", hx_last_error());
            else if (strcmp(hex, want)) hx_store_problem(list, &n, "%s: sha256 %.12s..., the manifest recorded %.12s...", p, hex, want);
        }
        free(real);
        free(p);
    }
    if (full) {
        char **files = NULL;
        size_t nf = 0, cap = 0;
        if (list_files(dir, "", &files, &nf, &cap, 0, 0) < 0) hx_store_problem(list, &n, "%s", hx_last_error());
        for (size_t i = 0; i < nf; i++) {
            if (!json_object_get(listed, files[i]))
                hx_store_problem(list, &n, "%s/%s: a file the manifest does not list", dir, files[i]);
            free(files[i]);
        }
        free(files);
    }
    free(realdir);
    json_decref(listed);
    json_decref(m);
    free(dir);
    return n;
}

int hx_store_verify(const hx_store *s, const char *key, int full)
{
    return check_entry(s, key, full, NULL) ? 1 : 0;
}

int hx_store_check(const hx_store *s, const char *key, json_t *problems)
{
    if (!hx_store_is_key(key)) return error("'%s' is not a store key (64 hex digits)", key);
    return check_entry(s, key, 1, problems) ? 1 : 0;
}

int hx_store_content_digest(const hx_store *s, const char *key, char hex[65])
{
    json_t *m = hx_store_manifest(s, key);
    if (!m) return -1;
    json_t *outs = json_object_get(m, "outputs"), *o, *pairs = json_array();
    size_t i;
    json_array_foreach(outs, i, o) json_array_append_new(pairs, json_pack("[O,O]", json_object_get(o, "path"),
                                                                          json_object_get(o, "sha256")));
    char *text = hx_canon_dump(pairs);
    json_decref(pairs);
    json_decref(m);
    if (!text) return error_prefix("content digest of %.12s", key);
    hx_sha256_hex(text, strlen(text), hex);
    free(text);
    return 0;
}

int hx_store_discard(const hx_store *s, const char *key)
{
    hx_lock pin;
    int busy = hx_store_pin_exclusive(s, key, &pin);
    if (busy) return busy < 0 ? -1 : error("store entry %.12s is being read by a running stage; run again when it ends", key);
    char *dir = hx_store_entry_dir(s, key);
    char *aside = xstrfmt("%s/partial/%s.corrupt-%ld", s->root, key, (long)getpid());
    int rc = 0;
    /* Rename first: the entry stops being "done" atomically, then the files go. */
    if (unseal_tree(dir) < 0) rc = -1;
    else if (rename(dir, aside) < 0) rc = error("cannot move '%s' aside: %s", dir, strerror(errno));
    else rc = hx_store_rm_entry(aside);
    hx_store_unlock(&pin);
    free(dir);
    free(aside);
    return rc;
}

int hx_store_quarantine(const hx_store *s, const char *key, char **where)
{
    hx_lock pin;
    int busy = hx_store_pin_exclusive(s, key, &pin);
    if (busy) return busy < 0 ? -1 : error("store entry %.12s is being read by a running stage; repair it when it ends", key);
    char *dir = hx_store_entry_dir(s, key);
    char *dest = xstrfmt("%s/quarantine/%s.%ld-%ld", s->root, key, (long)time(NULL), (long)getpid());
    char *q = xstrfmt("%s/quarantine", s->root);
    int rc = 0;
    /* Only the top directory needs write permission to be moved (its ".." changes). */
    if (hx_mkdir_p(q) < 0) rc = -1;
    else if (chmod(dir, 0755) < 0 || rename(dir, dest) < 0)
        rc = error("cannot move '%s' to '%s': %s", dir, dest, strerror(errno));
    else rc = hx_fsync_dir(q);
    hx_store_unlock(&pin);
    if (rc == 0 && where) *where = xstrdup(dest);
    free(q);
    free(dir);
    free(dest);
    return rc;
}

int hx_store_begin(const hx_store *s, const char *key, char **out_dir, char **ckpt_dir)
{
    *out_dir = xstrfmt("%s/partial/%s/out", s->root, key);
    *ckpt_dir = xstrfmt("%s/partial/%s/ckpt", s->root, key);
    /* A manifest left by a commit killed before its rename is not trusted: it is rewritten. */
    char *m = hx_path_join(*out_dir, "manifest.json");
    unlink(m);
    free(m);
    if (hx_mkdir_p(*out_dir) < 0 || hx_mkdir_p(*ckpt_dir) < 0) {
        free(*out_dir);
        free(*ckpt_dir);
        *out_dir = *ckpt_dir = NULL;
        return -1;
    }
    return 0;
}

/* Make the tree at FROM read-only and rename it to TO. The top directory stays writable until it has moved
 * (moving a directory to another parent rewrites its ".."). */
static int move_sealed(const char *from, const char *to)
{
    if (seal_tree(from) < 0) return -1;
    if (chmod(from, 0755) < 0 || rename(from, to) < 0) return error("cannot move '%s' to '%s': %s", from, to, strerror(errno));
    if (chmod(to, 0555) < 0) return error("cannot make '%s' read-only: %s", to, strerror(errno));
    return 0;
}

int hx_store_commit(const hx_store *s, const char *key, json_t *manifest)
{
    char *out = xstrfmt("%s/partial/%s/out", s->root, key);
    char *work = xstrfmt("%s/partial/%s", s->root, key);
    char *shard = xstrfmt("%s/store/%.2s", s->root, key);
    char *dest = hx_store_entry_dir(s, key);
    char **files = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    char *mp = hx_path_join(out, "manifest.json");
    if (hx_file_exists(mp)) {
        error("%s: a stage may not write 'manifest.json' (the store's name for its record)", out);
        goto done;
    }
    if (list_files(out, "", &files, &n, &cap, 0, 1) < 0) goto done;
    if (n) qsort(files, n, sizeof *files, hx_cmp_str); /* qsort(NULL, 0) is undefined */
    json_t *outs = json_array();
    json_object_set_new(manifest, "outputs", outs);
    for (size_t i = 0; i < n; i++) {
        char *p = hx_path_join(out, files[i]);
        struct stat st;
        char hex[65];
        int bad = stat(p, &st) < 0 ? error("cannot stat '%s': %s", p, strerror(errno)) : hash_file(p, hex, 1);
        free(p);
        if (bad) goto done;
        json_array_append_new(outs, json_pack("{s:s,s:I,s:I,s:s}", "path", files[i], "size", (json_int_t)st.st_size,
                                              "mtime_ns", (json_int_t)mtime_ns(&st), "sha256", hex));
    }
    char *text = json_dumps(manifest, JSON_INDENT(2) | JSON_SORT_KEYS);
    size_t tl = strlen(text);
    text = xrealloc(text, tl + 2);
    text[tl] = '\n';
    text[tl + 1] = 0;
    int w = hx_write_file(mp, text, tl + 1);
    free(text);
    if (w < 0 || hx_fsync_dir(out) < 0) goto done;
    const char *pause = getenv("HX_TEST_COMMIT_SLEEP");
    if (pause && atof(pause) > 0) usleep((useconds_t)(atof(pause) * 1e6));
    if (hx_mkdir_p(shard) < 0) goto done;
    if (hx_is_dir(dest)) {
        /* An entry directory without a manifest is debris (not done by definition): replace it. */
        char *m = hx_store_manifest_path(s, key);
        int has = hx_file_exists(m);
        free(m);
        if (has) {
            error("store entry %s appeared while this process held its lock", key);
            goto done;
        }
        if (hx_store_rm_entry(dest) < 0) goto done;
    }
    if (move_sealed(out, dest) < 0) goto done;
    /* The entry is in place: its work directory goes even when the sync fails (which is still reported). */
    int synced = hx_fsync_dir(shard);
    rc = synced < 0 ? (hx_rm_rf(work), -1) : hx_rm_rf(work);
done:
    for (size_t i = 0; i < n; i++) free(files[i]);
    free(files);
    free(mp);
    free(out);
    free(work);
    free(shard);
    free(dest);
    return rc;
}

int hx_store_adopt(const hx_store *s, const char *key, const char *dir)
{
    if (!hx_store_is_key(key)) return error("'%s' is not a store key (64 hex digits)", key);
    char *shard = xstrfmt("%s/store/%.2s", s->root, key);
    char *dest = hx_store_entry_dir(s, key);
    char *work = xstrfmt("%s/partial/%s", s->root, key);
    int rc = -1;
    if (hx_fsync_dir(dir) < 0 || hx_mkdir_p(shard) < 0) goto done;
    if (hx_is_dir(dest)) {
        /* Same rule as hx_store_commit: a directory without a manifest is debris. */
        if (hx_store_has(s, key)) {
            error("store entry %s appeared while this process held its lock", key);
            goto done;
        }
        if (hx_store_rm_entry(dest) < 0) goto done;
    }
    if (move_sealed(dir, dest) < 0 || hx_fsync_dir(shard) < 0) goto done;
    /* Work toward this key (a killed run's checkpoints) is moot now. */
    rc = hx_is_dir(work) ? hx_rm_rf(work) : 0;
done:
    free(shard);
    free(dest);
    free(work);
    return rc;
}
