/* render.c - a report document as Markdown, JSON, LaTeX (booktabs), a standalone HTML page (tables with the figures
 * inline), CSV, SVG or PGF/TikZ: the tables with their intervals, rankings and reversals, n/a reasons, the letter
 * distributions; the figures come from figure.c, the CSV from csv.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "reports/canvas.h"
#include "reports/report.h"

typedef enum { F_MD, F_TEX, F_HTML } fmt;


/* Column titles and number formats: one row per column a table may show. */
typedef enum { K_RATE, K_PP, K_PCT, K_P, K_COUNT } kind;
static const struct {
    const char *col, *title;
    kind k;
    int paired; /* a statistic against the teacher: "—" in the teacher's row */
} cols_fmt[] = {
    {"ll_acc", "LL acc", K_RATE, 0},
    {"delta_ll", "Δ LL vs teacher", K_PP, 1},
    {"gen_acc", "Gen acc", K_RATE, 0},
    {"delta_gen", "Δ Gen vs teacher", K_PP, 1},
    {"did", "Δgen − ΔLL", K_PP, 1},
    {"did_p", "p (did)", K_P, 1},
    {"gap", "LL − gen within (norm.)", K_PP, 0},
    {"ll_retention", "LL retention", K_PCT, 1},
    {"gen_retention", "Gen retention", K_PCT, 1},
    {"ll_cn", "LL acc (norm.)", K_RATE, 0},
    {"gen_cn", "Gen acc (norm.)", K_RATE, 0},
    {"gap_raw", "LL − gen within (raw)", K_PP, 0},
    {"delta_ll_raw", "Δ LL raw", K_PP, 1},
    {"delta_gen_raw", "Δ Gen raw", K_PP, 1},
    {"ll_acc_norm", "LL acc_norm", K_RATE, 0},
    {"gen_em", "Gen EM", K_RATE, 0},
    {"gen_invalid", "Gen invalid", K_RATE, 0},
    {"chance", "Chance (LL)", K_RATE, 0},
    {"gen_chance", "Chance (gen)", K_RATE, 0},
    {"n", "n", K_COUNT, 0},
    {"n_paired", "n paired", K_COUNT, 1},
    {"mcnemar_p", "p (LL vs gen)", K_P, 0},
    {"did_diff", "did difference", K_PP, 1}, /* of an interaction, in the text */
};

static int col_index(const char *c)
{
    for (size_t i = 0; i < sizeof cols_fmt / sizeof cols_fmt[0]; i++)
        if (!strcmp(cols_fmt[i].col, c)) return (int)i;
    return -1;
}

static const char *col_title(const char *c) { return col_index(c) >= 0 ? cols_fmt[col_index(c)].title : c; }

/* Accuracies in percent with one decimal, differences in signed percentage points, retention in percent. */
static char *fmt_num(const char *col, double v)
{
    int i = col_index(col);
    switch (i >= 0 ? cols_fmt[i].k : K_RATE) {
    case K_COUNT: return xstrfmt("%.0f", v);
    case K_P: return xstrfmt("%.3g", v);
    case K_PP: return xstrfmt("%+.1f", 100 * v);
    case K_PCT: return xstrfmt("%.1f%%", 100 * v);
    default: return xstrfmt("%.1f", 100 * v);
    }
}

/* S escaped for the format: HTML and LaTeX through canvas.c's escapes (the figures use the same), '|' for Markdown. */
static void put_esc(FILE *f, fmt F, const char *s)
{
    if (F == F_HTML || F == F_TEX) {
        hx_sbuf b = {0};
        (F == F_HTML ? rp_xml_escape : rp_tex_escape)(&b, s);
        if (b.s) fputs(b.s, f);
        hx_sb_free(&b);
        return;
    }
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else fputc(*s, f);
    }
}

/* One cell's text (unescaped): value and, where there is one, its 95% interval; "—" for a statistic against the
 * teacher in the teacher's own row, "n/a" for any other missing value (the notes say why). xmalloc'd. */
