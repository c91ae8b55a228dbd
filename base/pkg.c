/* pkg.c - the pinned data packages: finding third_party/ and reading .tgz members in place with libarchive. */
#include "base/base.h"

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hx_third_party_dir(char **out)
{
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
                 "hint: run `make deps`, or set HX_THIRD_PARTY");
}

int hx_tgz_each(const char *tgz, int (*want)(const char *entry, void *ud), hx_entry_fn fn, void *ud)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    int fd = hx_open_input(tgz, HX_IN_STREAM, NULL);
    if (fd < 0 || archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
        int rc = fd < 0 ? -1 : error("%s: cannot open archive: %s", tgz, archive_error_string(a));
        archive_read_free(a);
        if (fd >= 0) close(fd);
        return rc;
    }
    size_t most = hx_input_limit(HX_IN_DATA); /* a member is read whole: a bomb must not eat the machine */
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
            if (len > most) {
                rc = error("%s: entry '%s': more than %zu MiB, the cap on data inputs\nhint: set HX_MAX_DATA_MB", tgz,
                           name, most >> 20);
                goto done;
            }
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
    close(fd);
    return rc;
}
