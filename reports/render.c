/* render.c - a report document as Markdown, JSON, LaTeX (booktabs) or a standalone HTML page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "reports/report.h"

typedef enum { F_MD, F_TEX, F_HTML } fmt;

static const char *sget(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static const char *col_title(const char *c)
{
    static const char *const map[][2] = {
        {"ll_acc", "LL acc"}, {"gen_acc", "Gen acc"}, {"gap", "Gap (pp)"}, {"retention", "Retention (gen)"},
        {"ll_retention", "LL retention"}, {"gen_retention", "Gen retention"}, {"ll_acc_norm", "LL acc_norm"},
        {"gen_em", "Gen EM"}, {"gen_invalid", "Gen invalid"}, {"chance", "Chance"}, {"n", "n"},
        {"mcnemar_p", "p (LL vs gen)"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], c)) return map[i][1];
    return c;
}

/* Accuracies in percent with one decimal, the gap in signed percentage points, retention in percent. */
static char *fmt_num(const char *col, double v)
{
    if (!strcmp(col, "n")) return xstrfmt("%.0f", v);
    if (!strcmp(col, "mcnemar_p")) return xstrfmt("%.3g", v);
    if (!strcmp(col, "gap")) return xstrfmt("%+.1f", 100 * v);
    if (strstr(col, "retention")) return xstrfmt("%.1f%%", 100 * v);
    return xstrfmt("%.1f", 100 * v);
}

static void put_esc(FILE *f, fmt F, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (F == F_HTML && (c == '<' || c == '>' || c == '&' || c == '"'))
            fputs(c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : "&quot;", f);
        else if (F == F_TEX && strchr("&%$#_{}", c)) fprintf(f, "\\%c", c);
        else if (F == F_TEX && (c == '~' || c == '^' || c == '\\'))
            fputs(c == '~' ? "\\textasciitilde{}" : c == '^' ? "\\textasciicircum{}" : "\\textbackslash{}", f);
        else if (F == F_MD && c == '|') fputs("\\|", f);
        else fputc(c, f);
    }
}

/* One cell: value and, where there is one, its 95% interval. */
static char *cell(const json_t *row, const char *col, fmt F)
{
    json_t *v = json_object_get(json_object_get(row, "values"), col);
    if (!json_is_number(v)) return xstrdup(F == F_TEX ? "--" : "n/a");
    char *s = fmt_num(col, json_number_value(v));
    json_t *ci = json_object_get(json_object_get(row, "ci"), col);
    if (json_array_size(ci) == 2) {
        char *lo = fmt_num(col, json_number_value(json_array_get(ci, 0)));
        char *hi = fmt_num(col, json_number_value(json_array_get(ci, 1)));
        char *t = F == F_TEX ? xstrfmt("%s {\\scriptsize[%s, %s]}", s, lo, hi)
                  : F == F_HTML ? xstrfmt("%s <small>[%s, %s]</small>", s, lo, hi)
                                : xstrfmt("%s [%s, %s]", s, lo, hi);
        free(lo);
        free(hi);
        free(s);
        s = t;
    }
    if (F == F_TEX) { /* % of retention must be escaped */
        char *p = strchr(s, '%');
        if (p) {
            char *t = xstrfmt("%.*s\\%s", (int)(p - s), s, p);
            free(s);
            s = t;
        }
    }
    return s;
}

