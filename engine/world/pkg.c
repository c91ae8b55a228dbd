/* pkg.c - pinned data packages: find third_party/, verify a .tgz's sha512 against packages.lock, read entries with libarchive. */
#include "engine/world/world.h"
#include "engine/world/world_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int world_third_party_dir(const char *param, char **out)
{
    if (param && *param) {
        if (!hx_is_dir(param)) return error("packages directory '%s' does not exist (parameter third_party)", param);
        *out = xstrdup(param);
        return 0;
    }
    const char *env = getenv("HX_THIRD_PARTY");
    if (env && *env) {
        if (!hx_is_dir(env)) return error("HX_THIRD_PARTY='%s' is not a directory", env);
        *out = xstrdup(env);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        /* build/hx -> ../third_party; build/tests/test_x -> ../../third_party */
        for (int up = 1; up <= 2; up++) {
            char *cand = up == 1 ? xstrfmt("%s/../third_party", exe) : xstrfmt("%s/../../third_party", exe);
            char *lock = hx_path_join(cand, "packages.lock");
            int ok = hx_file_exists(lock);
            free(lock);
            if (ok) {
                *out = cand;
                return 0;
            }
            free(cand);
        }
    }
    if (hx_file_exists("third_party/packages.lock")) {
        *out = xstrdup("third_party");
        return 0;
    }
    return error("cannot find the data packages (third_party/packages.lock)\n"
                 "hint: run `make deps`, or set HX_THIRD_PARTY or the data stage's `third_party` parameter");
}

/* npm's tarball name: @scope/name -> scope-name-version.tgz */
static char *tgz_name(const char *name, const char *version)
{
    if (*name == '@') name++;
    char *s = xstrfmt("%s-%s.tgz", name, version);
    for (char *p = s; *p; p++)
        if (*p == '/') *p = '-';
    return s;
}

static int sha512_base64_file(const char *path, char *out, size_t outsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) return error("cannot open '%s': %s\nhint: run `make deps`", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) BUG("EVP_MD_CTX_new");
    EVP_DigestInit_ex(ctx, EVP_sha512(), NULL);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
    int bad = ferror(f);
    fclose(f);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (bad) return error("cannot read '%s'", path);
    if (outsz < 4 * ((mdlen + 2) / 3) + 1) BUG("base64 buffer too small");
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return 0;
}

int world_pkg_verify(const char *dir, const char *name, char **tgz_path)
{
    char *lock_path = hx_path_join(dir, "packages.lock");
    char *lock;
    size_t len;
    if (hx_read_file(lock_path, &lock, &len) < 0) {
        free(lock_path);
        return error_prefix("packages lock");
    }
    int rc = -1, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(lock, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (w_isspace((unsigned char)*line)) line++;
        if (!*line || *line == '#') continue;
        char pname[256], version[64], integrity[256];
        if (sscanf(line, "%255s %63s %255s", pname, version, integrity) != 3) {
            error("%s: line %d: expected `name version sha512-...`", lock_path, lineno);
            goto out;
        }
        if (strcmp(pname, name)) continue;
        if (strncmp(integrity, "sha512-", 7)) {
            error("%s: line %d: integrity of %s is not sha512-...", lock_path, lineno, name);
            goto out;
        }
        char *file = tgz_name(pname, version);
        char *path = hx_path_join(dir, file);
        free(file);
        char got[128];
        if (sha512_base64_file(path, got, sizeof got) < 0) {
            free(path);
            goto out;
        }
        if (strcmp(got, integrity + 7)) {
            error("%s: sha512 mismatch for %s@%s (packages.lock line %d wants %s, file has sha512-%s)\n"
                  "hint: the package is corrupt or was replaced; delete it and run `make deps`",
                  path, name, version, lineno, integrity, got);
            free(path);
            goto out;
        }
        *tgz_path = path;
        rc = 0;
        goto out;
    }
    error("%s: no package '%s' is pinned there", lock_path, name);
out:
    free(lock);
    free(lock_path);
    return rc;
}

int world_tgz_each(const char *tgz, int (*want)(const char *entry, void *ud), world_entry_fn fn, void *ud)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, tgz, 1 << 16) != ARCHIVE_OK) {
        int rc = error("%s: cannot open archive: %s", tgz, archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    int rc = 0;
    struct archive_entry *e;
    char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = error("%s: corrupt archive: %s", tgz, archive_error_string(a));
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (archive_entry_filetype(e) != AE_IFREG || !name || (want && !want(name, ud))) continue;
        size_t len = 0;
        for (;;) {
            if (len + (1 << 16) + 1 > cap) {
                cap = cap ? cap * 2 : (1 << 20);
                buf = xrealloc(buf, cap);
            }
            la_ssize_t n = archive_read_data(a, buf + len, cap - len - 1);
            if (n < 0) {
                rc = error("%s: entry '%s': corrupt data: %s", tgz, name, archive_error_string(a));
                goto done;
            }
            if (n == 0) break;
            len += (size_t)n;
        }
        buf[len] = 0;
        int r2 = fn(name, buf, len, ud);
        if (r2 < 0) {
            rc = -1;
            break;
        }
        if (r2 > 0) break;
    }
done:
    free(buf);
    archive_read_free(a);
    return rc;
}

struct one_entry {
    const char *want;
    char *data;
    size_t len;
    int found;
};

static int one_want(const char *entry, void *ud) { return !strcmp(entry, ((struct one_entry *)ud)->want); }

static int one_take(const char *entry, const char *data, size_t len, void *ud)
{
    (void)entry;
    struct one_entry *o = ud;
    o->data = w_strndup(data, len);
    o->len = len;
    o->found = 1;
    return 1;
}

int world_pkg_read_entry(const char *dir, const char *pkg, const char *entry, char **data, size_t *len)
{
    char *tgz;
    if (world_pkg_verify(dir, pkg, &tgz) < 0) return -1;
    struct one_entry o = {entry, NULL, 0, 0};
    int rc = world_tgz_each(tgz, one_want, one_take, &o);
    if (rc == 0 && !o.found) rc = error("%s: no entry '%s' in package %s", tgz, entry, pkg);
    free(tgz);
    if (rc < 0) return -1;
    *data = o.data;
    if (len) *len = o.len;
    return 0;
}
