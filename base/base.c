/* base.c - allocation, errors, logging, progress, file and hashing helpers (see base.h). */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>

/* ---- allocation ---- */

static _Thread_local hx_oom_trap *oom_trap;

void hx_oom_trap_push(hx_oom_trap *t)
{
    t->prev = oom_trap;
    oom_trap = t;
}

void hx_oom_trap_pop(hx_oom_trap *t) { oom_trap = t->prev; }

void hx_oom(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hx_oom_trap *t = oom_trap;
    if (t && !omp_in_parallel()) {
        oom_trap = t->prev;
        error("%s", msg);
        longjmp(t->jb, 1);
    }
    fprintf(stderr, "fatal: %s\n", msg);
    exit(HX_EXIT_STAGE);
}

static HX_NORETURN void oom(size_t n) { hx_oom("out of memory allocating %zu bytes", n); }

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

char *xstrfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) oom(strlen(fmt));
    va_end(ap);
    return s;
}

void hx_sb_add(hx_sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void hx_sb_puts(hx_sbuf *b, const char *s) { hx_sb_add(b, s, strlen(s)); }
void hx_sb_putc(hx_sbuf *b, char c) { hx_sb_add(b, &c, 1); }

void hx_sb_printf(hx_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) BUG("vsnprintf failed");
    if ((size_t)n < sizeof tmp) {
        hx_sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    hx_sb_add(b, big, (size_t)n);
    free(big);
}

char *hx_sb_take(hx_sbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void hx_sb_free(hx_sbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* ---- errors ---- */

/* The last error of this thread: library code records, the CLI reports. */
static _Thread_local char last_error[4096];

int error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

int error_prefix(const char *fmt, ...)
{
    char ctx[1024];
    static _Thread_local char old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(ctx);
    memcpy(last_error, ctx, n);
    memcpy(last_error + n, ": ", 2);
    size_t room = sizeof last_error - n - 3, m = strnlen(old, room);
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = 0;
    return -1;
}

const char *hx_last_error(void) { return last_error[0] ? last_error : "unknown error"; }
void hx_clear_error(void) { last_error[0] = 0; }

void die(int status, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hx_log(HX_LOG_ERROR, "%s", msg);
    exit(status);
}

void hx_bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "BUG: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- logging ---- */

/* The log sink is process-wide by nature (one stderr); set once by the CLI. */
static int log_json;
static hx_log_level log_level = HX_LOG_INFO;

void hx_log_set_json(int on) { log_json = on; }
int hx_log_is_json(void) { return log_json; }
void hx_log_set_level(hx_log_level lvl) { log_level = lvl; }

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
}

/* Per thread: stages of one run execute in threads of one process (--jobs). */
static _Thread_local char log_scope[192];
static _Thread_local hx_progress_sink progress_sink;
static _Thread_local void *progress_sink_ud;
static int bar_open; /* a terminal's progress bar was drawn without its newline (stderr is one line for all threads) */

void hx_log_scope_set(const char *name) { snprintf(log_scope, sizeof log_scope, "%s", name ? name : ""); }
const char *hx_log_scope(void) { return log_scope; }

/* ,"instance":"NAME" of a JSON event, when the thread has a scope. */
static void json_scope(FILE *f)
{
    if (!log_scope[0]) return;
    fputs(",\"instance\":\"", f);
    json_escape(f, log_scope);
    fputc('"', f);
}

void hx_log(hx_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (lvl < log_level) return;
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    flockfile(stderr); /* one line at a time when stages log from several threads (--jobs) */
    if (log_json) {
        fprintf(stderr, "{\"event\":\"log\",\"level\":\"%s\",\"t\":%.3f", names[lvl], hx_now());
        json_scope(stderr);
        fputs(",\"msg\":\"", stderr);
        json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        if (bar_open) fputs("\r\033[K", stderr); /* a message replaces the bar; the next update draws it again */
        bar_open = 0;
        if (log_scope[0]) fprintf(stderr, "[%s] ", log_scope);
        fprintf(stderr, "%s%s\n", lvl == HX_LOG_ERROR ? "error: " : lvl == HX_LOG_WARN ? "warning: " : "", msg);
    }
    fflush(stderr);
    funlockfile(stderr);
}

void hx_log_event(const char *name, const char *fields_json)
{
    if (!log_json) return;
    flockfile(stderr);
    fprintf(stderr, "{\"event\":\"");
    json_escape(stderr, name);
    fprintf(stderr, "\",\"t\":%.3f%s%s}\n", hx_now(), fields_json && *fields_json ? "," : "",
            fields_json ? fields_json : "");
    fflush(stderr);
    funlockfile(stderr);
}

/* ---- progress ---- */

double hx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void hx_progress_set_sink(hx_progress_sink fn, void *ud)
{
    progress_sink = fn;
    progress_sink_ud = ud;
}

void hx_progress_set_eta(hx_progress *p, double eta_s)
{
    p->given_eta = 1;
    p->eta = eta_s;
}

void hx_progress_begin(hx_progress *p, const char *label, double total, const char *unit)
{
    memset(p, 0, sizeof *p);
    p->eta = -1;
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", unit);
    p->total = total;
    p->t0 = p->last_print = hx_now();
}

static void fmt_eta(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* The line's name: "[instance]" in a stage's thread (and the label when it says more, "[eval[x=1]] scoring"),
 * else the label. */
static void progress_name(char *buf, size_t n, const hx_progress *p)
{
    size_t l = strlen(p->label);
    int same = !strncmp(log_scope, p->label, l) && (log_scope[l] == 0 || log_scope[l] == '[');
    if (!log_scope[0]) snprintf(buf, n, "%s:", p->label);
    else if (same || !l) snprintf(buf, n, "[%s]", log_scope);
    else snprintf(buf, n, "[%s] %s:", log_scope, p->label);
}

/* The rate over the whole work so far and, unless the caller gives one, the ETA at that rate. */
static void progress_rate(hx_progress *p, double now)
{
    double el = now - p->t0;
    p->rate_units = el > 0 ? p->done / el : 0;
    if (!p->given_eta) p->eta = p->rate_units > 0 ? (p->total - p->done) / p->rate_units : -1;
}

static void progress_print(hx_progress *p, int final)
{
    double now = hx_now(), el = now - p->t0;
    progress_rate(p, now);
    double eta = final ? 0 : p->eta;
    char etas[32], name[256], rate[48] = "";
    fmt_eta(etas, sizeof etas, final ? el : eta);
    progress_name(name, sizeof name, p);
    if (!p->given_eta) snprintf(rate, sizeof rate, " %.0f %s/s", p->rate_units, p->unit);
    double frac = p->total > 0 ? p->done / p->total : 0;
    flockfile(stderr);
    if (log_json) {
        fprintf(stderr,
                "{\"event\":\"progress\",\"t\":%.3f,\"label\":\"%s\",\"done\":%.0f,\"total\":%.0f,"
                "\"unit\":\"%s\",\"rate\":%.2f,\"eta_s\":%.1f",
                now, p->label, p->done, p->total, p->unit, p->rate_units, eta >= 0 ? eta : -1.0);
        json_scope(stderr);
        fputs(",\"extra\":\"", stderr);
        json_escape(stderr, p->extra);
        fputs("\"}\n", stderr);
    } else if (isatty(2)) {
        int w = 24, fill = (int)(frac * w + 0.5);
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        fprintf(stderr, "\r%-14s [%s] %5.1f%%%s %s %s  %s\033[K%s", name, bar, 100 * frac, rate, final ? "in" : "ETA",
                etas, p->extra, final ? "\n" : "");
        bar_open = !final;
    } else {
        fprintf(stderr, "%s %.0f/%.0f %s (%.1f%%)%s %s %s %s\n", name, p->done, p->total, p->unit, 100 * frac, rate,
                final ? "done in" : "ETA", etas, p->extra);
    }
    fflush(stderr);
    funlockfile(stderr);
    p->last_print = now;
    if (progress_sink && final) progress_sink(progress_sink_ud, p, 1);
}

void hx_progress_update(hx_progress *p, double done, const char *extra_fmt, ...)
{
    p->done = done;
    if (extra_fmt) {
        va_list ap;
        va_start(ap, extra_fmt);
        vsnprintf(p->extra, sizeof p->extra, extra_fmt, ap);
        va_end(ap);
    }
    double now = hx_now();
    if (progress_sink) { /* on every update: the sink decides how often it keeps a record */
        progress_rate(p, now);
        progress_sink(progress_sink_ud, p, 0);
    }
    double every = (!log_json && isatty(2)) ? 0.2 : 5.0;
    if (now - p->last_print >= every) progress_print(p, 0);
}

void hx_progress_end(hx_progress *p)
{
    progress_print(p, 1);
}

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

/* ---- hashing ---- */

static void to_hex(const unsigned char *d, unsigned n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = 0;
}

void hx_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) BUG("EVP_Digest failed");
    to_hex(md, n, hex);
}

void hx_sha256_init(hx_sha256 *h)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) BUG("EVP sha256 init failed");
}

