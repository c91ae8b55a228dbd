/* lmeval.c - results.json and samples_<task>.jsonl as lm-evaluation-harness 0.4.x writes them (byte for byte where
 * lm-eval's Python formatting is reproducible: json.dumps separators, float repr, sha256 of the same strings). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/lmeval.h"

char *ev_py_float(double v, char buf[32])
{
    if (isnan(v)) return strcpy(buf, "nan");
    if (isinf(v)) return strcpy(buf, v < 0 ? "-inf" : "inf");
    char e[40];
    for (int p = 1; p <= 17; p++) { /* shortest digits that round-trip, as Python's repr */
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    char digits[24];
    int nd = 0, neg = e[0] == '-';
    const char *q = e + neg;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = atoi(q + 1) + 1; /* v = 0.d1d2... * 10^decpt */
    if (v == 0) decpt = 1;
    char *o = buf;
    if (neg) *o++ = '-';
    if (decpt <= -4 || decpt > 16) {
        *o++ = digits[0];
        if (nd > 1) o += sprintf(o, ".%s", digits + 1);
        sprintf(o, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
    } else if (decpt <= 0) {
        o += sprintf(o, "0.");
        for (int i = 0; i < -decpt; i++) *o++ = '0';
        strcpy(o, digits);
    } else if (decpt >= nd) {
        o += sprintf(o, "%s", digits);
        for (int i = nd; i < decpt; i++) *o++ = '0';
        strcpy(o, ".0");
    } else {
        sprintf(o, "%.*s.%s", decpt, digits, digits + decpt);
    }
    return buf;
}

/* A JSON string as Python writes it with ensure_ascii=False. */
static void put_str(hx_sbuf *b, const char *s, size_t n)
{
    hx_sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (!e && c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", c), e = esc;
        if (e) hx_sb_puts(b, e);
        else hx_sb_add(b, (const char *)&c, 1);
    }
    hx_sb_add(b, "\"", 1);
}

static void newline(hx_sbuf *b, int indent, int depth)
{
    hx_sb_add(b, "\n", 1);
    for (int i = 0; i < indent * depth; i++) hx_sb_add(b, " ", 1);
}

static void dump(hx_sbuf *b, const json_t *o, int indent, int depth)
{
    char num[40];
    switch (json_typeof(o)) {
    case JSON_OBJECT: {
        if (!json_object_size(o)) return hx_sb_puts(b, "{}");
        hx_sb_add(b, "{", 1);
        const char *k;
        json_t *v;
        int first = 1;
        json_object_foreach((json_t *)o, k, v) {
            if (!first) hx_sb_puts(b, indent < 0 ? ", " : ",");
            if (indent >= 0) newline(b, indent, depth + 1);
            put_str(b, k, strlen(k));
            hx_sb_puts(b, ": ");
            dump(b, v, indent, depth + 1);
            first = 0;
        }
        if (indent >= 0) newline(b, indent, depth);
        return hx_sb_puts(b, "}");
    }
    case JSON_ARRAY: {
        if (!json_array_size(o)) return hx_sb_puts(b, "[]");
        hx_sb_add(b, "[", 1);
        for (size_t i = 0; i < json_array_size(o); i++) {
            if (i) hx_sb_puts(b, indent < 0 ? ", " : ",");
            if (indent >= 0) newline(b, indent, depth + 1);
            dump(b, json_array_get(o, i), indent, depth + 1);
        }
        if (indent >= 0) newline(b, indent, depth);
        return hx_sb_puts(b, "]");
    }
    case JSON_STRING: return put_str(b, json_string_value(o), json_string_length(o));
    case JSON_INTEGER: snprintf(num, sizeof num, "%lld", (long long)json_integer_value(o)); return hx_sb_puts(b, num);
    case JSON_REAL: {
        double v = json_real_value(o);
        return hx_sb_puts(b, isnan(v) ? "NaN" : isinf(v) ? (v < 0 ? "-Infinity" : "Infinity") : ev_py_float(v, num));
    }
    case JSON_TRUE: return hx_sb_puts(b, "true");
    case JSON_FALSE: return hx_sb_puts(b, "false");
    default: return hx_sb_puts(b, "null");
    }
}

char *ev_py_json(const json_t *o, int indent)
{
    hx_sbuf b = {0};
    dump(&b, o, indent, 0);
    return hx_sb_take(&b);
}

char *ev_lm_task(const ev_item *it)
{
    return strcmp(it->split, "eval") ? xstrfmt("%s_%s", it->task, it->split) : xstrdup(it->task);
}

static char *sha256_of(const char *s)
{
    char hex[65];
    hx_sha256_hex(s, strlen(s), hex);
    return xstrdup(hex);
}

/* str(x) of Python for the values lm-eval's sanitize_list turns into strings. */
static json_t *py_str_float(double v)
{
    char b[32];
    return json_string(ev_py_float(v, b));
}

/* One metric's per-sample values of one lm task, in order (lm-eval's mean and mean_stderr sum them in order). */
typedef struct acc_sum {
    double *v;
    int n;
} acc_sum;