static char *cell(const json_t *row, const char *col)
{
    json_t *v = json_object_get(row, col);
    if (!json_is_number(v)) {
        int i = col_index(col);
        return xstrdup(json_is_true(json_object_get(row, "teacher")) && i >= 0 && cols_fmt[i].paired ? "—" : "n/a");
    }
    char *s = fmt_num(col, json_number_value(v)), *cik = xstrfmt("%s_ci", col);
    json_t *ci = json_object_get(row, cik);
    free(cik);
    if (json_array_size(ci) == 2) {
        json_t *l = json_array_get(ci, 0), *h = json_array_get(ci, 1);
        char *lo = json_is_number(l) ? fmt_num(col, json_number_value(l)) : xstrdup("-inf");
        char *hi = json_is_number(h) ? fmt_num(col, json_number_value(h)) : xstrdup("+inf");
        char *t = xstrfmt("%s [%s, %s]", s, lo, hi);
        free(lo);
        free(hi);
        free(s);
        s = t;
    }
    return s;
}

char *rp_cell(const json_t *row, const char *col) { return cell(row, col); }

/* ---- a grid: one table in the format, cells already text ---- */

static void grid_begin(FILE *f, fmt F, int ncols, const char *align)
{
    if (F == F_TEX) fprintf(f, "\\begin{tabular}{%s}\n\\toprule\n", align);
    else if (F == F_HTML) fputs("<table>\n", f);
    (void)ncols;
}

/* A row of n cells; header: the header row (md adds the rule under it); italic: the teacher's row. */
static void grid_row(FILE *f, fmt F, const char *const *cells, int n, int header, int italic, const char *align)
{
    if (F == F_HTML) fprintf(f, "<tr%s>", italic ? " class=\"teacher\"" : "");
    for (int i = 0; i < n; i++) {
        if (F == F_MD) fputs(i ? " " : "| ", f);
        else if (F == F_TEX && i) fputs(" & ", f);
        else if (F == F_HTML) fputs(header ? "<th>" : "<td>", f);
        int it = italic && !i;
        if (it) fputs(F == F_MD ? "*" : F == F_TEX ? "\\textit{" : "", f);
        if (F == F_HTML && !header) { /* the interval in small type */
            const char *br = strstr(cells[i], " [");
            if (br) {
                char *head = xstrfmt("%.*s", (int)(br - cells[i]), cells[i]);
                put_esc(f, F, head);
                fputs(" <small>", f);
                put_esc(f, F, br + 1);
                fputs("</small>", f);
                free(head);
            } else {
                put_esc(f, F, cells[i]);
            }
        } else {
            put_esc(f, F, cells[i]);
        }
        if (it) fputs(F == F_MD ? "*" : F == F_TEX ? "}" : "", f);
        if (F == F_MD) fputs(" |", f);
        else if (F == F_HTML) fputs(header ? "</th>" : "</td>", f);
    }
    fputs(F == F_MD ? "\n" : F == F_TEX ? " \\\\\n" : "</tr>\n", f);
    if (header && F == F_MD) {
        fputs("|", f);
        for (int i = 0; i < n; i++) fputs(align[i] == 'r' ? "---:|" : "---|", f);
        fputs("\n", f);
    }
    if (header && F == F_TEX) fputs("\\midrule\n", f);
}

static void grid_end(FILE *f, fmt F)
{
    if (F == F_TEX) fputs("\\bottomrule\n\\end{tabular}\n", f);
    else if (F == F_HTML) fputs("</table>\n", f);
    else fputs("\n", f);
}

static void item(FILE *f, fmt F, int start)
{
    if (start) fputs(F == F_HTML ? "<li>" : F == F_TEX ? "\\item " : "- ", f);
    else fputs(F == F_HTML ? "</li>\n" : "\n", f);
}

static void bold(FILE *f, fmt F, const char *s)
{
    fputs(F == F_MD ? "**" : F == F_TEX ? "\\textbf{" : "<b>", f);
    put_esc(f, F, s);
    fputs(F == F_MD ? "**" : F == F_TEX ? "}" : "</b>", f);
}