static void table_text(FILE *f, fmt F, const json_t *t)
{
    json_t *rank = json_object_get(t, "ranking"), *rev = json_object_get(t, "reversals");
    const char *li = F == F_HTML ? "<li>" : F == F_TEX ? "\\item " : "- ";
    const char *le = F == F_HTML ? "</li>\n" : "\n";
    if (F == F_HTML) fputs("<ul>\n", f);
    if (F == F_TEX && (json_is_object(rank) || json_array_size(json_object_get(t, "notes")))) fputs("\\begin{itemize}\n", f);
    if (json_is_object(rank)) {
        for (int k = 0; k < 2; k++) {
            json_t *a = json_object_get(rank, k ? "gen" : "ll");
            fprintf(f, "%sRanking by %s: ", li, k ? "generation" : "log-likelihood");
            for (size_t i = 0; i < json_array_size(a); i++) {
                if (i) fputs(F == F_HTML ? " &gt; " : F == F_TEX ? " $>$ " : " > ", f);
                json_t *tied = json_array_get(a, i);
                for (size_t j = 0; j < json_array_size(tied); j++) {
                    if (j) fputs(" = ", f);
                    put_esc(f, F, json_string_value(json_array_get(tied, j)));
                }
            }
            if (k) fprintf(f, " (Kendall tau-b %.2f)", json_number_value(json_object_get(rank, "kendall_tau")));
            fputs(le, f);
        }
        if (!json_array_size(rev)) fprintf(f, "%sNo ranking reversal between log-likelihood and generation.%s", li, le);
        for (size_t i = 0; i < json_array_size(rev); i++) {
            json_t *e = json_array_get(rev, i), *ll = json_object_get(e, "ll"), *gen = json_object_get(e, "gen");
            double l0 = json_number_value(json_array_get(ll, 0)), l1 = json_number_value(json_array_get(ll, 1));
            double g0 = json_number_value(json_array_get(gen, 0)), g1 = json_number_value(json_array_get(gen, 1));
            const char *a = sget(e, "a"), *b = sget(e, "b");
            fprintf(f, "%s%s: ", li, F == F_MD ? "**Ranking reversal**" : F == F_TEX ? "\\textbf{Ranking reversal}" : "<b>Ranking reversal</b>");
            put_esc(f, F, a);
            fputs(" vs ", f);
            put_esc(f, F, b);
            fprintf(f, ": log-likelihood prefers ");
            put_esc(f, F, l0 > l1 ? a : b);
            fprintf(f, " (%.1f vs %.1f", 100 * (l0 > l1 ? l0 : l1), 100 * (l0 > l1 ? l1 : l0));
            if (json_is_number(json_object_get(e, "ll_p"))) fprintf(f, ", McNemar p = %.3g", json_number_value(json_object_get(e, "ll_p")));
            fprintf(f, "), generation prefers ");
            put_esc(f, F, g0 > g1 ? a : b);
            fprintf(f, " (%.1f vs %.1f", 100 * (g0 > g1 ? g0 : g1), 100 * (g0 > g1 ? g1 : g0));
            if (json_is_number(json_object_get(e, "gen_p"))) fprintf(f, ", McNemar p = %.3g", json_number_value(json_object_get(e, "gen_p")));
            fprintf(f, ")%s", le);
        }
    }
    json_t *notes = json_object_get(t, "notes");
    for (size_t i = 0; i < json_array_size(notes); i++) {
        fputs(li, f);
        put_esc(f, F, json_string_value(json_array_get(notes, i)));
        fputs(le, f);
    }
    if (F == F_HTML) fputs("</ul>\n", f);
    if (F == F_TEX && (json_is_object(rank) || json_array_size(notes))) fputs("\\end{itemize}\n", f);
}

static void table_title(FILE *f, fmt F, const json_t *t)
{
    put_esc(f, F, sget(t, "name"));
    fputs(F == F_TEX ? ": stage \\texttt{" : ": stage ", f);
    put_esc(f, F, sget(t, "stage"));
    if (F == F_TEX) fputs("}", f);
    fprintf(f, ", split %s, %s", sget(t, "split"), sget(t, "task") ? "task " : "all tasks");
    if (sget(t, "task")) put_esc(f, F, sget(t, "task"));
    fputs(F == F_TEX ? "; accuracies in \\%, 95\\% intervals (Wilson; gap: paired bootstrap)"
                     : "; accuracies in %, 95% intervals (Wilson; gap: paired bootstrap)", f);
}

