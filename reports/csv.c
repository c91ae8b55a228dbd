/* csv.c - a report document as one long-format CSV table (RFC 4180) that pandas or R reads without reshaping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "reports/report.h"

/* The row fields written as metrics, with the field of their interval and which count is their n. */
static const struct {
    const char *field;
    int paired; /* n is n_paired (a statistic against the teacher), else the row's n */
} metrics[] = {
    {"ll_acc", 0}, {"gen_acc", 0}, {"ll_cn", 0}, {"gen_cn", 0}, {"gap", 0}, {"gap_raw", 0}, {"ll_acc_norm", 0},
    {"gen_em", 0}, {"gen_invalid", 0}, {"chance", 0}, {"gen_chance", 0}, {"mcnemar_p", 0}, {"delta_ll", 1},
    {"delta_gen", 1}, {"did", 1}, {"did_p", 1}, {"ll_retention", 1}, {"gen_retention", 1}, {"delta_ll_raw", 1},
    {"delta_gen_raw", 1},
};

/* One field, quoted when it holds a comma, a quote or a line break (quotes doubled). */
static void field(hx_sbuf *b, const char *s, int last)
{
    s = s ? s : "";
    if (strpbrk(s, ",\"\r\n")) {
        hx_sb_putc(b, '"');
        for (; *s; s++) {
            if (*s == '"') hx_sb_putc(b, '"');
            hx_sb_putc(b, *s);
        }
        hx_sb_putc(b, '"');
    } else {
        hx_sb_puts(b, s);
    }
    hx_sb_puts(b, last ? "\r\n" : ",");
}

static void num_field(hx_sbuf *b, const json_t *v, int last)
{
    char buf[48];
    field(b, json_is_number(v) ? hx_json_numf(buf, "%.10g", json_number_value(v)) : "", last);
}

/* An axis value as text: strings as they are, anything else as JSON. xmalloc'd. */
static char *value_text(const json_t *v)
{
    if (!v) return xstrdup("");
    if (json_is_string(v)) return xstrdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : xstrdup("");
}

/* The lines of one report row (SEEDS: how many seeds it averages), one per metric it has. */
static void write_row(hx_sbuf *b, const json_t *report, const json_t *tab, const json_t *row, const json_t *axes, int seeds)
{
    const char *task = json_string_value(json_object_get(tab, "task"));
    json_t *rax = json_object_get(row, "axes");
    char nseeds[16];
    snprintf(nseeds, sizeof nseeds, "%d", seeds);
    for (size_t m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
        if (!json_object_get(row, metrics[m].field)) continue;
        field(b, json_string_value(json_object_get(report, "run_id")), 0);
        field(b, json_string_value(json_object_get(report, "recipe")), 0);
        field(b, json_string_value(json_object_get(tab, "name")), 0);
        field(b, json_string_value(json_object_get(row, "stage")), 0);
        for (size_t i = 0; i < json_array_size(axes); i++) {
            char *v = value_text(json_object_get(rax, json_string_value(json_array_get(axes, i))));
            field(b, v, 0);
            free(v);
        }
        field(b, json_string_value(json_object_get(row, "label")), 0);
        field(b, nseeds, 0);
        field(b, json_is_true(json_object_get(row, "teacher")) ? "true" : "false", 0);
        field(b, task ? task : "all", 0);
        field(b, json_string_value(json_object_get(tab, "split")), 0);
        field(b, metrics[m].field, 0);
        num_field(b, json_object_get(row, metrics[m].field), 0);
        char *ck = xstrfmt("%s_ci", metrics[m].field);
        json_t *ci = json_object_get(row, ck);
        free(ck);
        for (size_t e = 0; e < 2; e++) { /* a null end of an interval of a value is unbounded */
            json_t *v = json_array_get(ci, e);
            if (json_array_size(ci) == 2 && !json_is_number(v)) field(b, e ? "inf" : "-inf", 0);
            else num_field(b, v, 0);
        }
        num_field(b, json_object_get(row, metrics[m].paired ? "n_paired" : "n"), 1);
    }
}

char *rp_csv(const json_t *report)
{
    json_t *tabs = json_object_get(report, "tables"), *axes = json_array(); /* every axis of any row, first seen first */
    for (size_t t = 0; t < json_array_size(tabs); t++) {
        json_t *rows = json_object_get(json_array_get(tabs, t), "rows");
        for (size_t r = 0; r < json_array_size(rows); r++) {
            json_t *row = json_array_get(rows, r), *per = json_object_get(row, "per_seed");
            for (size_t p = 0; p <= json_array_size(per); p++) {
                const char *k;
                json_t *v;
                json_object_foreach(json_object_get(p ? json_array_get(per, p - 1) : row, "axes"), k, v) {
                    int seen = 0;
                    for (size_t i = 0; i < json_array_size(axes); i++) seen |= !strcmp(json_string_value(json_array_get(axes, i)), k);
                    if (!seen) json_array_append_new(axes, json_string(k));
                }
            }
        }
    }
    hx_sbuf b = {0};
    static const char *const head[] = {"run", "recipe", "table", "stage"};
    static const char *const tail[] = {"label", "seeds", "teacher", "task", "split", "metric", "value", "ci_lo", "ci_hi", "n"};
    for (int i = 0; i < 4; i++) field(&b, head[i], 0);
    for (size_t i = 0; i < json_array_size(axes); i++) field(&b, json_string_value(json_array_get(axes, i)), 0);
    for (int i = 0; i < 10; i++) field(&b, tail[i], i == 9);
    for (size_t t = 0; t < json_array_size(tabs); t++) {
        json_t *tab = json_array_get(tabs, t), *rows = json_object_get(tab, "rows");
        for (size_t r = 0; r < json_array_size(rows); r++) {
            json_t *row = json_array_get(rows, r), *per = json_object_get(row, "per_seed");
            write_row(&b, report, tab, row, axes, json_array_size(per) ? (int)json_array_size(per) : 1);
            for (size_t p = 0; p < json_array_size(per); p++) write_row(&b, report, tab, json_array_get(per, p), axes, 1);
        }
    }
    json_decref(axes);
    return hx_sb_take(&b);
}