/* "a vs b: log-likelihood prefers a (75.0 vs 60.0), generation prefers b (50.0 vs 30.0); did(b) - did(a) = ..." */
static void interaction_text(FILE *f, fmt F, const json_t *e)
{
    json_t *ll = json_object_get(e, "ll"), *gen = json_object_get(e, "gen");
    double l0 = json_number_value(json_array_get(ll, 0)), l1 = json_number_value(json_array_get(ll, 1));
    double g0 = json_number_value(json_array_get(gen, 0)), g1 = json_number_value(json_array_get(gen, 1));
    const char *a = hx_json_str(e, "a"), *b = hx_json_str(e, "b");
    char *t = xstrfmt("%s vs %s: log-likelihood prefers %s (%.1f vs %.1f), generation prefers %s (%.1f vs %.1f)", a, b,
                      l0 > l1 ? a : b, 100 * (l0 > l1 ? l0 : l1), 100 * (l0 > l1 ? l1 : l0), g0 > g1 ? a : b,
                      100 * (g0 > g1 ? g0 : g1), 100 * (g0 > g1 ? g1 : g0));
    put_esc(f, F, t);
    free(t);
    if (json_is_number(json_object_get(e, "did_diff"))) {
        char *c = cell(e, "did_diff");
        t = xstrfmt("; interaction did(%s) − did(%s) = %s pp, bootstrap p = %.3g, Holm p = %.3g", b, a, c,
                    json_number_value(json_object_get(e, "p")), json_number_value(json_object_get(e, "p_holm")));
        put_esc(f, F, t);
        free(t);
        free(c);
    } else {
        put_esc(f, F, "; interaction not computed (no paired items)");
    }
}

/* The n/a reasons of the shown columns, one line per (column, reason) with the rows it applies to. */
static void na_notes(FILE *f, fmt F, const json_t *t)
{
    json_t *cols = json_object_get(t, "columns"), *rows = json_object_get(t, "rows"), *seen = json_object();
    for (size_t c = 0; c < json_array_size(cols); c++) {
        const char *col = json_string_value(json_array_get(cols, c));
        json_t *by = json_object(); /* reason -> "label, label" */
        for (size_t r = 0; r < json_array_size(rows); r++) {
            json_t *row = json_array_get(rows, r);
            const char *why = hx_json_str(json_object_get(row, "na"), col);
            int ci = col_index(col), dash = json_is_true(json_object_get(row, "teacher")) && ci >= 0 && cols_fmt[ci].paired;
            if (!why || json_is_number(json_object_get(row, col)) || dash) continue;
            const char *prev = hx_json_str(by, why);
            char *labels = prev ? xstrfmt("%s, %s", prev, hx_json_str(row, "label")) : xstrdup(hx_json_str(row, "label"));
            json_object_set_new(by, why, json_string(labels));
            free(labels);
        }
        const char *why;
        json_t *labels;
        json_object_foreach(by, why, labels) {
            char *line = xstrfmt("%s n/a (%s): %s", col_title(col), json_string_value(labels), why);
            if (!json_object_get(seen, line)) {
                item(f, F, 1);
                put_esc(f, F, line);
                item(f, F, 0);
                json_object_set_new(seen, line, json_true());
            }
            free(line);
        }
        json_decref(by);
    }
    json_decref(seen);
}

