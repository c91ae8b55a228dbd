/* figure.c - the figures of a report document, drawn on a canvas (SVG or TikZ): per table LL vs generation accuracy,
 * Δ vs the teacher per arm and the letter distributions; per training stage its train_log.jsonl curves. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reports/canvas.h"
#include "reports/report.h"

/* Paper column width (3.3 in) and the type sizes that stay legible at it. */
#define FIG_W 237.6
#define FS_TICK 6.0
#define FS_LABEL 7.0
#define FS_TITLE 8.0
#define LINE 8.5 /* a legend or label line */

static double num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }
static int has(const json_t *o, const char *k) { return json_is_number(json_object_get(o, k)); }

/* The interval end I of field K's `K_ci`, or the value itself when absent or unbounded. */
static double ci_end(const json_t *row, const char *k, int i)
{
    char *ck = xstrfmt("%s_ci", k);
    json_t *e = json_array_get(json_object_get(row, ck), (size_t)i);
    free(ck);
    return json_is_number(e) ? json_number_value(e) : num(row, k);
}

/* A plot area (points) and the data range it shows. */
typedef struct plot {
    double x, y, w, h;
    double x0, x1, y0, y1;
} plot;

static double PX(const plot *p, double v) { return p->x + (v - p->x0) / (p->x1 - p->x0) * p->w; }
static double PY(const plot *p, double v) { return p->y + p->h - (v - p->y0) / (p->y1 - p->y0) * p->h; }

/* A 1-2-5 tick step giving about `want` intervals over [lo, hi]; the range widened to multiples of it. */
static double nice_range(double *lo, double *hi, int want)
{
    if (!(*hi > *lo)) *lo -= 0.5, *hi += 0.5;
    double raw = (*hi - *lo) / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    return step;
}

/* A tick value's text: as many decimals as the step needs. */
static char *tick_text(double v, double step)
{
    if (fabs(v) < step * 1e-6) v = 0;
    if (step < 1e-3) return xstrfmt("%.1e", v);
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    return xstrfmt("%.*f", dec, v);
}

/* An attribute value: the text XML-escaped, for data-* attributes. xmalloc'd. */
static char *attr(const char *s)
{
    hx_sbuf b = {0};
    rp_xml_escape(&b, s ? s : "");
    return hx_sb_take(&b);
}

/* A table's name as a file-name part: letters, digits, '-' and '_' kept, anything else '_'. xmalloc'd. */
static char *slug(const char *s)
{
    char *t = xstrdup(s && *s ? s : "table");
    for (char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) *p = '_';
    return t;
}

/*
 * The frame of plot P: grid lines and ticks every xstep / ystep (0: none on that axis), tick labels, axis labels.
 * Opens a group 'class="plot"' whose data-* attributes give the data range and the area, so a reader can map any
 * coordinate back to data; the caller closes it.
 */
static void axes(rp_canvas *c, const plot *p, double xstep, double ystep, const char *xlabel, const char *ylabel,
                 const char *name)
{
    char *a = attr(name);
    char *meta = xstrfmt("class=\"plot\" data-name=\"%s\" data-xmin=\"%.6g\" data-xmax=\"%.6g\" data-ymin=\"%.6g\" "
                         "data-ymax=\"%.6g\" data-px=\"%.2f\" data-py=\"%.2f\" data-pw=\"%.2f\" data-ph=\"%.2f\"",
                         a, p->x0, p->x1, p->y0, p->y1, p->x, p->y, p->w, p->h);
    rp_cv_group(c, meta);
    free(meta);
    free(a);
    if (xstep > 0)
        for (double v = p->x0; v <= p->x1 + xstep * 1e-6; v += xstep) {
            double x = PX(p, v);
            rp_cv_line(c, x, p->y, x, p->y + p->h, RP_LIGHT, 0.4, 0, NULL);
            rp_cv_line(c, x, p->y + p->h, x, p->y + p->h + 2, RP_BLACK, 0.5, 0, NULL);
            char *t = tick_text(v, xstep);
            rp_cv_text(c, x, p->y + p->h + 2 + FS_TICK, t, FS_TICK, RP_MIDDLE, 0, "class=\"xtick\"");
            free(t);
        }
    if (ystep > 0)
        for (double v = p->y0; v <= p->y1 + ystep * 1e-6; v += ystep) {
            double y = PY(p, v);
            rp_cv_line(c, p->x, y, p->x + p->w, y, RP_LIGHT, 0.4, 0, NULL);
            rp_cv_line(c, p->x - 2, y, p->x, y, RP_BLACK, 0.5, 0, NULL);
            char *t = tick_text(v, ystep);
            rp_cv_text(c, p->x - 3, y + FS_TICK * 0.35, t, FS_TICK, RP_RIGHT, 0, "class=\"ytick\"");
            free(t);
        }
    rp_cv_line(c, p->x, p->y + p->h, p->x + p->w, p->y + p->h, RP_BLACK, 0.6, 0, NULL);
    if (ystep > 0) rp_cv_line(c, p->x, p->y, p->x, p->y + p->h, RP_BLACK, 0.6, 0, NULL);
    if (xlabel) rp_cv_text(c, p->x + p->w / 2, p->y + p->h + 2 + FS_TICK + 2 + FS_LABEL, xlabel, FS_LABEL, RP_MIDDLE, 0, "class=\"xlabel\"");
    if (ylabel) rp_cv_text(c, p->x - 24, p->y + p->h / 2, ylabel, FS_LABEL, RP_MIDDLE, 1, "class=\"ylabel\"");
}