void hx_sha256_update(hx_sha256 *h, const void *p, size_t n)
{
    if (EVP_DigestUpdate(h->ctx, p, n) != 1) BUG("EVP sha256 update failed");
}

void hx_sha256_final(hx_sha256 *h, char hex[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, d, &n) != 1 || n != 32) BUG("EVP sha256 final failed");
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    to_hex(d, n, hex);
}

void hx_sha256_abort(hx_sha256 *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

int hx_sha256_file_hex(const char *path, char hex[65])
{
    /* Streamed, so no size cap; but a device or FIFO (a stage's output, a symlink) would never end. */
    int fd = hx_open_input(path, HX_IN_STREAM, NULL);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return error("cannot open '%s': %s", path, strerror(errno));
    }
    hx_sha256 h;
    hx_sha256_init(&h);
    static _Thread_local unsigned char buf[1 << 16];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) hx_sha256_update(&h, buf, r);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        hx_sha256_abort(&h);
        return error("cannot read '%s'", path);
    }
    hx_sha256_final(&h, hex);
    return 0;
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

/* ---- threads ---- */

int hx_threads(int requested)
{
    long n = requested;
    if (n <= 0) {
        const char *e = getenv("OMP_NUM_THREADS");
        n = e && atol(e) > 0 ? atol(e) : sysconf(_SC_NPROCESSORS_ONLN);
    }
    return n < 1 ? 1 : n > HX_MAX_THREADS ? HX_MAX_THREADS : (int)n;
}

/* ---- rng ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void hx_rng_seed(hx_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t hx_rng_u64(hx_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return out;
}

double hx_rng_uniform(hx_rng *r) { return (hx_rng_u64(r) >> 11) * 0x1.0p-53; }

float hx_rng_normal(hx_rng *r)
{
    double u1 = hx_rng_uniform(r), u2 = hx_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t hx_rng_below(hx_rng *r, uint64_t n)
{
    if (n == 0) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do x = hx_rng_u64(r); while (x >= lim);
    return x % n;
}