static void table_text(FILE *f, fmt F, const json_t *t)
{
    json_t *rank = json_object_get(t, "ranking"), *rev = json_object_get(t, "reversals");
    json_t *notes = json_object_get(t, "notes"), *largest = json_object_get(t, "largest_nonsignificant_reversal");
    if (F == F_HTML) fputs("<ul>\n", f);
    if (F == F_TEX) fputs("\\begin{itemize}\n", f);
    if (json_is_object(rank)) {
        for (int k = 0; k < 2; k++) {
            json_t *a = json_object_get(rank, k ? "gen" : "ll");
            item(f, F, 1);
            fprintf(f, "Ranking by %s: ", k ? "generation" : "log-likelihood");
            for (size_t i = 0; i < json_array_size(a); i++) {
                if (i) fputs(F == F_HTML ? " &gt; " : F == F_TEX ? " $>$ " : " > ", f);
                json_t *tied = json_array_get(a, i);
                for (size_t j = 0; j < json_array_size(tied); j++) {
                    if (j) fputs(" = ", f);
                    put_esc(f, F, json_string_value(json_array_get(tied, j)));
                }
            }
            json_t *tau = json_object_get(rank, "kendall_tau");
            if (k && json_is_number(tau)) fprintf(f, " (Kendall tau-b %.2f)", json_number_value(tau));
            else if (k) fputs(" (Kendall tau-b undefined: every arm tied under one of the measures)", f);
            item(f, F, 0);
        }
        long np = (long)json_integer_value(json_object_get(t, "n_pairs"));
        for (size_t i = 0; i < json_array_size(rev); i++) {
            item(f, F, 1);
            bold(f, F, "Ranking reversal");
            fprintf(f, " (significant after Holm over %ld pair%s): ", np, np == 1 ? "" : "s");
            interaction_text(f, F, json_array_get(rev, i));
            item(f, F, 0);
        }
        if (!json_array_size(rev)) {
            item(f, F, 1);
            if (json_is_object(largest)) {
                fprintf(f, "No significant ranking reversal (interaction tested by paired bootstrap, Holm over %ld pair%s); "
                           "the largest non-significant one: ", np, np == 1 ? "" : "s");
                interaction_text(f, F, largest);
            } else {
                fputs("No ranking reversal between log-likelihood and generation.", f);
            }
            item(f, F, 0);
        }
    }
    na_notes(f, F, t);
    for (size_t i = 0; i < json_array_size(notes); i++) {
        item(f, F, 1);
        put_esc(f, F, json_string_value(json_array_get(notes, i)));
        item(f, F, 0);
    }
    if (F == F_HTML) fputs("</ul>\n", f);
    if (F == F_TEX) fputs("\\end{itemize}\n", f);
}

static void table_title(FILE *f, fmt F, const json_t *t)
{
    put_esc(f, F, hx_json_str(t, "name"));
    fputs(F == F_TEX ? ": stage \\texttt{" : ": stage ", f);
    put_esc(f, F, hx_json_str(t, "stage"));
    if (F == F_TEX) fputs("}", f);
    fprintf(f, ", split %s, %s", hx_json_str(t, "split"), hx_json_str(t, "task") ? "task " : "all tasks");
    if (hx_json_str(t, "task")) put_esc(f, F, hx_json_str(t, "task"));
    put_esc(f, F, "; accuracies in %, 95% intervals (Wilson); Δ (pp), did, gap and retention on chance-normalised "
                  "accuracy, paired bootstrap 95% intervals over the items shared with the teacher");
}

/* "12/10/14/12" of a letter-count object over the letter names. xmalloc'd. */
static char *counts_text(const json_t *names, const json_t *counts)
{
    hx_sbuf b = {0};
    for (size_t i = 0; i < json_array_size(names); i++)
        hx_sb_printf(&b, "%s%lld", i ? "/" : "", (long long)json_integer_value(json_object_get(counts, json_string_value(json_array_get(names, i)))));
    return b.s ? hx_sb_take(&b) : xstrdup("");
}

