/* eval.c - the `eval` stage kind: the same benchmark items scored by log-likelihood and by greedy generation. */
#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/stages/stage.h"
#include "engine/nn/engine.h"
#include "engine/nn/textgen.h"
#include "evalsuite/extract.h"
#include "evalsuite/metrics.h"
#include "evalsuite/prompt.h"

static const hx_field eval_fields[] = {
    {"tasks", HX_T_STRLIST, "[]", NULL, "bench task names or globs (kn_mcq_*); [] = every task of the data artifact"},
    {"splits", HX_T_STRLIST, "[]", NULL, "item splits to evaluate (eval, heldout); [] = all"},
    {"shots", HX_T_INT, "0", NULL, "k-shot: examples drawn (seeded) from other items of the same task"},
    {"chat", HX_T_BOOL, "true", NULL, "generation: ask in the chat template (the instruction data's form)"},
    {"ll_chat", HX_T_BOOL, "false", NULL, "log-likelihood: wrap the context in the chat template too"},
    {"max_new_tokens", HX_T_INT, "24", NULL, "generation: new tokens per item at most"},
    {"stop", HX_T_STRLIST, "[\"\\n\"]", NULL, "generation: the reply ends before the first stop string (and at eos)"},
    {"match", HX_T_STR, "\"contains\"", "contains|exact", "open answers: whole-word containment or exact match"},
    {"batch", HX_T_INT, "8", NULL, "sequences per forward (scoring and generation)"},
    {"limit", HX_T_INT, "0", NULL, "items per task and split (the first ones of the file); 0 = all"},
    {"seed", HX_T_INT, "0", NULL, "seed of shot selection and of bootstrap intervals"},
    {"bootstrap", HX_T_INT, "1000", NULL, "bootstrap resamples for the gap's interval"},
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role eval_roles[] = {
    {"model", "pretrain|convert|align|distill|finetune", 0, "the model artifact: config.json + model.safetensors"},
    {"data", "data", 0, "the data artifact: bench/<task>.jsonl"},
    {"tokenizer", "tokenizer", 1, "a tokenizer stage, when the model artifact has no tokenizer.json"},
    {NULL, NULL, 0, NULL},
};

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int want_task(json_t *globs, const char *task)
{
    if (!json_array_size(globs)) return 1;
    size_t i;
    json_t *g;
    json_array_foreach(globs, i, g)
        if (!fnmatch(json_string_value(g), task, 0)) return 1;
    return 0;
}

static int want_split(json_t *splits, const char *split)
{
    if (!json_array_size(splits)) return 1;
    size_t i;
    json_t *g;
    json_array_foreach(splits, i, g)
        if (!strcmp(json_string_value(g), split)) return 1;
    return 0;
}

/* Task files of the data artifact, sorted, filtered by `tasks`. */
static int list_tasks(hx_stage_ctx *c, const char *bench, char ***names, int *n)
{
    DIR *d = opendir(bench);
    if (!d) return error("stage '%s': %s: no bench/ directory in the data artifact", c->stage_name, bench);
    char **v = NULL;
    int k = 0;
    struct dirent *e;
    json_t *globs = hx_with_json(c, "tasks");
    char *avail = xstrdup("");
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 6 || strcmp(e->d_name + len - 6, ".jsonl")) continue;
        char *task = xstrfmt("%.*s", (int)(len - 6), e->d_name);
        char *a = xstrfmt("%s%s%s", avail, *avail ? ", " : "", task);
        free(avail);
        avail = a;
        if (!want_task(globs, task)) {
            free(task);
            continue;
        }
        v = xrealloc(v, (size_t)(k + 1) * sizeof *v);
        v[k++] = task;
    }
    closedir(d);
    if (!k) {
        error("stage '%s': no bench task matches `tasks`; the data artifact has: %s", c->stage_name, *avail ? avail : "none");
        free(avail);
        free(v);
        return -1;
    }
    free(avail);
    qsort(v, (size_t)k, sizeof *v, cmp_name);
    *names = v;
    *n = k;
    return 0;
}

