/* log.c - logging (human text or JSON-lines events on stderr) and progress lines (see base.h). */
#include "base.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