/* Positional collapse: letter distributions of every model on the table's lettered items. */
static void letters_table(FILE *f, fmt F, const json_t *t)
{
    json_t *rows = json_object_get(t, "rows");
    int any = 0;
    for (size_t r = 0; r < json_array_size(rows); r++) any |= json_is_object(json_object_get(json_array_get(rows, r), "letters"));
    if (!any) return;
    static const char *const head[] = {"model", "n", "gold", "LL pred", "gen pred", "invalid", "top gen letter",
                                       "letter TV (gen)", "letter TV (LL)"};
    static const char align[] = "lrlllrlrr";
    const char *names = "";
    for (size_t r = 0; r < json_array_size(rows) && !*names; r++) {
        json_t *l = json_object_get(json_object_get(json_array_get(rows, r), "letters"), "letters");
        if (json_array_size(l)) names = json_string_value(json_array_get(l, json_array_size(l) - 1));
    }
    char *intro = xstrfmt("Letters on the lettered items (mcq, cloze; counts of A..%s): positional collapse shows as "
                          "one letter taking most predictions; letter TV = total variation distance to the gold letters",
                          names);
    if (F == F_MD) fputs("\n", f);
    if (F == F_HTML) fputs("<p>", f);
    if (F == F_TEX) fputs("\n\\begin{table}[t]\n\\centering\n\\caption{", f);
    put_esc(f, F, intro);
    fputs(F == F_HTML ? "</p>\n" : F == F_TEX ? "}\n" : "\n\n", f);
    free(intro);
    grid_begin(f, F, 9, align);
    grid_row(f, F, head, 9, 1, 0, align);
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r), *l = json_object_get(row, "letters");
        if (!json_is_object(l)) continue;
        json_t *nm = json_object_get(l, "letters");
        char *c[9];
        c[0] = xstrdup(hx_json_str(row, "label"));
        c[1] = xstrfmt("%lld", (long long)json_integer_value(json_object_get(l, "n")));
        c[2] = counts_text(nm, json_object_get(l, "gold"));
        c[3] = counts_text(nm, json_object_get(l, "ll"));
        c[4] = counts_text(nm, json_object_get(l, "gen"));
        c[5] = xstrfmt("%lld (%.1f%%)", (long long)json_integer_value(json_object_get(l, "invalid")),
                       100 * json_number_value(json_object_get(l, "invalid_share")));
        c[6] = hx_json_str(l, "top") ? xstrfmt("%s (%.1f%%)", hx_json_str(l, "top"), 100 * json_number_value(json_object_get(l, "top_share")))
                              : xstrdup("none");
        c[7] = xstrfmt("%.2f", json_number_value(json_object_get(l, "letter_tv")));
        c[8] = xstrfmt("%.2f", json_number_value(json_object_get(l, "ll_letter_tv")));
        grid_row(f, F, (const char *const *)c, 9, 0, json_is_true(json_object_get(row, "teacher")), align);
        for (int i = 0; i < 9; i++) free(c[i]);
    }
    grid_end(f, F);
    if (F == F_TEX) fputs("\\end{table}\n", f);
}

/* The figures of table NAME (NULL: the training figures), inline in the HTML page. */
static void html_figures(FILE *f, const rp_figures *figs, const char *name)
{
    for (int i = 0; i < figs->n; i++) {
        const rp_figure *g = &figs->fig[i];
        if (name ? !g->table || strcmp(g->table, name) : !!g->table) continue;
        fprintf(f, "<figure data-name=\"%s\">\n%s</figure>\n", g->name, g->text);
    }
}

static void render_table(FILE *f, fmt F, const json_t *t, const rp_figures *figs)
{
    json_t *cols = json_object_get(t, "columns"), *rows = json_object_get(t, "rows");
    const char *axis = hx_json_str(t, "rows_axis");
    int nc = (int)json_array_size(cols);
    const char **cells = xcalloc((size_t)nc + 1, sizeof *cells);
    char *align = xmalloc((size_t)nc + 2);
    align[0] = 'l';
    for (int c = 0; c < nc; c++) align[c + 1] = 'r';
    align[nc + 1] = 0;
    if (F == F_MD) fputs("\n## ", f);
    else if (F == F_TEX) fputs("\n\\begin{table}[t]\n\\centering\n\\caption{", f);
    else fputs("<h2>", f);
    table_title(f, F, t);
    fputs(F == F_MD ? "\n\n" : F == F_TEX ? "}\n" : "</h2>\n", f);
    grid_begin(f, F, nc + 1, align);
    cells[0] = axis ? axis : "instance";
    for (int c = 0; c < nc; c++) cells[c + 1] = col_title(json_string_value(json_array_get(cols, c)));
    grid_row(f, F, cells, nc + 1, 1, 0, align);
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r);
        char **own = xcalloc((size_t)nc + 1, sizeof *own);
        cells[0] = hx_json_str(row, "label");
        for (int c = 0; c < nc; c++) cells[c + 1] = own[c] = cell(row, json_string_value(json_array_get(cols, c)));
        int teacher = json_is_true(json_object_get(row, "teacher"));
        grid_row(f, F, cells, nc + 1, 0, teacher, align);
        if (F == F_TEX && teacher && r + 1 < json_array_size(rows)) fputs("\\midrule\n", f);
        for (int c = 0; c < nc; c++) free(own[c]);
        free(own);
    }
    grid_end(f, F);
    if (F == F_TEX) fputs("\\end{table}\n", f);
    table_text(f, F, t);
    letters_table(f, F, t);
    if (F == F_HTML) html_figures(f, figs, hx_json_str(t, "name"));
    free(cells);
    free(align);
}