/* Horizontal and vertical error bars with caps (either may be skipped by lo == hi). */
static void error_bars(rp_canvas *c, double x, double y, double xlo, double xhi, double ylo, double yhi, int colour)
{
    if (xhi != xlo) {
        rp_cv_line(c, xlo, y, xhi, y, colour, 0.6, 0, "class=\"errbar\"");
        rp_cv_line(c, xlo, y - 1.5, xlo, y + 1.5, colour, 0.6, 0, NULL);
        rp_cv_line(c, xhi, y - 1.5, xhi, y + 1.5, colour, 0.6, 0, NULL);
    }
    if (yhi != ylo) {
        rp_cv_line(c, x, ylo, x, yhi, colour, 0.6, 0, "class=\"errbar\"");
        rp_cv_line(c, x - 1.5, ylo, x + 1.5, ylo, colour, 0.6, 0, NULL);
        rp_cv_line(c, x - 1.5, yhi, x + 1.5, yhi, colour, 0.6, 0, NULL);
    }
}

/* An arm's colour and shape: the palette in order, then the shapes (so more than 8 arms stay distinguishable). */
static int arm_colour(int i) { return i % RP_PALETTE == 3 ? 7 : i % RP_PALETTE == 7 ? 3 : i % RP_PALETTE; } /* yellow last */
static rp_shape arm_shape(int i) { return (rp_shape[]){RP_CIRCLE, RP_SQUARE, RP_TRIANGLE}[(i / RP_PALETTE) % 3]; }

/* A legend of n entries (mark or swatch, text) in one or two columns from y; returns the height used. */
typedef struct legend_entry {
    const char *text;
    int colour;
    rp_shape shape;
    int kind; /* 0 mark, 1 swatch, 2 line, 3 text only */
} legend_entry;

static double legend_height(const legend_entry *e, int n, double w, int *cols)
{
    size_t longest = 0;
    for (int i = 0; i < n; i++) longest = strlen(e[i].text) > longest ? strlen(e[i].text) : longest;
    *cols = n > 3 && (double)longest * FS_LABEL * 0.55 + 12 < w / 2 ? 2 : 1;
    return ((n + *cols - 1) / *cols) * LINE;
}

static double legend(rp_canvas *c, const legend_entry *e, int n, double x, double y, double w)
{
    int cols;
    double h = legend_height(e, n, w, &cols);
    int per = (n + cols - 1) / cols;
    rp_cv_group(c, "class=\"legend\"");
    for (int i = 0; i < n; i++) {
        double lx = x + (i / per) * (w / cols), ly = y + (i % per) * LINE + LINE * 0.7;
        if (e[i].kind == 0) rp_cv_mark(c, lx + 4, ly - FS_LABEL * 0.35, e[i].shape, 4, e[i].colour, NULL);
        else if (e[i].kind == 1) rp_cv_rect(c, lx + 1, ly - FS_LABEL * 0.7, 6, 5, e[i].colour, RP_NONE, NULL);
        else if (e[i].kind == 2) rp_cv_line(c, lx, ly - FS_LABEL * 0.35, lx + 8, ly - FS_LABEL * 0.35, e[i].colour, 1.2, 0, NULL);
        rp_cv_text(c, lx + 11, ly, e[i].text, FS_LABEL, RP_LEFT, 0, "class=\"legend-text\"");
    }
    rp_cv_group_end(c);
    return h;
}