static void add(acc_sum *a, double x)
{
    a->v = xrealloc(a->v, (size_t)(a->n + 1) * sizeof *a->v);
    a->v[a->n++] = x;
}

static double mean(const acc_sum *a)
{
    double s = 0;
    for (int i = 0; i < a->n; i++) s += a->v[i];
    return a->n ? s / a->n : 0.0;
}

static json_t *mean_of(const acc_sum *a) { return hx_json_num(mean(a)); }

/* lm_eval mean_stderr: sqrt(sum (x - mean)^2 / (n - 1)) / sqrt(n); "N/A" below two samples. */
static json_t *stderr_of(const acc_sum *a)
{
    if (a->n < 2) return json_string("N/A");
    double mu = mean(a), ss = 0;
    for (int i = 0; i < a->n; i++) ss += (a->v[i] - mu) * (a->v[i] - mu);
    return hx_json_num(sqrt(ss / (a->n - 1)) / sqrt((double)a->n));
}

/* One task's metrics and its samples file. */
typedef struct lm_task {
    char *name;
    acc_sum acc, acc_norm, gen_acc;
    int has_norm, wrapped, n;
    hx_sbuf samples, hashes;
} lm_task;

static lm_task *task_of(lm_task **v, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*v)[i].name, name)) return &(*v)[i];
    *v = xrealloc(*v, (size_t)(*n + 1) * sizeof **v);
    lm_task *t = &(*v)[(*n)++];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    return t;
}

static int cmp_task(const void *a, const void *b)
{
    return strcmp(((const lm_task *)a)->name, ((const lm_task *)b)->name);
}

/* The --log_samples line of one item (lm_eval/evaluator.py, loggers/evaluation_tracker.py save_results_samples). */
static json_t *sample_line(const ev_lm_run *r, int i, int req, int doc_index, lm_task *t)
{
    const ev_item *it = &r->items[i];
    json_t *oc = json_array_get(r->outcomes, (size_t)i);
    char target[16];
    snprintf(target, sizeof target, "%d", it->answer);
    json_t *args = json_object(), *resps = json_array(), *filt = json_array();
    for (int c = 0; c < it->n_choices; c++) {
        char key[32];
        snprintf(key, sizeof key, "gen_args_%d", c);
        json_object_set_new(args, key,
                            json_pack("{s:s,s:s}", "arg_0", r->ll_ctx[req + c], "arg_1", r->ll_cont[req + c]));
        json_t *pair = json_pack("[o,s]", py_str_float(r->ll_logp[req + c]), r->ll_greedy[req + c] ? "True" : "False");
        json_array_append_new(resps, json_pack("[O]", pair));
        json_array_append_new(filt, pair);
    }
    int acc = json_is_true(json_object_get(oc, "ll_correct"));
    int norm = json_is_true(json_object_get(oc, "ll_norm_correct"));
    int has_norm = !json_is_null(json_object_get(oc, "ll_norm_correct"));
    int gen = json_is_true(json_object_get(oc, "gen_correct"));
    json_t *metrics = json_pack("[s]", "acc");
    if (has_norm) json_array_append_new(metrics, json_string("acc_norm"));
    json_array_append_new(metrics, json_string("gen_acc"));
    char *doc_json = ev_py_json(r->docs[i], 2);
    char *dh = sha256_of(doc_json), *ph = sha256_of(r->ll_ctx[req]), *th = sha256_of(target);
    json_t *o = json_pack("{s:i,s:O,s:s,s:o,s:o,s:o,s:s,s:o,s:s,s:s,s:s}", "doc_id", doc_index, "doc", r->docs[i],
                          "target", target, "arguments", args, "resps", resps, "filtered_resps", filt, "filter", "none",
                          "metrics", metrics, "doc_hash", dh, "prompt_hash", ph, "target_hash", th);
    json_object_set_new(o, "acc", hx_json_num(acc));
    if (has_norm) json_object_set_new(o, "acc_norm", hx_json_num(norm));
    json_object_set_new(o, "gen_acc", hx_json_num(gen));
    json_object_set_new(o, "hx_doc_id", json_string(it->doc_id));
    json_object_set_new(o, "gen_prompt", json_string(r->gen_prompt[i]));
    static const char *const gen_keys[] = {"gen_text", "gen_pred", "gen_rule", "gen_em", "gen_list"};
    for (int k = 0; k < 5; k++) {
        json_t *v = json_object_get(oc, gen_keys[k]);
        if (v) json_object_set(o, gen_keys[k], v);
    }
    add(&t->acc, acc);
    if (has_norm) add(&t->acc_norm, norm), t->has_norm = 1;
    add(&t->gen_acc, gen);
    t->wrapped = ev_uses_chat(it, r->chat);
    t->n++;
    hx_sb_puts(&t->hashes, dh);
    hx_sb_puts(&t->hashes, ph);
    hx_sb_puts(&t->hashes, th);
    free(doc_json);
    free(dh);
    free(ph);
    free(th);
    return o;
}