/* The pre-registered findings (rp_findings): preconditions, then one row per finding with its verdict. */
static void render_findings(FILE *f, fmt F, const json_t *fd)
{
    if (!fd) return;
    const char *err = hx_json_str(fd, "error");
    if (F == F_MD) fputs("\n## Findings (docs/results.md)\n\n", f);
    else if (F == F_TEX) fputs("\n% findings (docs/results.md)\n\\begin{tabular}{llp{9cm}l}\n\\toprule\nid & finding & numbers & verdict \\\\\n\\midrule\n", f);
    else fputs("<h2>Findings (docs/results.md)</h2>\n", f);
    if (err) {
        if (F == F_TEX) fputs("\\bottomrule\n\\end{tabular}\n% ", f);
        fputs(F == F_HTML ? "<p>Not computed: " : "Not computed: ", f);
        put_esc(f, F, err);
        fputs(F == F_HTML ? "</p>\n" : "\n", f);
        return;
    }
    if (F == F_MD) fputs("| id | test / finding | numbers (95% intervals) | verdict |\n|---|---|---|---|\n", f);
    else if (F == F_HTML) fputs("<table><tr><th>id</th><th>test / finding</th><th>numbers (95% intervals)</th><th>verdict</th></tr>\n", f);
    for (int part = 0; part < 2; part++) {
        const json_t *list = json_object_get(fd, part ? "findings" : "preconditions");
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o) {
            const char *cells[4] = {hx_json_str(o, "id"), hx_json_str(o, part ? "finding" : "test"), hx_json_str(o, "summary"),
                                    part ? hx_json_str(o, "verdict") : (json_is_true(json_object_get(o, "passed")) ? "passed" : "failed")};
            fputs(F == F_MD ? "|" : F == F_HTML ? "<tr>" : "", f);
            for (int c = 0; c < 4; c++) {
                if (F == F_HTML) fputs(c ? "<td>" : "<td>", f);
                else if (F == F_MD) fputc(' ', f);
                put_esc(f, F, cells[c] ? cells[c] : "");
                fputs(F == F_MD ? " |" : F == F_HTML ? "</td>" : c < 3 ? " & " : " \\\\\n", f);
            }
            fputs(F == F_MD ? "\n" : F == F_HTML ? "</tr>\n" : "", f);
        }
    }
    if (F == F_HTML) fputs("</table>\n", f);
    else if (F == F_TEX) fputs("\\bottomrule\n\\end{tabular}\n", f);
    if (!json_is_true(json_object_get(fd, "preconditions_passed")))
        fputs(F == F_HTML ? "<p>A precondition failed: every finding is inconclusive (its verdict by rule is in the JSON).</p>\n"
                          : "\nA precondition failed: every finding is inconclusive (its verdict by rule is in the JSON).\n", f);
}

static const char *const formats[] = {"md", "json", "tex", "html", "csv", "svg", "pgf", NULL};

int rp_format_known(const char *format)
{
    for (int i = 0; formats[i]; i++)
        if (!strcmp(formats[i], format)) return 1;
    return 0;
}

