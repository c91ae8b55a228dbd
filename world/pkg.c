/* pkg.c - pinned data packages: find third_party/, verify a .tgz's sha512 against packages.lock, read entries with libarchive. */
#include "world/world.h"
#include "world/world_internal.h"

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
    return hx_third_party_dir(out);
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
    int fd = hx_open_input(path, HX_IN_STREAM, NULL);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        char *why = xstrdup(fd < 0 ? hx_last_error() : strerror(errno));
        if (fd >= 0) close(fd);
        error("%s\nhint: run `make deps`", why);
        free(why);
        return -1;
    }
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
    int rc = hx_tgz_each(tgz, one_want, one_take, &o);
    if (rc == 0 && !o.found) rc = error("%s: no entry '%s' in package %s", tgz, entry, pkg);
    free(tgz);
    if (rc < 0) return -1;
    *data = o.data;
    if (len) *len = o.len;
    return 0;
}