static json_t *metric(const char *name)
{
    return json_pack("{s:s,s:s,s:b}", "metric", name, "aggregation", "mean", "higher_is_better", 1);
}

static json_t *results_json(const ev_lm_run *r, lm_task *t, int nt)
{
    json_t *res = json_object(), *groups = json_object(), *configs = json_object(), *versions = json_object();
    json_t *nshot = json_object(), *hib = json_object(), *nsamp = json_object(), *hashes = json_object();
    for (int k = 0; k < nt; k++) {
        json_t *m = json_pack("{s:s}", "alias", t[k].name);
        json_object_set_new(m, "acc,none", mean_of(&t[k].acc));
        json_object_set_new(m, "acc_stderr,none", stderr_of(&t[k].acc));
        if (t[k].has_norm) {
            json_object_set_new(m, "acc_norm,none", mean_of(&t[k].acc_norm));
            json_object_set_new(m, "acc_norm_stderr,none", stderr_of(&t[k].acc_norm));
        }
        json_object_set_new(m, "gen_acc,none", mean_of(&t[k].gen_acc));
        json_object_set_new(m, "gen_acc_stderr,none", stderr_of(&t[k].gen_acc));
        json_object_set_new(res, t[k].name, m);
        json_object_set_new(groups, t[k].name, json_array());
        json_t *ml = json_pack("[o]", metric("acc"));
        if (t[k].has_norm) json_array_append_new(ml, metric("acc_norm"));
        json_array_append_new(ml, metric("gen_acc"));
        json_t *meta = json_pack("{s:o,s:O}", "version", hx_json_num(r->version), "hx", r->task_params);
        json_object_set_new(configs, t[k].name,
                            json_pack("{s:s,s:s,s:s,s:s,s:i,s:o,s:o}", "task", t[k].name, "output_type",
                                      "multiple_choice", "target_delimiter", t[k].wrapped ? "" : " ",
                                      "fewshot_delimiter", "\n\n", "num_fewshot", r->shots, "metric_list", ml,
                                      "metadata", meta));
        json_object_set_new(versions, t[k].name, hx_json_num(r->version));
        json_object_set_new(nshot, t[k].name, json_integer(r->shots));
        json_t *h = json_pack("{s:b}", "acc", 1);
        if (t[k].has_norm) json_object_set_new(h, "acc_norm", json_true());
        json_object_set_new(h, "gen_acc", json_true());
        json_object_set_new(hib, t[k].name, h);
        json_t *orig = json_object_get(r->n_original, t[k].name);
        json_object_set_new(nsamp, t[k].name,
                            json_pack("{s:I,s:i}", "original", orig ? json_integer_value(orig) : (json_int_t)t[k].n,
                                      "effective", t[k].n));
        char *th = sha256_of(t[k].hashes.s ? t[k].hashes.s : "");
        json_object_set_new(hashes, t[k].name, json_string(th));
        free(th);
    }
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:O,s:o}", "results", res, "group_subtasks", groups, "configs",
                     configs, "versions", versions, "n-shot", nshot, "higher_is_better", hib, "n-samples", nsamp,
                     "config", r->config, "task_hashes", hashes);
}

int ev_lmeval_write(const char *dir, const ev_lm_run *r)
{
    lm_task *t = NULL;
    int nt = 0, rc = 0;
    json_t *counts = json_object(); /* doc_id: the index of the item within its lm task */
    for (int i = 0, req = 0; i < r->n; req += r->items[i].n_choices, i++) {
        char *name = ev_lm_task(&r->items[i]);
        lm_task *tk = task_of(&t, &nt, name);
        json_int_t di = json_integer_value(json_object_get(counts, name));
        json_object_set_new(counts, name, json_integer(di + 1));
        json_t *line = sample_line(r, i, req, (int)di, tk);
        char *s = ev_py_json(line, -1);
        hx_sb_puts(&tk->samples, s);
        hx_sb_puts(&tk->samples, "\n");
        free(s);
        json_decref(line);
        free(name);
    }
    json_decref(counts);
    qsort(t, (size_t)nt, sizeof *t, cmp_task);
    for (int k = 0; k < nt && !rc; k++) {
        char *path = xstrfmt("%s/samples_%s.jsonl", dir, t[k].name);
        rc = hx_write_file(path, t[k].samples.s ? t[k].samples.s : "", t[k].samples.len);
        free(path);
    }
    if (!rc) {
        json_t *res = results_json(r, t, nt);
        char *s = ev_py_json(res, 2), *path = xstrfmt("%s/results.json", dir);
        rc = hx_write_file(path, s, strlen(s));
        free(path);
        free(s);
        json_decref(res);
    }
    for (int k = 0; k < nt; k++) {
        free(t[k].name);
        hx_sb_free(&t[k].samples);
        hx_sb_free(&t[k].hashes);
        free(t[k].acc.v);
        free(t[k].acc_norm.v);
        free(t[k].gen_acc.v);
    }
    free(t);
    return rc;
}