/* ---- (a) LL accuracy vs generation accuracy, one point per model ---- */

static double fig_accuracy(const json_t *t, const char *name, rp_canvas_fmt fmt, hx_sbuf *out)
{
    json_t *rows = json_object_get(t, "rows");
    size_t nr = json_array_size(rows);
    double lo = 100, hi = 0;
    int n = 0;
    for (size_t r = 0; r < nr; r++) {
        json_t *row = json_array_get(rows, r);
        if (!has(row, "ll_acc") || !has(row, "gen_acc")) continue;
        n++;
        double v[] = {ci_end(row, "ll_acc", 0), ci_end(row, "ll_acc", 1), ci_end(row, "gen_acc", 0), ci_end(row, "gen_acc", 1)};
        for (int i = 0; i < 4; i++) lo = fmin(lo, 100 * v[i]), hi = fmax(hi, 100 * v[i]);
    }
    if (!n) return 0;
    double step = nice_range(&lo, &hi, 5);
    lo = fmax(lo, 0), hi = fmin(hi, 100);
    legend_entry *le = xcalloc(nr + 1, sizeof *le);
    int ne = 0;
    for (size_t r = 0, arm = 0; r < nr; r++) {
        json_t *row = json_array_get(rows, r);
        if (!has(row, "ll_acc") || !has(row, "gen_acc")) continue;
        int teacher = json_is_true(json_object_get(row, "teacher"));
        le[ne++] = (legend_entry){hx_json_str(row, "label"), teacher ? RP_BLACK : arm_colour((int)arm),
                                  teacher ? RP_DIAMOND : arm_shape((int)arm), 0};
        arm += !teacher;
    }
    double side = FIG_W - 42 - 10;
    int cols;
    double lh = legend_height(le, ne, FIG_W - 16, &cols);
    double H = 14 + side + 26 + lh + 4;
    rp_canvas c;
    char *fname = xstrfmt("%s-accuracy", name);
    rp_cv_begin(&c, fmt, out, fname, FIG_W, H);
    char *title = xstrfmt("%s: LL vs generation accuracy (95%% Wilson)", hx_json_str(t, "name"));
    rp_cv_text(&c, 8, 10, title, FS_TITLE, RP_LEFT, 0, "class=\"title\"");
    free(title);
    plot p = {42, 14, side, side, lo, hi, lo, hi};
    axes(&c, &p, step, step, "LL accuracy (%)", "Generation accuracy (%)", fname);
    rp_cv_line(&c, PX(&p, lo), PY(&p, lo), PX(&p, hi), PY(&p, hi), RP_GREY, 0.6, 1, "class=\"diagonal\"");
    for (size_t r = 0, e = 0; r < nr; r++) {
        json_t *row = json_array_get(rows, r);
        if (!has(row, "ll_acc") || !has(row, "gen_acc")) continue;
        double x = 100 * num(row, "ll_acc"), y = 100 * num(row, "gen_acc");
        error_bars(&c, PX(&p, x), PY(&p, y), PX(&p, 100 * ci_end(row, "ll_acc", 0)), PX(&p, 100 * ci_end(row, "ll_acc", 1)),
                   PY(&p, 100 * ci_end(row, "gen_acc", 0)), PY(&p, 100 * ci_end(row, "gen_acc", 1)), le[e].colour);
        char *lab = attr(hx_json_str(row, "label"));
        char *meta = xstrfmt("class=\"point\" data-label=\"%s\" data-x=\"%.6g\" data-y=\"%.6g\" data-teacher=\"%d\"", lab, x, y,
                             json_is_true(json_object_get(row, "teacher")));
        rp_cv_mark(&c, PX(&p, x), PY(&p, y), le[e].shape, le[e].shape == RP_DIAMOND ? 5 : 4.2, le[e].colour, meta);
        free(meta);
        free(lab);
        e++;
    }
    rp_cv_group_end(&c);
    legend(&c, le, ne, 8, 14 + side + 26, FIG_W - 16);
    rp_cv_end(&c);
    free(fname);
    free(le);
    return H;
}

/* ---- (b) Δ LL and Δ Gen vs the teacher per arm ---- */