const char *rp_format_of_path(const char *path)
{
    static const char *const ext[][2] = {{".md", "md"}, {".json", "json"}, {".tex", "tex"}, {".html", "html"},
                                         {".csv", "csv"}, {".svg", "svg"}, {".pgf", "pgf"}, {".tikz", "pgf"}};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t m = strlen(ext[i][0]);
        if (n > m && !strcmp(path + n - m, ext[i][0])) return ext[i][1];
    }
    return NULL;
}

/* Every figure in one SVG document, stacked: each figure's <svg> nested at its offset, its size in the outer
 * document's units (points) instead of its own width/height attributes. */
static char *svg_document(const json_t *report)
{
    rp_figures figs;
    rp_figures_build(report, 0, &figs);
    double H = 0, W = 0;
    for (int i = 0; i < figs.n; i++) H += figs.fig[i].h, W = figs.fig[i].w > W ? figs.fig[i].w : W;
    hx_sbuf b = {0};
    hx_sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                     "width=\"%.1fpt\" height=\"%.1fpt\" viewBox=\"0 0 %.2f %.2f\">\n", W, H, W, H);
    double y = 0;
    for (int i = 0; i < figs.n; i++) {
        const rp_figure *g = &figs.fig[i];
        char *own = xstrfmt(" width=\"%.1fpt\" height=\"%.1fpt\"", g->w, g->h), *at = strstr(g->text, own);
        if (!at) BUG("figure %s: no width/height attributes", g->name); /* canvas.c writes exactly these */
        hx_sb_add(&b, g->text, (size_t)(at - g->text));
        hx_sb_printf(&b, " x=\"0\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", y, g->w, g->h);
        hx_sb_puts(&b, at + strlen(own));
        free(own);
        y += g->h;
    }
    if (!figs.n) hx_sb_puts(&b, "<!-- no figures: the run has no eval or training stage with data -->\n");
    hx_sb_puts(&b, "</svg>\n");
    rp_figures_release(&figs);
    return hx_sb_take(&b);
}

/* Every figure as a tikzpicture in a LaTeX document that pdflatex compiles (article + tikz only). */
static char *pgf_document(const json_t *report)
{
    rp_figures figs;
    rp_figures_build(report, 1, &figs);
    hx_sbuf b = {0};
    hx_sb_puts(&b, "% hx report: the figures of run ");
    rp_tex_escape(&b, hx_json_str(report, "run_id") ? hx_json_str(report, "run_id") : "?");
    hx_sb_puts(&b, " (recipe ");
    rp_tex_escape(&b, hx_json_str(report, "recipe") ? hx_json_str(report, "recipe") : "?");
    hx_sb_puts(&b, ").\n% pdflatex compiles it as it is; to use one figure in a paper, copy its tikzpicture (it defines "
                   "its colours)\n% and \\usepackage{tikz}. Sizes are in points for a 3.3 in column.\n"
                   "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{tikz}\n\\begin{document}\n");
    for (int i = 0; i < figs.n; i++) {
        hx_sb_puts(&b, "\n\\begin{figure}[p]\n\\centering\n");
        hx_sb_puts(&b, figs.fig[i].text);
        hx_sb_puts(&b, "\\caption{");
        rp_tex_escape(&b, figs.fig[i].name);
        hx_sb_puts(&b, "}\n\\end{figure}\n");
    }
    if (!figs.n) hx_sb_puts(&b, "No figures: the run has no eval or training stage with data.\n");
    hx_sb_puts(&b, "\\end{document}\n");
    rp_figures_release(&figs);
    return hx_sb_take(&b);
}

