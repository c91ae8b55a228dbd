/* metrics.c - per-task and per-split accuracy by log-likelihood and by generation, their gap, intervals, agreement. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"

/* One outcome, checked once. */
typedef struct outcome {
    const char *task, *split;
    int n_choices, ll, gen, norm, em, letter, invalid; /* norm/em: -1 when not applicable */
} outcome;

static int get_bool(json_t *o, const char *k, int *v, int idx, int optional)
{
    json_t *x = json_object_get(o, k);
    if (optional && (!x || json_is_null(x))) {
        *v = -1;
        return 0;
    }
    if (!json_is_boolean(x)) return error("item outcome %d: \"%s\" must be true or false", idx, k);
    *v = json_is_true(x);
    return 0;
}

static uint64_t name_seed(uint64_t seed, const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull ^ seed; /* FNV-1a: each group gets its own bootstrap stream */
    for (const char *s = a; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *s = b; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static json_t *ci_json(ev_ci c) { return json_pack("[o,o]", hx_json_num(c.lo), hx_json_num(c.hi)); }

/* Metrics M of the outcomes whose split (and task, unless NULL) match. */
/* task: NULL (every task), a task name, or a family glob "kn_prose_*" (every task with that prefix). */
static int task_matches(const char *task, const char *want)
{
    if (!want) return 1;
    size_t n = strlen(want);
    if (n && want[n - 1] == '*') return !strncmp(task, want, n - 1);
    return !strcmp(task, want);
}

/* The family glob of a task: "kn_prose_country" -> "kn_prose_*"; NULL for a task without a family suffix. */
static char *task_family(const char *task)
{
    const char *u = strrchr(task, '_');
    if (!u || u == task || strncmp(task, "kn_", 3) || u - task <= 3) return NULL;
    return xstrfmt("%.*s_*", (int)(u - task), task);
}

static json_t *group(const outcome *o, int n, const char *split, const char *task, int reps, uint64_t seed)
{
    int m = 0, ll = 0, gen = 0, nn = 0, norm = 0, no = 0, em = 0, nl = 0, inv = 0, q[4] = {0};
    double chance = 0;
    double *a = xmalloc((size_t)(n ? n : 1) * sizeof *a), *b = xmalloc((size_t)(n ? n : 1) * sizeof *b);
    for (int i = 0; i < n; i++) {
        if (strcmp(o[i].split, split) || !task_matches(o[i].task, task)) continue;
        a[m] = o[i].ll;
        b[m] = o[i].gen;
        m++;
        ll += o[i].ll;
        gen += o[i].gen;
        chance += 1.0 / o[i].n_choices;
        q[(!o[i].ll) * 2 + !o[i].gen]++;
        if (o[i].norm >= 0) nn++, norm += o[i].norm;
        if (o[i].em >= 0) no++, em += o[i].em;
        if (o[i].letter) nl++, inv += o[i].invalid;
    }
    json_t *r = json_object();
    json_object_set_new(r, "n", json_integer(m));
    json_object_set_new(r, "chance", hx_json_num(m ? chance / m : 0));
    json_object_set_new(r, "ll_acc", hx_json_num(m ? (double)ll / m : 0));
    json_object_set_new(r, "ll_ci", ci_json(ev_wilson(ll, m, EV_Z95)));
    json_object_set_new(r, "gen_acc", hx_json_num(m ? (double)gen / m : 0));
    json_object_set_new(r, "gen_ci", ci_json(ev_wilson(gen, m, EV_Z95)));
    json_object_set_new(r, "gap", hx_json_num(m ? (double)(ll - gen) / m : 0));
    json_object_set_new(r, "gap_ci", ci_json(ev_bootstrap_paired(a, b, m, reps, name_seed(seed, split, task ? task : ""), 0.95)));
    json_object_set_new(r, "mcnemar_p", hx_json_num(ev_mcnemar_exact(q[1], q[2])));
    json_object_set_new(r, "both", json_integer(q[0]));
    json_object_set_new(r, "ll_only", json_integer(q[1]));
    json_object_set_new(r, "gen_only", json_integer(q[2]));
    json_object_set_new(r, "neither", json_integer(q[3]));
    if (nn) {
        json_object_set_new(r, "ll_acc_norm", hx_json_num((double)norm / nn));
        json_object_set_new(r, "ll_norm_ci", ci_json(ev_wilson(norm, nn, EV_Z95)));
        json_object_set_new(r, "n_norm", json_integer(nn));
    }
    if (no) {
        json_object_set_new(r, "gen_em", hx_json_num((double)em / no));
        json_object_set_new(r, "n_open", json_integer(no));
    }
    if (nl) {
        json_object_set_new(r, "gen_invalid", hx_json_num((double)inv / nl));
        json_object_set_new(r, "n_letter", json_integer(nl));
    }
    free(a);
    free(b);
    return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Sorted distinct values of a string field. */
static const char **distinct(const outcome *o, int n, int field_split, const char *split, int *count)
{
    const char **v = xcalloc((size_t)n + 1, sizeof *v);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (split && strcmp(o[i].split, split)) continue;
        const char *s = field_split ? o[i].split : o[i].task;
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(v[j], s);
        if (!seen) v[k++] = s;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_str);
    *count = k;
    return v;
}

json_t *ev_metrics(const json_t *results, int reps, uint64_t seed)
{
    if (!json_is_array(results)) {
        error("item outcomes must be a list");
        return NULL;
    }
    int n = (int)json_array_size(results);
    outcome *o = xcalloc((size_t)(n ? n : 1), sizeof *o);
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(results, (size_t)i);
        o[i].task = json_string_value(json_object_get(r, "task"));
        o[i].split = json_string_value(json_object_get(r, "split"));
        json_t *nc = json_object_get(r, "n_choices");
        if (!o[i].task || !o[i].split || !json_is_integer(nc) || json_integer_value(nc) < 1) {
            free(o);
            error("item outcome %d: needs string \"task\" and \"split\" and an integer \"n_choices\" >= 1", i);
            return NULL;
        }
        o[i].n_choices = (int)json_integer_value(nc);
        const char *rule = json_string_value(json_object_get(r, "gen_rule"));
        o[i].letter = rule != NULL;
        o[i].invalid = rule && !strcmp(rule, "none");
        if (get_bool(r, "ll_correct", &o[i].ll, i, 0) || get_bool(r, "gen_correct", &o[i].gen, i, 0) ||
            get_bool(r, "ll_norm_correct", &o[i].norm, i, 1) || get_bool(r, "gen_em", &o[i].em, i, 1)) {
            free(o);
            return NULL;
        }
    }
    json_t *m = json_pack("{s:i,s:o,s:i}", "version", 1, "confidence", hx_json_num(0.95), "bootstrap", reps);
    int ns;
    const char **splits = distinct(o, n, 1, NULL, &ns);
    for (int s = 0; s < ns; s++) {
        int nt;
        const char **tasks = distinct(o, n, 0, splits[s], &nt);
        json_t *sp = json_object(), *tj = json_object();
        json_object_set_new(sp, "all", group(o, n, splits[s], NULL, reps, seed));
        double mll = 0, mgen = 0;
        for (int t = 0; t < nt; t++) {
            json_t *g = group(o, n, splits[s], tasks[t], reps, seed);
            mll += json_real_value(json_object_get(g, "ll_acc"));
            mgen += json_real_value(json_object_get(g, "gen_acc"));
            json_object_set_new(tj, tasks[t], g);
        }
        json_object_set_new(sp, "macro", json_pack("{s:o,s:o,s:o,s:i}", "ll_acc", hx_json_num(nt ? mll / nt : 0), "gen_acc",
                                                   hx_json_num(nt ? mgen / nt : 0), "gap",
                                                   hx_json_num(nt ? (mll - mgen) / nt : 0), "tasks", nt));
        json_object_set_new(sp, "tasks", tj);
        /* families: the relation families of one format pooled, e.g. kn_prose_* over its four families */
        json_t *fj = json_object();
        for (int t = 0; t < nt; t++) {
            char *fam = task_family(tasks[t]);
            if (fam && !json_object_get(fj, fam)) json_object_set_new(fj, fam, group(o, n, splits[s], fam, reps, seed));
            free(fam);
        }
        json_object_set_new(sp, "families", fj);
        json_object_set_new(m, splits[s], sp);
        free(tasks);
    }
    free(splits);
    json_t *head = json_object_get(json_object_get(m, "eval"), "all");
    json_object_set_new(m, "n", json_integer(head ? json_integer_value(json_object_get(head, "n")) : 0));
    static const char *keys[] = {"ll_acc", "gen_acc", "gap"};
    for (int k = 0; k < 3; k++)
        json_object_set_new(m, keys[k], head ? json_copy(json_object_get(head, keys[k])) : json_null());
    free(o);
    return m;
}

int ev_parse_jsonl(const char *name, const char *data, size_t len, json_t **out)
{
    json_t *a = json_array();
    size_t pos = 0;
    for (int line = 1; pos < len; line++) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        size_t k = 0;
        while (k < n && (data[pos + k] == ' ' || data[pos + k] == '\t' || data[pos + k] == '\r')) k++;
        if (k < n) {
            json_error_t je;
            json_t *v = json_loadb(data + pos, n, 0, &je);
            if (!v || !json_is_object(v)) {
                json_decref(v);
                json_decref(a);
                return error("%s:%d:%d: %s", name, line, v ? 1 : je.column, v ? "expected a JSON object" : je.text);
            }
            json_array_append_new(a, v);
        }
        pos += n + 1;
    }
    *out = a;
    return 0;
}

int ev_read_jsonl(const char *path, json_t **out)
{
    char *data;
    size_t len;
    if (hx_read_file(path, &data, &len)) return -1;
    int r = ev_parse_jsonl(path, data, len, out);
    free(data);
    return r;
}