/* 2 when LABEL is an arm of a significant reversal, 1 of a reversed pair that is not significant, else 0. */
static int reversal_mark(const json_t *t, const char *label)
{
    int m = 0;
    json_t *in = json_object_get(t, "interactions");
    for (size_t i = 0; i < json_array_size(in); i++) {
        json_t *e = json_array_get(in, i);
        if (!json_is_true(json_object_get(e, "reversed"))) continue;
        if (strcmp(hx_json_str(e, "a"), label) && strcmp(hx_json_str(e, "b"), label)) continue;
        m = json_is_true(json_object_get(e, "significant")) ? 2 : m > 1 ? m : 1;
    }
    return m;
}

static double fig_deltas(const json_t *t, const char *name, rp_canvas_fmt fmt, hx_sbuf *out)
{
    static const char *const meas[] = {"delta_ll", "delta_gen"};
    static const char *const meas_title[] = {"Δ LL", "Δ Gen"};
    static const int meas_colour[] = {4, 5}; /* blue, vermillion */
    json_t *rows = json_object_get(t, "rows");
    size_t nr = json_array_size(rows);
    double lo = 0, hi = 0;
    int n = 0, any_sig = 0, any_ns = 0;
    for (size_t r = 0; r < nr; r++) {
        json_t *row = json_array_get(rows, r);
        if (json_is_true(json_object_get(row, "teacher")) || (!has(row, "delta_ll") && !has(row, "delta_gen"))) continue;
        n++;
        for (int m = 0; m < 2; m++)
            if (has(row, meas[m])) lo = fmin(lo, 100 * ci_end(row, meas[m], 0)), hi = fmax(hi, 100 * ci_end(row, meas[m], 1));
        int rm = reversal_mark(t, hx_json_str(row, "label"));
        any_sig |= rm == 2, any_ns |= rm == 1;
    }
    if (!n) return 0;
    double step = nice_range(&lo, &hi, 5);
    const double group = LINE + 2 * 6 + 5; /* arm label, two bars, gap */
    legend_entry le[4] = {{meas_title[0], meas_colour[0], RP_SQUARE, 1}, {meas_title[1], meas_colour[1], RP_SQUARE, 1}};
    int ne = 2;
    if (any_sig) le[ne++] = (legend_entry){"‡ arm of a significant ranking reversal", RP_NONE, RP_SQUARE, 3};
    if (any_ns) le[ne++] = (legend_entry){"† arm of a reversal, not significant", RP_NONE, RP_SQUARE, 3};
    double H = 14 + 2 * LINE + n * group + 28 + (ne > 2 ? (ne - 2) * LINE : 0);
    rp_canvas c;
    char *fname = xstrfmt("%s-deltas", name);
    rp_cv_begin(&c, fmt, out, fname, FIG_W, H);
    char *title = xstrfmt("%s: Δ vs teacher (95%% intervals)", hx_json_str(t, "name"));
    rp_cv_text(&c, 8, 10, title, FS_TITLE, RP_LEFT, 0, "class=\"title\"");
    free(title);
    for (int i = 0; i < 2; i++) { /* the measure swatches side by side, the reversal marks under them */
        rp_cv_rect(&c, 8 + i * 50, 14 + 2, 6, 5, le[i].colour, RP_NONE, NULL);
        rp_cv_text(&c, 8 + i * 50 + 9, 14 + 7, le[i].text, FS_LABEL, RP_LEFT, 0, "class=\"legend-text\"");
    }
    for (int i = 2; i < ne; i++) rp_cv_text(&c, 8, 14 + 7 + (i - 1) * LINE, le[i].text, FS_LABEL, RP_LEFT, 0, "class=\"legend-text\"");
    double top = 14 + 2 * LINE + (ne > 2 ? (ne - 2) * LINE : 0);
    plot p = {10, top, FIG_W - 20, n * group, lo, hi, 0, 1};
    axes(&c, &p, step, 0, "Δ vs teacher (pp of chance-normalised accuracy)", NULL, fname);
    rp_cv_line(&c, PX(&p, 0), p.y, PX(&p, 0), p.y + p.h, RP_BLACK, 0.6, 0, "class=\"zero\"");
    double y = top;
    for (size_t r = 0; r < nr; r++) {
        json_t *row = json_array_get(rows, r);
        if (json_is_true(json_object_get(row, "teacher")) || (!has(row, "delta_ll") && !has(row, "delta_gen"))) continue;
        int rm = reversal_mark(t, hx_json_str(row, "label"));
        char *lab = xstrfmt("%s%s", hx_json_str(row, "label"), rm == 2 ? " ‡" : rm == 1 ? " †" : "");
        rp_cv_text(&c, p.x + 1, y + LINE - 1.5, lab, FS_LABEL, RP_LEFT, 0, "class=\"arm\"");
        free(lab);
        for (int m = 0; m < 2; m++) {
            double by = y + LINE + m * 6;
            if (!has(row, meas[m])) {
                rp_cv_text(&c, PX(&p, 0) + 2, by + 5, "n/a", FS_TICK, RP_LEFT, 0, NULL);
                continue;
            }
            double v = 100 * num(row, meas[m]);
            char *a = attr(hx_json_str(row, "label"));
            char *meta = xstrfmt("class=\"bar\" data-arm=\"%s\" data-measure=\"%s\" data-value=\"%.6g\" data-reversal=\"%d\"",
                                 a, meas[m], v, rm);
            rp_cv_rect(&c, PX(&p, 0), by + 0.5, PX(&p, v) - PX(&p, 0), 5, meas_colour[m], RP_NONE, meta);
            free(meta);
            free(a);
            error_bars(&c, PX(&p, v), by + 3, PX(&p, 100 * ci_end(row, meas[m], 0)), PX(&p, 100 * ci_end(row, meas[m], 1)),
                       0, 0, RP_BLACK);
        }
        y += group;
    }
    rp_cv_group_end(&c);
    rp_cv_end(&c);
    free(fname);
    return H;
}