int rp_render(const json_t *report, const char *format, char **out)
{
    *out = NULL;
    if (!strcmp(format, "csv")) return *out = rp_csv(report), 0;
    if (!strcmp(format, "svg")) return *out = svg_document(report), 0;
    if (!strcmp(format, "pgf")) return *out = pgf_document(report), 0;
    if (!strcmp(format, "json")) {
        char *s = json_dumps(report, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        *out = xstrfmt("%s\n", s);
        free(s);
        return 0;
    }
    fmt F;
    if (!strcmp(format, "md")) F = F_MD;
    else if (!strcmp(format, "tex")) F = F_TEX;
    else if (!strcmp(format, "html")) F = F_HTML;
    else return error("unknown report format '%s' (" RP_FORMATS ")", format);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return error("report: out of memory");
    const char *recipe = hx_json_str(report, "recipe") ? hx_json_str(report, "recipe") : "?", *id = hx_json_str(report, "run_id");
    const char *status = hx_json_str(report, "status") ? hx_json_str(report, "status") : "?";
    if (F == F_MD) {
        fputs("# Report: ", f);
        put_esc(f, F, recipe);
        fprintf(f, "\n\nRun `%s` (%s), started %s.\n", id ? id : "?", status, hx_json_str(report, "started") ? hx_json_str(report, "started") : "?");
    } else if (F == F_TEX) {
        fputs("% hx report: ", f);
        fprintf(f, "%s, run %s (%s); needs \\usepackage{booktabs}\n", recipe, id ? id : "?", status);
    } else {
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hx report: ", f);
        put_esc(f, F, recipe);
        fputs("</title>\n<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
              "td,th{padding:.3em .8em;border-bottom:1px solid #ccc;text-align:right}td:first-child,th:first-child"
              "{text-align:left}tr.teacher{font-style:italic;background:#f4f4f4}small{color:#666}figure{display:inline-block;"
              "margin:1em 1em 0 0;vertical-align:top}svg.hx-figure{width:4.4in;height:auto}</style></head><body>\n"
              "<h1>Report: ", f);
        put_esc(f, F, recipe);
        fprintf(f, "</h1>\n<p>Run <code>%s</code> (%s), started %s.</p>\n", id ? id : "?", status,
                hx_json_str(report, "started") ? hx_json_str(report, "started") : "?");
    }
    rp_figures figs = {0};
    if (F == F_HTML) rp_figures_build(report, 0, &figs);
    json_t *tabs = json_object_get(report, "tables");
    for (size_t i = 0; i < json_array_size(tabs); i++) render_table(f, F, json_array_get(tabs, i), &figs);
    if (!json_array_size(tabs)) fputs(F == F_HTML ? "<p>No tables: the run has no eval stage.</p>\n" : "\nNo tables: the run has no eval stage.\n", f);
    render_findings(f, F, json_object_get(report, "findings"));
    if (F == F_HTML && json_array_size(json_object_get(report, "training"))) {
        fputs("<h2>Training curves</h2>\n<p>Every quantity of each training stage's train_log.jsonl by step, the stage's "
              "instances overlaid.</p>\n", f);
        html_figures(f, &figs, NULL);
    }
    rp_figures_release(&figs);
    if (F == F_HTML) fputs("</body></html>\n", f);
    fclose(f);
    *out = buf;
    return 0;
}

int rp_write_dir(const json_t *report, const char *dir, json_t *written)
{
    if (hx_mkdir_p(dir)) return error_prefix("report folder");
    static const struct { const char *file, *format; } pages[] = {
        {"report.md", "md"}, {"report.html", "html"}, {"report.json", "json"}, {"report.csv", "csv"},
        {"report.tex", "tex"}, {"figures.tex", "pgf"}};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        char *text, *path = hx_path_join(dir, pages[i].file);
        int rc = rp_render(report, pages[i].format, &text) || hx_write_file_atomic(path, text, strlen(text));
        if (!rc) json_array_append_new(written, json_string(path));
        free(text);
        free(path);
        if (rc) return -1;
    }
    rp_figures figs;
    rp_figures_build(report, 0, &figs);
    int rc = 0;
    for (int i = 0; i < figs.n && !rc; i++) {
        char *file = xstrfmt("%s.svg", figs.fig[i].name), *path = hx_path_join(dir, file);
        char *text = xstrfmt("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%s", figs.fig[i].text);
        rc = hx_write_file_atomic(path, text, strlen(text));
        if (!rc) json_array_append_new(written, json_string(path));
        free(text);
        free(path);
        free(file);
    }
    rp_figures_release(&figs);
    return rc;
}