static void render_table(FILE *f, fmt F, const json_t *t)
{
    json_t *cols = json_object_get(t, "columns"), *rows = json_object_get(t, "rows");
    const char *axis = sget(t, "rows_axis");
    size_t nc = json_array_size(cols);
    if (F == F_MD) {
        fputs("\n## ", f);
        table_title(f, F, t);
        fprintf(f, "\n\n| %s |", axis ? axis : "instance");
        for (size_t c = 0; c < nc; c++) fprintf(f, " %s |", col_title(json_string_value(json_array_get(cols, c))));
        fputs("\n|---|", f);
        for (size_t c = 0; c < nc; c++) fputs("---:|", f);
        fputs("\n", f);
    } else if (F == F_TEX) {
        fputs("\n\\begin{table}[t]\n\\centering\n\\caption{", f);
        table_title(f, F, t);
        fputs("}\n\\begin{tabular}{l", f);
        for (size_t c = 0; c < nc; c++) fputs("r", f);
        fputs("}\n\\toprule\n", f);
        put_esc(f, F, axis ? axis : "instance");
        for (size_t c = 0; c < nc; c++) fprintf(f, " & %s", col_title(json_string_value(json_array_get(cols, c))));
        fputs(" \\\\\n\\midrule\n", f);
    } else {
        fputs("<h2>", f);
        table_title(f, F, t);
        fputs("</h2>\n<table>\n<tr><th>", f);
        put_esc(f, F, axis ? axis : "instance");
        fputs("</th>", f);
        for (size_t c = 0; c < nc; c++) fprintf(f, "<th>%s</th>", col_title(json_string_value(json_array_get(cols, c))));
        fputs("</tr>\n", f);
    }
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r);
        int teacher = json_is_true(json_object_get(row, "teacher"));
        const char *label = sget(row, "label");
        if (F == F_MD) {
            fputs("| ", f);
            if (teacher) fputs("*", f);
            put_esc(f, F, label);
            fputs(teacher ? "* |" : " |", f);
        } else if (F == F_TEX) {
            if (teacher) fputs("\\textit{", f);
            put_esc(f, F, label);
            if (teacher) fputs("}", f);
        } else {
            fprintf(f, "<tr%s><td>", teacher ? " class=\"teacher\"" : "");
            put_esc(f, F, label);
            fputs("</td>", f);
        }
        for (size_t c = 0; c < nc; c++) {
            char *s = cell(row, json_string_value(json_array_get(cols, c)), F);
            fprintf(f, F == F_MD ? " %s |" : F == F_TEX ? " & %s" : "<td>%s</td>", s);
            free(s);
        }
        fputs(F == F_MD ? "\n" : F == F_TEX ? " \\\\\n" : "</tr>\n", f);
        if (F == F_TEX && teacher && r + 1 < json_array_size(rows)) fputs("\\midrule\n", f);
    }
    if (F == F_TEX) fputs("\\bottomrule\n\\end{tabular}\n\\end{table}\n", f);
    if (F == F_HTML) fputs("</table>\n", f);
    if (F == F_MD) fputs("\n", f);
    table_text(f, F, t);
}

int rp_render(const json_t *report, const char *format, char **out)
{
    *out = NULL;
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
    else return error("unknown report format '%s' (md, json, tex or html)", format);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return error("report: out of memory");
    const char *recipe = sget(report, "recipe") ? sget(report, "recipe") : "?", *id = sget(report, "run_id");
    const char *status = sget(report, "status") ? sget(report, "status") : "?";
    if (F == F_MD) {
        fputs("# Report: ", f);
        put_esc(f, F, recipe);
        fprintf(f, "\n\nRun `%s` (%s), started %s.\n", id ? id : "?", status, sget(report, "started") ? sget(report, "started") : "?");
    } else if (F == F_TEX) {
        fputs("% hx report: ", f);
        fprintf(f, "%s, run %s (%s); needs \\usepackage{booktabs}\n", recipe, id ? id : "?", status);
    } else {
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hx report: ", f);
        put_esc(f, F, recipe);
        fputs("</title>\n<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
              "td,th{padding:.3em .8em;border-bottom:1px solid #ccc;text-align:right}td:first-child,th:first-child"
              "{text-align:left}tr.teacher{font-style:italic;background:#f4f4f4}small{color:#666}</style></head><body>\n"
              "<h1>Report: ", f);
        put_esc(f, F, recipe);
        fprintf(f, "</h1>\n<p>Run <code>%s</code> (%s), started %s.</p>\n", id ? id : "?", status,
                sget(report, "started") ? sget(report, "started") : "?");
    }
    json_t *tabs = json_object_get(report, "tables");
    for (size_t i = 0; i < json_array_size(tabs); i++) render_table(f, F, json_array_get(tabs, i));
    if (!json_array_size(tabs)) fputs(F == F_HTML ? "<p>No tables: the run has no eval stage.</p>\n" : "\nNo tables: the run has no eval stage.\n", f);
    if (F == F_HTML) fputs("</body></html>\n", f);
    fclose(f);
    *out = buf;
    return 0;
}
