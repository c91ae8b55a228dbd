/* files.c - inputs read within their caps, atomic writes, directories, JSON documents and numbers (base.h). */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

/* ---- files ---- */

/* The input caps (docs/architecture.md, "Input limits"): one row per kind, HX_MAX_<KIND>_MB overrides. */
static const struct {
    const char *name, *env;
    size_t mib;
} input_caps[HX_IN_KINDS] = {
    [HX_IN_RECIPE] = {"recipe", "HX_MAX_RECIPE_MB", 16},
    [HX_IN_DOC] = {"doc", "HX_MAX_DOC_MB", 256},
    [HX_IN_DATA] = {"data", "HX_MAX_DATA_MB", 16384},
    [HX_IN_STREAM] = {"stream", NULL, 0},
};

const char *hx_input_kind_name(hx_input_kind kind) { return input_caps[kind].name; }

size_t hx_input_limit(hx_input_kind kind)
{
    if ((unsigned)kind >= HX_IN_KINDS) BUG("input kind %d", (int)kind);
    size_t mib = input_caps[kind].mib;
    if (!input_caps[kind].env) return SIZE_MAX;
    const char *e = getenv(input_caps[kind].env);
    if (e && *e) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(e, &end, 10);
        /* A malformed override is ignored with a warning rather than silently lifting the cap. */
        if (*end || errno || v == 0 || v > (SIZE_MAX >> 21))
            log_warn("%s='%s' is not a size in MiB (1 to %zu); using %zu", input_caps[kind].env, e,
                     (size_t)(SIZE_MAX >> 21), mib);
        else
            mib = (size_t)v;
    }
    return mib << 20;
}

static int over_cap(const char *name, hx_input_kind kind, size_t cap)
{
    return error("'%s' is larger than %zu MiB, the cap on %s inputs\nhint: set %s=N (MiB) to raise it", name,
                 cap >> 20, input_caps[kind].name, input_caps[kind].env);
}

/* Read FD to its end into a NUL-terminated buffer, refusing more than CAP bytes. */
static int read_fd_capped(int fd, const char *name, hx_input_kind kind, size_t cap, size_t hint, char **data,
                          size_t *len)
{
    size_t bufcap = (hint < cap ? hint : cap) + 1, n = 0;
    if (bufcap < 4096) bufcap = 4096;
    char *buf = xmalloc(bufcap);
    for (;;) {
        if (n + 1 >= bufcap) {
            if (n > cap) break;
            size_t want = bufcap * 2 > cap + 2 ? cap + 2 : bufcap * 2;
            buf = xrealloc(buf, bufcap = want);
        }
        ssize_t r = read(fd, buf + n, bufcap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return error("cannot read '%s': %s", name, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > cap) {
        free(buf);
        return over_cap(name, kind, cap);
    }
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return 0;
}

int hx_open_input(const char *path, hx_input_kind kind, size_t *size)
{
    size_t cap = hx_input_limit(kind);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; the mode check below refuses it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return error("cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return error("cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return error("'%s' is not a regular file (%s); hx reads only regular files", path,
                     S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a special file");
    }
    if ((unsigned long long)st.st_size > cap) {
        close(fd);
        return over_cap(path, kind, cap);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size) *size = (size_t)st.st_size;
    return fd;
}

int hx_read_input(const char *path, hx_input_kind kind, char **data, size_t *len)
{
    size_t size;
    int fd = hx_open_input(path, kind, &size);
    if (fd < 0) return -1;
    /* Capped again while reading: a file that grows after the fstat stops at the cap all the same. */
    int r = read_fd_capped(fd, path, kind, hx_input_limit(kind), size, data, len);
    close(fd);
    return r;
}

int hx_read_file(const char *path, char **data, size_t *len) { return hx_read_input(path, HX_IN_DATA, data, len); }

int hx_read_stream(int fd, const char *name, hx_input_kind kind, char **data, size_t *len)
{
    return read_fd_capped(fd, name, kind, hx_input_limit(kind), 1 << 16, data, len);
}

json_t *hx_read_json(const char *path, size_t flags)
{
    char *text;
    size_t len;
    if (hx_read_input(path, HX_IN_DOC, &text, &len) < 0) return NULL;
    json_error_t je;
    json_t *v = json_loadb(text, len, flags, &je);
    free(text);
    if (!v) error("%s:%d:%d: %s", path, je.line, je.column, je.text);
    return v;
}

int hx_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return error("cannot create '%s': %s", path, strerror(errno));
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return error("cannot write '%s': %s", path, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) return error("cannot sync '%s': %s", path, strerror(errno));
    return 0;
}

int hx_write_file_atomic(const char *path, const void *data, size_t len)
{
    char *tmp = xstrfmt("%s.tmp.%ld", path, (long)getpid());
    if (hx_write_file(tmp, data, len) < 0) {
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return error("cannot rename into '%s': %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

int hx_mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            *s = '/';
            free(p);
            return error("cannot create directory '%s': %s", path, strerror(e));
        }
        *s = '/';
    }
    int r = 0;
    if (mkdir(p, 0755) < 0 && errno != EEXIST) r = error("cannot create directory '%s': %s", path, strerror(errno));
    free(p);
    return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int hx_rm_rf(const char *path)
{
    if (!hx_file_exists(path)) return 0;
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0) return error("cannot remove '%s': %s", path, strerror(errno));
    return 0;
}

int hx_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int hx_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int hx_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return error("cannot open directory '%s': %s", path, strerror(errno));
    int r = fsync(fd);
    close(fd);
    return r < 0 ? error("cannot sync directory '%s': %s", path, strerror(errno)) : 0;
}

char *hx_path_join(const char *a, const char *b)
{
    if (!a || !*a || b[0] == '/') return xstrdup(b);
    size_t n = strlen(a);
    return xstrfmt("%s%s%s", a, a[n - 1] == '/' ? "" : "/", b);
}

/* ---- JSON numbers ---- */

json_t *hx_json_num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

const char *hx_json_str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

const char *hx_json_numf(char buf[48], const char *fmt, double v)
{
    if (!isfinite(v)) return "null";
    snprintf(buf, 48, fmt, v);
    return buf;
}