/* ---- (c) letter distributions: gold, LL and generation per model ---- */

static double fig_letters(const json_t *t, const char *name, rp_canvas_fmt fmt, hx_sbuf *out)
{
    json_t *rows = json_object_get(t, "rows"), *names = NULL;
    size_t nr = json_array_size(rows);
    int n = 0;
    for (size_t r = 0; r < nr; r++) {
        json_t *l = json_object_get(json_array_get(rows, r), "letters");
        if (!json_is_object(l) || json_integer_value(json_object_get(l, "n")) <= 0) continue;
        n++;
        if (json_array_size(json_object_get(l, "letters")) > json_array_size(names)) names = json_object_get(l, "letters");
    }
    if (!n) return 0;
    int nl = (int)json_array_size(names);
    static const char *const kinds[] = {"gold", "ll", "gen"};
    static const char *const kind_title[] = {"gold", "LL", "gen"};
    const double bar = 5.5, group = LINE + 3 * (bar + 1) + 4;
    legend_entry *le = xcalloc((size_t)nl + 2, sizeof *le);
    for (int i = 0; i < nl; i++) le[i] = (legend_entry){json_string_value(json_array_get(names, i)), arm_colour(i), RP_SQUARE, 1};
    le[nl] = (legend_entry){"no letter", RP_GREY, RP_SQUARE, 1};
    double H = 14 + LINE + 4 + n * group + 26;
    rp_canvas c;
    char *fname = xstrfmt("%s-letters", name);
    rp_cv_begin(&c, fmt, out, fname, FIG_W, H);
    char *title = xstrfmt("%s: letters on lettered items (positional collapse)", hx_json_str(t, "name"));
    rp_cv_text(&c, 8, 10, title, FS_TITLE, RP_LEFT, 0, "class=\"title\"");
    free(title);
    double spacing = fmin(24, (FIG_W - 16 - 40) / (nl + 1));
    for (int i = 0; i <= nl; i++) { /* the letter swatches in one row, "no letter" last */
        double lx = 8 + i * spacing;
        rp_cv_rect(&c, lx, 14 + 2, 6, 5, le[i].colour, RP_NONE, NULL);
        rp_cv_text(&c, lx + 8, 14 + 7, le[i].text, FS_LABEL, RP_LEFT, 0, "class=\"legend-text\"");
    }
    double top = 14 + LINE + 4;
    plot p = {30, top, FIG_W - 30 - 10, n * group, 0, 100, 0, 1};
    axes(&c, &p, 20, 0, "share of the model's answers (%)", NULL, fname);
    double y = top;
    for (size_t r = 0; r < nr; r++) {
        json_t *row = json_array_get(rows, r), *l = json_object_get(row, "letters");
        if (!json_is_object(l) || json_integer_value(json_object_get(l, "n")) <= 0) continue;
        double total = (double)json_integer_value(json_object_get(l, "n"));
        rp_cv_text(&c, 8, y + LINE - 1.5, hx_json_str(row, "label"), FS_LABEL, RP_LEFT, 0, "class=\"model\"");
        char *a = attr(hx_json_str(row, "label"));
        for (int k = 0; k < 3; k++) {
            double by = y + LINE + k * (bar + 1), acc = 0;
            rp_cv_text(&c, p.x - 2, by + bar - 1, kind_title[k], FS_TICK, RP_RIGHT, 0, NULL);
            json_t *counts = json_object_get(l, kinds[k]);
            for (int i = 0; i <= nl; i++) {
                double cnt = i < nl ? (double)json_integer_value(json_object_get(counts, json_string_value(json_array_get(names, i))))
                             : k == 2 ? (double)json_integer_value(json_object_get(l, "invalid")) : 0;
                if (cnt <= 0) continue;
                double share = 100 * cnt / total;
                char *letter = attr(i < nl ? json_string_value(json_array_get(names, i)) : "none");
                char *meta = xstrfmt("class=\"seg\" data-model=\"%s\" data-kind=\"%s\" data-letter=\"%s\" data-share=\"%.6g\"",
                                     a, kinds[k], letter, share);
                free(letter);
                rp_cv_rect(&c, PX(&p, acc), by, PX(&p, acc + share) - PX(&p, acc), bar, le[i].colour, RP_NONE, meta);
                free(meta);
                acc += share;
            }
        }
        free(a);
        y += group;
    }
    rp_cv_group_end(&c);
    rp_cv_end(&c);
    free(fname);
    free(le);
    return H;
}