/* Reads every item of the chosen tasks; keeps the first `limit` per (task, split). shot pools: all items. */
static int load_items(hx_stage_ctx *c, const char *data_dir, json_t **all_out, json_t **sel_out)
{
    char *bench = hx_path_join(data_dir, "bench");
    char **tasks = NULL;
    int nt = 0;
    if (list_tasks(c, bench, &tasks, &nt)) {
        free(bench);
        return -1;
    }
    json_t *all = json_array(), *sel = json_array();
    int limit = (int)hx_with_int(c, "limit"), rc = 0;
    json_t *splits = hx_with_json(c, "splits");
    for (int t = 0; t < nt && !rc; t++) {
        char *path = xstrfmt("%s/%s.jsonl", bench, tasks[t]);
        json_t *items;
        if (ev_read_jsonl(path, &items)) {
            rc = -1;
        } else {
            json_t *counts = json_object();
            size_t i;
            json_t *o;
            json_array_foreach(items, i, o) {
                char *where = xstrfmt("%s:%zu", path, i + 1);
                ev_item it;
                if (ev_item_parse(o, where, &it)) {
                    free(where);
                    rc = -1;
                    break;
                }
                free(where);
                json_array_append(all, o);
                json_int_t have = json_integer_value(json_object_get(counts, it.split));
                if (want_split(splits, it.split) && (!limit || have < limit)) {
                    json_array_append(sel, o);
                    json_object_set_new(counts, it.split, json_integer(have + 1));
                }
                ev_item_release(&it);
            }
            json_decref(counts);
            json_decref(items);
        }
        free(path);
    }
    for (int t = 0; t < nt; t++) free(tasks[t]);
    free(tasks);
    free(bench);
    if (!rc && !json_array_size(sel)) rc = error("stage '%s': no items left after `splits` and `limit`", c->stage_name);
    if (rc) {
        json_decref(all);
        json_decref(sel);
        return -1;
    }
    *all_out = all;
    *sel_out = sel;
    return 0;
}

