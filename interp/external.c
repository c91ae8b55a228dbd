/* external.c - content digests of external inputs (stage parameters of type path), cached by stat identity. */
#include "interp/external.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "base/base.h"
#include "base/sort.h"

#define MAX_DEPTH 32 /* also ends a cycle of symbolic links to directories */

static long long ns(struct timespec t) { return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }

/* The cache entry of a file: a JSON record in CACHE_DIR named by the sha256 of its path. */
static char *cache_file(const char *cache_dir, const char *path)
{
    char h[65];
    hx_sha256_hex(path, strlen(path), h);
    return xstrfmt("%s/%s.json", cache_dir, h);
}

static json_t *stat_json(const char *path, const struct stat *st)
{
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "path", path, "size", (json_int_t)st->st_size, "mtime_ns",
                     (json_int_t)ns(st->st_mtim), "ctime_ns", (json_int_t)ns(st->st_ctim), "ino",
                     (json_int_t)st->st_ino, "dev", (json_int_t)st->st_dev);
}

static int file_digest(const char *cache_dir, const char *path, const struct stat *st, char hex[65])
{
    char *cf = cache_dir ? cache_file(cache_dir, path) : NULL;
    json_t *want = stat_json(path, st);
    if (cf) {
        json_t *got = json_load_file(cf, 0, NULL);
        const char *d = json_string_value(json_object_get(got, "sha256"));
        int hit = d && strlen(d) == 64;
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v) hit = hit && json_equal(v, json_object_get(got, k));
        if (hit) memcpy(hex, d, 65);
        json_decref(got);
        if (hit) {
            json_decref(want);
            free(cf);
            return 0;
        }
    }
    int rc = hx_sha256_file_hex(path, hex);
    if (rc == 0 && cf) {
        /* A cache that cannot be written only costs time: hashing again next plan. */
        json_object_set_new(want, "sha256", json_string(hex));
        char *text = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        if (hx_mkdir_p(cache_dir) < 0 || hx_write_file_atomic(cf, text, strlen(text)) < 0)
            log_debug("external digest cache: %s", hx_last_error());
        free(text);
    }
    json_decref(want);
    free(cf);
    return rc;
}

/* "<sha256>  <rel>\n" for every regular file under DIR/REL, appended to SB in path order. */
static int dir_digest(const char *cache_dir, const char *dir, const char *rel, hx_sbuf *sb, int depth)
{
    char *full = *rel ? hx_path_join(dir, rel) : xstrdup(dir);
    if (depth > MAX_DEPTH) {
        error("'%s': directories nested too deeply (or a cycle of symbolic links)", full);
        free(full);
        return -1;
    }
    DIR *d = opendir(full);
    if (!d) {
        error("cannot read directory '%s': %s", full, strerror(errno));
        free(full);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., and hidden files (download caches' metadata) */
        if (n == cap) names = xrealloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, hx_cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *r = *rel ? xstrfmt("%s/%s", rel, names[i]) : xstrdup(names[i]);
        char *p = hx_path_join(dir, r);
        struct stat st;
        char hex[65];
        if (rc == 0) {
            if (stat(p, &st) < 0) rc = error("cannot stat '%s': %s", p, strerror(errno));
            else if (S_ISDIR(st.st_mode)) rc = dir_digest(cache_dir, dir, r, sb, depth + 1);
            else if (!S_ISREG(st.st_mode)) rc = error("'%s': not a regular file or directory", p);
            else if ((rc = file_digest(cache_dir, p, &st, hex)) == 0) hx_sb_printf(sb, "%s  %s\n", hex, r);
        }
        free(p);
        free(r);
        free(names[i]);
    }
    free(names);
    free(full);
    return rc;
}

int hx_external_digest(const char *cache_dir, const char *path, char hex[65])
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return 1;
        return error("cannot stat '%s': %s", path, strerror(errno));
    }
    if (S_ISREG(st.st_mode)) return file_digest(cache_dir, path, &st, hex);
    if (!S_ISDIR(st.st_mode)) return error("'%s': not a regular file or directory", path);
    hx_sbuf sb = {0};
    int rc = dir_digest(cache_dir, path, "", &sb, 0);
    if (rc == 0) hx_sha256_hex(sb.s ? sb.s : "", sb.len, hex);
    hx_sb_free(&sb);
    return rc;
}