/* ---- (d) training curves of one training stage, its instances overlaid, one panel per logged quantity ---- */

static double fig_training(const json_t *st, rp_canvas_fmt fmt, hx_sbuf *out)
{
    json_t *inst = json_object_get(st, "instances");
    size_t ni = json_array_size(inst);
    json_t *series = json_array(); /* the quantities logged, in the order first seen (loss first) */
    for (size_t i = 0; i < ni; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(json_array_get(inst, i), "log"), k, v) {
            if (!strcmp(k, "step") || !strcmp(k, "tokens")) continue;
            int seen = 0;
            for (size_t j = 0; j < json_array_size(series); j++) seen |= !strcmp(json_string_value(json_array_get(series, j)), k);
            if (!seen) json_array_append_new(series, json_string(k));
        }
    }
    int np = (int)json_array_size(series);
    if (!np || !ni) {
        json_decref(series);
        return 0;
    }
    legend_entry *le = xcalloc(ni + 1, sizeof *le);
    for (size_t i = 0; i < ni; i++) le[i] = (legend_entry){hx_json_str(json_array_get(inst, i), "label"), arm_colour((int)i), RP_CIRCLE, 2};
    int cols;
    double lh = legend_height(le, (int)ni, FIG_W - 16, &cols), panel = 62, gap = 22;
    double H = 14 + np * (panel + gap) + lh + 6;
    rp_canvas c;
    char *st_slug = slug(hx_json_str(st, "stage")), *fname = xstrfmt("train-%s", st_slug);
    free(st_slug);
    rp_cv_begin(&c, fmt, out, fname, FIG_W, H);
    char *title = xstrfmt("Training: stage %s (%s), train_log.jsonl", hx_json_str(st, "stage"), hx_json_str(st, "kind") ? hx_json_str(st, "kind") : "?");
    rp_cv_text(&c, 8, 10, title, FS_TITLE, RP_LEFT, 0, "class=\"title\"");
    free(title);
    for (int s = 0; s < np; s++) {
        const char *q = json_string_value(json_array_get(series, s));
        double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
        for (size_t i = 0; i < ni; i++) {
            json_t *log = json_object_get(json_array_get(inst, i), "log"), *xs = json_object_get(log, "step"), *ys = json_object_get(log, q);
            for (size_t j = 0; j < json_array_size(ys) && j < json_array_size(xs); j++) {
                json_t *yv = json_array_get(ys, j), *xv = json_array_get(xs, j);
                if (!json_is_number(yv) || !json_is_number(xv) || !isfinite(json_number_value(yv))) continue;
                x0 = fmin(x0, json_number_value(xv)), x1 = fmax(x1, json_number_value(xv));
                y0 = fmin(y0, json_number_value(yv)), y1 = fmax(y1, json_number_value(yv));
            }
        }
        if (!(x1 >= x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
        double xs_ = nice_range(&x0, &x1, 4), ys_ = nice_range(&y0, &y1, 3);
        plot p = {42, 14 + s * (panel + gap), FIG_W - 42 - 10, panel, x0, x1, y0, y1};
        char *pname = xstrfmt("%s-%s", fname, q);
        axes(&c, &p, xs_, ys_, s == np - 1 ? "step" : NULL, q, pname);
        free(pname);
        for (size_t i = 0; i < ni; i++) {
            json_t *log = json_object_get(json_array_get(inst, i), "log"), *xs = json_object_get(log, "step"), *ys = json_object_get(log, q);
            size_t m = json_array_size(ys) < json_array_size(xs) ? json_array_size(ys) : json_array_size(xs);
            double *px = xmalloc((m + 1) * sizeof *px), *py = xmalloc((m + 1) * sizeof *py);
            int k = 0;
            for (size_t j = 0; j < m; j++) {
                json_t *yv = json_array_get(ys, j), *xv = json_array_get(xs, j);
                if (!json_is_number(yv) || !json_is_number(xv) || !isfinite(json_number_value(yv))) continue;
                px[k] = PX(&p, json_number_value(xv)), py[k] = PY(&p, json_number_value(yv)), k++;
            }
            char *a = attr(le[i].text), *qa = attr(q);
            char *meta = xstrfmt("class=\"curve\" data-label=\"%s\" data-quantity=\"%s\" data-n=\"%d\"", a, qa, k);
            free(qa);
            rp_cv_polyline(&c, px, py, k, le[i].colour, 1.0, (int)(i / RP_PALETTE) % 3, meta);
            for (int j = 0; k < 3 && j < k; j++) rp_cv_mark(&c, px[j], py[j], RP_CIRCLE, 2.5, le[i].colour, NULL); /* too few to see a line */
            free(meta);
            free(a);
            free(px);
            free(py);
        }
        rp_cv_group_end(&c);
    }
    legend(&c, le, (int)ni, 8, 14 + np * (panel + gap) - 4, FIG_W - 16);
    rp_cv_end(&c);
    free(fname);
    free(le);
    json_decref(series);
    return H;
}

static void add_fig(rp_figures *f, const char *name, const char *table, hx_sbuf *b, double h)
{
    f->fig = xrealloc(f->fig, (size_t)(f->n + 1) * sizeof *f->fig);
    f->fig[f->n++] = (rp_figure){xstrdup(name), table ? xstrdup(table) : NULL, hx_sb_take(b), FIG_W, h};
}

void rp_figures_build(const json_t *report, int tikz, rp_figures *f)
{
    rp_canvas_fmt fmt = tikz ? RP_TIKZ : RP_SVG;
    memset(f, 0, sizeof *f);
    json_t *tabs = json_object_get(report, "tables");
    for (size_t i = 0; i < json_array_size(tabs); i++) {
        json_t *t = json_array_get(tabs, i);
        char *s = slug(hx_json_str(t, "name"));
        static double (*const draw[])(const json_t *, const char *, rp_canvas_fmt, hx_sbuf *) = {fig_accuracy, fig_deltas, fig_letters};
        static const char *const what[] = {"accuracy", "deltas", "letters"};
        for (int k = 0; k < 3; k++) {
            hx_sbuf b = {0};
            double h = draw[k](t, s, fmt, &b);
            if (!h) {
                hx_sb_free(&b);
                continue;
            }
            char *name = xstrfmt("%s-%s", s, what[k]);
            add_fig(f, name, hx_json_str(t, "name"), &b, h);
            free(name);
        }
        free(s);
    }
    json_t *train = json_object_get(report, "training");
    for (size_t i = 0; i < json_array_size(train); i++) {
        hx_sbuf b = {0};
        json_t *st = json_array_get(train, i);
        double h = fig_training(st, fmt, &b);
        if (!h) {
            hx_sb_free(&b);
            continue;
        }
        char *s = slug(hx_json_str(st, "stage")), *name = xstrfmt("train-%s", s);
        add_fig(f, name, NULL, &b, h);
        free(s);
        free(name);
    }
}

void rp_figures_release(rp_figures *f)
{
    for (int i = 0; i < f->n; i++) free(f->fig[i].name), free(f->fig[i].table), free(f->fig[i].text);
    free(f->fig);
    memset(f, 0, sizeof *f);
}