static uint64_t doc_seed(uint64_t seed, const char *doc)
{
    uint64_t h = 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull);
    for (const char *s = doc; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* k shots for item `it`: other items of its task with another fact (and doc), drawn without replacement from a
 * generator seeded by (seed, doc_id), so an item's shots do not depend on `limit` or on other tasks. */
static int pick_shots(const ev_item *all, int n_all, const ev_item *it, int k, uint64_t seed, const ev_item **out)
{
    int *cand = xmalloc((size_t)(n_all ? n_all : 1) * sizeof *cand), nc = 0;
    for (int j = 0; j < n_all; j++) {
        const ev_item *o = &all[j];
        if (strcmp(o->task, it->task) || !strcmp(o->doc_id, it->doc_id)) continue;
        if (it->fact_id && o->fact_id && !strcmp(o->fact_id, it->fact_id)) continue;
        cand[nc++] = j;
    }
    hx_rng r;
    hx_rng_seed(&r, doc_seed(seed, it->doc_id));
    int got = 0;
    for (; got < k && got < nc; got++) {
        int p = got + (int)hx_rng_below(&r, (uint64_t)(nc - got));
        int t = cand[got];
        cand[got] = cand[p];
        cand[p] = t;
        out[got] = &all[cand[got]];
    }
    free(cand);
    return got;
}

static int utf8_chars(const char *s)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static nn_tokenizer *open_tokenizer(hx_stage_ctx *c, const char *model_dir)
{
    nn_tokenizer *tok = NULL;
    char *p = hx_path_join(model_dir, "tokenizer.json");
    if (!hx_file_exists(p)) {
        free(p);
        const char *td = hx_input_dir(c, "tokenizer");
        if (!td) {
            error("stage '%s': the model artifact %s has no tokenizer.json; bind a `tokenizer` input", c->stage_name,
                  model_dir);
            return NULL;
        }
        p = hx_path_join(td, "tokenizer.json");
    }
    if (nn_tokenizer_load(&tok, p)) error_prefix("stage '%s'", c->stage_name);
    free(p);
    return tok;
}

/* A byte-level model may stop mid-character: invalid UTF-8 bytes become '?' so items.jsonl stays valid JSON. */
static void utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = len > 0;
        for (int k = 1; ok && k < len; k++) ok = (p[k] & 0xC0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
}

/* A prose reply may stop at the stop string "." unless an accepted answer has a "." ("St. George's"). */
static int prose_stops_at_dot(const ev_item *it)
{
    int dot = strchr(it->target, '.') != NULL;
    for (int a = 0; a < it->n_aliases; a++) dot |= strchr(it->aliases[a], '.') != NULL;
    return !dot;
}

/* Requests per call to the engine: progress and Ctrl-C checks between them. */
#define CHUNK 64

static int eval_run(hx_stage_ctx *c)
{
    const char *model_dir = hx_input_dir(c, "model"), *data_dir = hx_input_dir(c, "data");
    if (!model_dir || !data_dir) return error("stage '%s': eval needs the inputs `model` and `data`", c->stage_name);
    int shots = (int)hx_with_int(c, "shots"), batch = (int)hx_with_int(c, "batch");
    int max_new = (int)hx_with_int(c, "max_new_tokens"), reps = (int)hx_with_int(c, "bootstrap");
    int chat = hx_with_bool(c, "chat"), ll_chat = hx_with_bool(c, "ll_chat");
    int exact = !strcmp(hx_with_str(c, "match"), "exact");
    uint64_t seed = (uint64_t)hx_with_int(c, "seed");
    if (shots < 0 || shots > 32 || batch < 1 || max_new < 1 || reps < 0 || hx_with_int(c, "limit") < 0)
        return error("stage '%s': need 0 <= shots <= 32, batch >= 1, max_new_tokens >= 1, bootstrap >= 0, limit >= 0",
                     c->stage_name);
    json_t *all_docs, *sel_docs;
    if (load_items(c, data_dir, &all_docs, &sel_docs)) return -1;
    int n_all = (int)json_array_size(all_docs), n = (int)json_array_size(sel_docs), rc = 0;
    ev_item *all = xcalloc((size_t)n_all, sizeof *all), *it = xcalloc((size_t)n, sizeof *it);
    for (int i = 0; i < n_all; i++) ev_item_parse(json_array_get(all_docs, (size_t)i), "", &all[i]);
    for (int i = 0; i < n; i++) ev_item_parse(json_array_get(sel_docs, (size_t)i), "", &it[i]);

    /* requests: every (item, choice) for log-likelihood, every item for generation */
    int n_ll = 0;
    for (int i = 0; i < n; i++) n_ll += it[i].n_choices;
    char **lctx = xcalloc((size_t)n_ll, sizeof *lctx), **lcont = xcalloc((size_t)n_ll, sizeof *lcont);
    char **gp = xcalloc((size_t)n, sizeof *gp), **gout = xcalloc((size_t)n, sizeof *gout);
    double *logp = xcalloc((size_t)n_ll, sizeof *logp);
    int *greedy = xcalloc((size_t)n_ll, sizeof *greedy), *lchat = xcalloc((size_t)n_ll, sizeof *lchat);
    int *gclass = xcalloc((size_t)n, sizeof *gclass);
    const ev_item *sh[32];
    for (int i = 0, r = 0; i < n && !rc; i++) {
        int k = pick_shots(all, n_all, &it[i], shots, seed, sh);
        char *ctx = ev_ll_context(&it[i], sh, k);
        for (int ch = 0; ch < it[i].n_choices; ch++, r++) {
            lctx[r] = xstrdup(ctx);
            lcont[r] = ev_ll_continuation(&it[i], ch);
            lchat[r] = ev_uses_chat(&it[i], ll_chat);
        }
        free(ctx);
        gp[i] = ev_gen_prompt(&it[i], sh, k, chat);
        if (!gp[i]) rc = -1;
        if (it[i].format == EV_FMT_PROSE) gclass[i] = prose_stops_at_dot(&it[i]) ? 1 : 2;
    }

    int own = !c->engine;
    nn_engine *eng = own ? nn_engine_new(c->device ? c->device : "cpu", c->threads) : c->engine;
    nn_tokenizer *tok = NULL;
    nn_model *m = NULL;
    if (!rc && !eng) rc = -1;
    if (!rc && !(tok = open_tokenizer(c, model_dir))) rc = -1;
    if (!rc) {
        const char *mkey = hx_input_key(c, "model");
        m = nn_engine_model(eng, mkey ? mkey : model_dir, model_dir);
        if (!m) rc = error_prefix("stage '%s': model %s", c->stage_name, model_dir);
    }
    if (!rc && nn_tokenizer_vocab_size(tok) > (size_t)m->cfg.vocab)
        rc = error("stage '%s': the tokenizer has %zu ids but the model's vocab_size is %d; they do not belong together",
                   c->stage_name, nn_tokenizer_vocab_size(tok), m->cfg.vocab);

    /* stop strings per generation class: 0 the stage's, 1 prose (also newline and "."), 2 prose whose answer has a
     * "." (newline only; ev_prose_end cuts at the first "." outside the answer) */
    json_t *stop = hx_with_json(c, "stop");
    int n_stop = (int)json_array_size(stop);
    const char **stops = xcalloc((size_t)n_stop + 2, sizeof *stops);
    for (int s = 0; s < n_stop; s++) stops[s] = json_string_value(json_array_get(stop, s));
    stops[n_stop] = "\n";
    stops[n_stop + 1] = ".";
    nn_textgen_opts go[3] = {
        {.max_new = max_new, .chat = 0, .stop = stops, .n_stop = n_stop, .stop_at_eos = 1},
        {.max_new = max_new, .chat = 0, .stop = stops, .n_stop = n_stop + 2, .stop_at_eos = 1},
        {.max_new = max_new, .chat = 0, .stop = stops, .n_stop = n_stop + 1, .stop_at_eos = 1},
    };
    hx_progress pg;
    double t0 = hx_now();
    if (!rc) {
        log_info("stage '%s': %d items (%d scored continuations, %d generations), %d-shot", c->stage_name, n, n_ll, n, shots);
        hx_progress_begin(&pg, c->stage_name, n_ll + n, "req");
        /* requests go to the engine in groups that share the chat flag (scoring) or the stop strings (generation),
         * CHUNK at a time, in item order within a group */
        int *sel = xmalloc(sizeof *sel * ((size_t)(n_ll > n ? n_ll : n) + 1));
        const char **pa = xmalloc(sizeof *pa * (CHUNK + 1)), **pb = xmalloc(sizeof *pb * (CHUNK + 1));
        double lp[CHUNK];
        int gr[CHUNK], done = 0;
        for (int pass = 0; pass < 2 && !rc; pass++) {
            int ns = 0;
            for (int r = 0; r < n_ll; r++)
                if (lchat[r] == pass) sel[ns++] = r;
            for (int lo = 0; lo < ns && !rc; lo += CHUNK) {
                int k = ns - lo < CHUNK ? ns - lo : CHUNK;
                for (int j = 0; j < k; j++) pa[j] = lctx[sel[lo + j]], pb[j] = lcont[sel[lo + j]];
                rc = nn_textscore(m, tok, pa, pb, k, batch, pass, lp, gr, NULL);
                for (int j = 0; j < k && !rc; j++) logp[sel[lo + j]] = lp[j], greedy[sel[lo + j]] = gr[j];
                hx_progress_update(&pg, done += k, "scoring");
                if (!rc && c->interrupted && *c->interrupted) rc = error("stage '%s': interrupted", c->stage_name);
            }
        }
        double t1 = hx_now();
        char *outs[CHUNK];
        for (int cls = 0; cls < 3 && !rc; cls++) {
            int ns = 0;
            for (int i = 0; i < n; i++)
                if (gclass[i] == cls) sel[ns++] = i;
            for (int lo = 0; lo < ns && !rc; lo += CHUNK) {
                int k = ns - lo < CHUNK ? ns - lo : CHUNK;
                for (int j = 0; j < k; j++) pa[j] = gp[sel[lo + j]];
                memset(outs, 0, sizeof outs);
                rc = nn_textgen(m, tok, pa, k, batch, &go[cls], outs);
                for (int j = 0; j < k; j++) gout[sel[lo + j]] = outs[j];
                hx_progress_update(&pg, done += k, "generating");
                if (!rc && c->interrupted && *c->interrupted) rc = error("stage '%s': interrupted", c->stage_name);
            }
        }
        for (int i = 0; i < n && !rc; i++)
            if (it[i].format == EV_FMT_PROSE)
                gout[i][ev_prose_end(gout[i], it[i].target, it[i].aliases, it[i].n_aliases)] = 0;
        free(sel);
        free(pa);
        free(pb);
        hx_progress_end(&pg);
        if (!rc && c->metrics) {
            json_object_set_new(c->metrics, "score_seconds", hx_json_num(t1 - t0));
            json_object_set_new(c->metrics, "gen_seconds", hx_json_num(hx_now() - t1));
        }
    }

    /* outcomes */
    json_t *res = json_array();
    for (int i = 0, r = 0; i < n && !rc; i++) {
        const ev_item *x = &it[i];
        json_t *o = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:i,s:i}", "task", x->task, "doc_id", x->doc_id, "fact_id",
                              x->fact_id, "split", x->split, "format", ev_format_name(x->format), "answer", x->answer,
                              "n_choices", x->n_choices);
        json_t *lp = json_array();
        int best = 0, bestn = 0;
        double bn = 0;
        for (int ch = 0; ch < x->n_choices; ch++) {
            double v = logp[r + ch], vn = v / utf8_chars(x->choices[ch]);
            json_array_append_new(lp, hx_json_num(v));
            if (v > logp[r + best]) best = ch; /* ties: the first (np.argmax) */
            if (ch == 0 || vn > bn) bestn = ch, bn = vn;
        }
        json_object_set_new(o, "ll_logp", lp);
        json_object_set_new(o, "ll_pred", json_integer(best));
        json_object_set_new(o, "ll_correct", json_boolean(best == x->answer));
        json_object_set_new(o, "ll_greedy", json_boolean(greedy[r + x->answer]));
        if (ev_has_acc_norm(x)) {
            json_object_set_new(o, "ll_norm_pred", json_integer(bestn));
            json_object_set_new(o, "ll_norm_correct", json_boolean(bestn == x->answer));
        } else {
            json_object_set_new(o, "ll_norm_correct", json_null());
        }
        r += x->n_choices;
        utf8_repair(gout[i]);
        json_t *gt = json_string(gout[i]);
        if (!gt) { /* what jansson still refuses (overlong forms, surrogates): ASCII only */
            for (unsigned char *q = (unsigned char *)gout[i]; *q; q++)
                if (*q >= 0x80) *q = '?';
            gt = json_string(gout[i]);
        }
        json_object_set_new(o, "gen_text", gt);
        if (ev_gen_is_letter(x)) {
            ev_rule rule;
            int p = ev_extract_letter(gout[i], x->choices, x->n_choices, &rule);
            char letter[2] = {(char)('A' + p), 0};
            json_object_set_new(o, "gen_pred", p >= 0 ? json_string(letter) : json_null());
            json_object_set_new(o, "gen_rule", json_string(ev_rule_name(rule)));
            json_object_set_new(o, "gen_correct", json_boolean(p == x->answer));
            json_object_set_new(o, "gen_em", json_null());
        } else {
            int ex, co;
            ev_match_open(gout[i], x->target, x->aliases, x->n_aliases, &ex, &co);
            char *ans = ev_open_answer(gout[i]);
            json_t *aj = json_string(ans);
            json_object_set_new(o, "gen_pred", aj ? aj : json_null());
            free(ans);
            json_object_set_new(o, "gen_correct", json_boolean(exact ? ex : co));
            json_object_set_new(o, "gen_em", json_boolean(ex));
        }
        json_array_append_new(res, o);
    }

    json_t *metrics = NULL;
    if (!rc && !(metrics = ev_metrics(res, reps, seed))) rc = -1;
    if (!rc) {
        /* items.jsonl, metrics.json, prompts.md (the exact prompts of each task's first item, for audit) */
        char *path = hx_path_join(c->out_dir, "items.jsonl");
        FILE *f = fopen(path, "w");
        if (!f) rc = error("stage '%s': cannot write %s", c->stage_name, path);
        for (size_t i = 0; f && i < json_array_size(res); i++) {
            char *line = json_dumps(json_array_get(res, i), JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
            fprintf(f, "%s\n", line);
            free(line);
        }
        if (f && (fflush(f) || fsync(fileno(f)) || ferror(f))) rc = error("stage '%s': write error on %s", c->stage_name, path);
        if (f) fclose(f);
        free(path);
        if (!rc) {
            char *s = json_dumps(metrics, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
            char *t = xstrfmt("%s\n", s);
            path = hx_path_join(c->out_dir, "metrics.json");
            rc = hx_write_file(path, t, strlen(t));
            free(path);
            free(s);
            free(t);
        }
        if (!rc) {
            char *md = xstrdup("# Prompts (first item of each task)\n");
            for (int i = 0, r = 0; i < n; r += it[i].n_choices, i++) {
                if (i && !strcmp(it[i].task, it[i - 1].task)) continue;
                char *add = xstrfmt("%s\n## %s (%s)\n\nLog-likelihood context:\n\n```\n%s\n```\n\ncontinuations:", md,
                                    it[i].task, ev_format_name(it[i].format), lctx[r]);
                free(md);
                md = add;
                for (int ch = 0; ch < it[i].n_choices; ch++) {
                    add = xstrfmt("%s `%s`", md, lcont[r + ch]);
                    free(md);
                    md = add;
                }
                add = xstrfmt("%s\n\nGeneration prompt:\n\n```\n%s\n```\n\nreply: `%s`\n", md, gp[i], gout[i]);
                free(md);
                md = add;
            }
            path = hx_path_join(c->out_dir, "prompts.md");
            rc = hx_write_file(path, md, strlen(md));
            free(path);
            free(md);
        }
    }
    if (!rc && c->metrics) {
        json_t *h = json_object_get(json_object_get(metrics, "heldout"), "all");
        json_object_set_new(c->metrics, "n", json_copy(json_object_get(metrics, "n")));
        json_object_set_new(c->metrics, "ll_acc", json_copy(json_object_get(metrics, "ll_acc")));
        json_object_set_new(c->metrics, "gen_acc", json_copy(json_object_get(metrics, "gen_acc")));
        json_object_set_new(c->metrics, "gap", json_copy(json_object_get(metrics, "gap")));
        if (h) {
            json_object_set_new(c->metrics, "heldout_ll_acc", json_copy(json_object_get(h, "ll_acc")));
            json_object_set_new(c->metrics, "heldout_gen_acc", json_copy(json_object_get(h, "gen_acc")));
        }
        json_object_set_new(c->metrics, "items_per_s", hx_json_num(n / (hx_now() - t0 + 1e-9)));
        log_info("stage '%s': ll_acc %.3f gen_acc %.3f gap %+.3f on %lld eval items", c->stage_name,
                 json_number_value(json_object_get(metrics, "ll_acc")), json_number_value(json_object_get(metrics, "gen_acc")),
                 json_number_value(json_object_get(metrics, "gap")), (long long)json_integer_value(json_object_get(metrics, "n")));
    }
    json_decref(metrics);
    json_decref(res);
    free(stops);
    if (tok) nn_tokenizer_free(tok);
    if (own && eng) nn_engine_free(eng);
    for (int i = 0; i < n_ll; i++) free(lctx[i]), free(lcont[i]);
    for (int i = 0; i < n; i++) free(gp[i]), free(gout[i]);
    free(lctx); free(lcont); free(gp); free(gout); free(logp); free(greedy); free(lchat); free(gclass);
    for (int i = 0; i < n_all; i++) ev_item_release(&all[i]);
    for (int i = 0; i < n; i++) ev_item_release(&it[i]);
    free(all);
    free(it);
    json_decref(all_docs);
    json_decref(sel_docs);
    return rc;
}

const hx_stage_kind hx_kind_eval = {
    .name = "eval",
    .version = 1,
    .doc = "knowledge benchmarks scored by log-likelihood and by greedy generation on the same items (docs/eval.md)",
    .fields = eval_fields,
    .roles = eval_roles,
    .needs_gpu = 1,
    .run = eval_run,
};
