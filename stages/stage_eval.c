/* stage_eval.c - the `eval` stage kind: the same benchmark items scored by log-likelihood and by greedy generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stages/stage.h"
#include "nn/engine.h"
#include "nn/textgen.h"
#include "evalsuite/grade.h"
#include "evalsuite/items.h"
#include "evalsuite/lmeval.h"
#include "evalsuite/metrics.h"
#include "evalsuite/prompt.h"

/* The kind's version (part of every key): also lm-eval's `versions` of the tasks in results.json.
 * 2: lm-eval's encode_pair, results.json + samples_<task>.jsonl, the extraction fixes, the `bench` input. */
#define EVAL_VERSION 2

static const hx_field eval_fields[] = {
    {"tasks", HX_T_STRLIST, "[]", NULL, "bench task names or globs (kn_mcq_*); [] = every task of the inputs"},
    {"splits", HX_T_STRLIST, "[]", NULL, "item splits to evaluate (eval, heldout); [] = all"},
    {"shots", HX_T_INT, "0", NULL, "k-shot: examples drawn (seeded) from other items of the same task"},
    {"chat", HX_T_BOOL, "true", NULL, "generation: ask in the chat template (the instruction data's form)"},
    {"ll_chat", HX_T_BOOL, "false", NULL, "log-likelihood: the context in the chat template too (lm-eval --apply_chat_template)"},
    {"enable_thinking", HX_T_BOOL, "true", NULL,
     "Qwen3's template switch: false adds the empty <think></think> block after the generation prompt (a real Qwen3 "
     "answering without thinking); true is the plain form of hx's instruction data"},
    {"max_new_tokens", HX_T_INT, "24", NULL, "generation: new tokens per item at most"},
    {"stop", HX_T_STRLIST, "[\"\\n\"]", NULL, "generation: the reply ends before the first stop string (and at eos)"},
    {"match", HX_T_STR, "\"contains\"", "contains|exact", "open answers: whole-word containment or exact match"},
    {"batch", HX_T_INT, "8", NULL, "sequences per forward (scoring); sequence slots of continuous batching (generation)"},
    {"limit", HX_T_INT, "0", NULL, "items per task and split (the first ones of the file); 0 = all"},
    {"seed", HX_T_INT, "0", NULL, "seed of shot selection and of bootstrap intervals"},
    {"bootstrap", HX_T_INT, "1000", NULL, "bootstrap resamples for the gap's interval"},
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role eval_roles[] = {
    {"model", "pretrain|convert|align|distill|finetune", 0, "the model artifact: config.json + model.safetensors"},
    {"data", "data", 1, "a data artifact: its bench/<task>.jsonl (the world's tasks)"},
    {"bench", "bench", 1, "a bench artifact: real benchmark files (MMLU, ARC, HellaSwag...) evaluated beside `data`'s"},
    {"tokenizer", "tokenizer", 1, "a tokenizer stage, when the model artifact has no tokenizer.json"},
    {NULL, NULL, 0, NULL},
};

typedef struct eval_opts {
    int shots, batch, max_new, reps, limit, exact;
    int gen_chat, ll_chat; /* EV_CHAT flags (prompt.h) of generation prompts and LL contexts */
    uint64_t seed;
} eval_opts;

static int read_opts(hx_stage_ctx *c, eval_opts *o)
{
    int think = hx_with_bool(c, "enable_thinking") ? 0 : EV_CHAT_NO_THINK;
    o->shots = (int)hx_with_int(c, "shots");
    o->batch = (int)hx_with_int(c, "batch");
    o->max_new = (int)hx_with_int(c, "max_new_tokens");
    o->reps = (int)hx_with_int(c, "bootstrap");
    o->limit = (int)hx_with_int(c, "limit");
    o->exact = !strcmp(hx_with_str(c, "match"), "exact");
    o->gen_chat = hx_with_bool(c, "chat") ? EV_CHAT | think : 0;
    o->ll_chat = hx_with_bool(c, "ll_chat") ? EV_CHAT | think : 0;
    o->seed = (uint64_t)hx_with_int(c, "seed");
    if (o->shots < 0 || o->shots > 32 || o->batch < 1 || o->max_new < 1 || o->reps < 0 || o->limit < 0)
        return error("stage '%s': need 0 <= shots <= 32, batch >= 1, max_new_tokens >= 1, bootstrap >= 0, limit >= 0",
                     c->stage_name);
    return 0;
}

/* Every request of the eval: per (item, choice) a scored context/continuation, per item a generation prompt. */
typedef struct eval_reqs {
    int n_ll;
    char **ctx, **cont;
    double *logp;
    int *greedy;
    char **gen, **reply;
    int *gen_class; /* stop strings: 0 the stage's, 1 prose (also "\n" and "."), 2 prose whose answer has a "." (also
                     * "\n"; ev_prose_end cuts at the first "." outside the answer) */
} eval_reqs;

static int prose_class(const ev_item *it)
{
    if (it->format != EV_FMT_PROSE) return 0;
    int dot = strchr(it->target, '.') != NULL;
    for (int a = 0; a < it->n_aliases; a++) dot |= strchr(it->aliases[a], '.') != NULL;
    return dot ? 2 : 1;
}

static int build_requests(const ev_itemset *s, const eval_opts *o, eval_reqs *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < s->n; i++) r->n_ll += s->it[i].n_choices;
    r->ctx = xcalloc((size_t)r->n_ll, sizeof *r->ctx);
    r->cont = xcalloc((size_t)r->n_ll, sizeof *r->cont);
    r->logp = xcalloc((size_t)r->n_ll, sizeof *r->logp);
    r->greedy = xcalloc((size_t)r->n_ll, sizeof *r->greedy);
    r->gen = xcalloc((size_t)s->n, sizeof *r->gen);
    r->reply = xcalloc((size_t)s->n, sizeof *r->reply);
    r->gen_class = xcalloc((size_t)s->n, sizeof *r->gen_class);
    const ev_item *sh[32];
    for (int i = 0, q = 0; i < s->n; i++) {
        const ev_item *it = &s->it[i];
        int k = ev_pick_shots(s->all, s->n_all, it, o->shots, o->seed, sh);
        char *ctx = ev_ll_prompt(it, sh, k, o->ll_chat);
        if (!ctx || !(r->gen[i] = ev_gen_prompt(it, sh, k, o->gen_chat))) {
            free(ctx);
            return -1;
        }
        for (int ch = 0; ch < it->n_choices; ch++, q++) {
            r->ctx[q] = xstrdup(ctx);
            r->cont[q] = ev_ll_target(it, ch, o->ll_chat);
        }
        free(ctx);
        r->gen_class[i] = prose_class(it);
    }
    return 0;
}

static void reqs_release(eval_reqs *r, int n)
{
    for (int i = 0; i < r->n_ll; i++) free(r->ctx[i]), free(r->cont[i]);
    for (int i = 0; i < n; i++) free(r->gen[i]), free(r->reply[i]);
    free(r->ctx); free(r->cont); free(r->logp); free(r->greedy); free(r->gen); free(r->reply); free(r->gen_class);
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

/* Requests per call to the engine: progress and Ctrl-C checks between them. */
#define CHUNK 64

static int check_interrupt(hx_stage_ctx *c)
{
    return c->interrupted && *c->interrupted ? error("stage '%s': interrupted", c->stage_name) : 0;
}

/* Log-likelihood of every (context, continuation), CHUNK at a time (lm-eval's encode_pair: nn_textscore). */
static int score_all(hx_stage_ctx *c, nn_model *m, const nn_tokenizer *tok, eval_reqs *r, int batch, hx_progress *pg,
                     int *done)
{
    int rc = 0;
    for (int lo = 0; lo < r->n_ll && !rc; lo += CHUNK) {
        int k = r->n_ll - lo < CHUNK ? r->n_ll - lo : CHUNK;
        rc = nn_textscore(m, tok, (const char *const *)r->ctx + lo, (const char *const *)r->cont + lo, k, batch, 0,
                          r->logp + lo, r->greedy + lo, NULL);
        hx_progress_update(pg, *done += k, "scoring");
        if (!rc) rc = check_interrupt(c);
    }
    return rc;
}

/* Greedy replies, grouped by stop strings (gen_class), in item order within a group: GEN_SLOT_ITEMS items per
 * sequence slot (at least CHUNK) go through one continuous-batching call (nn_textgen), whose slots only drain at
 * its end, between progress updates and interrupt checks. */
#define GEN_SLOT_ITEMS 16
static int generate_all(hx_stage_ctx *c, nn_model *m, const nn_tokenizer *tok, const ev_itemset *s, eval_reqs *r,
                        const eval_opts *o, hx_progress *pg, int *done)
{
    json_t *stop = hx_with_json(c, "stop");
    int n_stop = (int)json_array_size(stop), rc = 0;
    const char **stops = xcalloc((size_t)n_stop + 2, sizeof *stops);
    for (int i = 0; i < n_stop; i++) stops[i] = json_string_value(json_array_get(stop, i));
    stops[n_stop] = "\n";
    stops[n_stop + 1] = ".";
    int *sel = xmalloc(sizeof *sel * (size_t)(s->n + 1));
    int per_call = o->batch > CHUNK / GEN_SLOT_ITEMS ? o->batch * GEN_SLOT_ITEMS : CHUNK;
    const char **pa = xcalloc((size_t)per_call, sizeof *pa);
    char **outs = xcalloc((size_t)per_call, sizeof *outs);
    for (int cls = 0; cls < 3 && !rc; cls++) {
        nn_textgen_opts go = {.max_new = o->max_new, .stop = stops, .n_stop = n_stop + (cls == 1 ? 2 : cls == 2 ? 1 : 0),
                              .stop_at_eos = 1};
        int ns = 0;
        for (int i = 0; i < s->n; i++)
            if (r->gen_class[i] == cls) sel[ns++] = i;
        for (int lo = 0; lo < ns && !rc; lo += per_call) {
            int k = ns - lo < per_call ? ns - lo : per_call;
            for (int j = 0; j < k; j++) pa[j] = r->gen[sel[lo + j]];
            memset(outs, 0, (size_t)per_call * sizeof *outs);
            rc = nn_textgen(m, tok, pa, k, o->batch, &go, outs);
            for (int j = 0; j < k; j++) r->reply[sel[lo + j]] = outs[j];
            hx_progress_update(pg, *done += k, "generating");
            if (!rc) rc = check_interrupt(c);
        }
    }
    for (int i = 0; i < s->n && !rc; i++) ev_prose_cut(&s->it[i], r->reply[i]);
    free(sel);
    free(pa);
    free(outs);
    free(stops);
    return rc;
}

/* prompts.md: the exact prompts of each task's first item, for audit. */
static char *prompts_md(const ev_itemset *s, const eval_reqs *r)
{
    char *md = xstrdup("# Prompts (first item of each task)\n");
    for (int i = 0, q = 0; i < s->n; q += s->it[i].n_choices, i++) {
        if (i && !strcmp(s->it[i].task, s->it[i - 1].task)) continue;
        char *add = xstrfmt("%s\n## %s (%s)\n\nLog-likelihood context:\n\n```\n%s\n```\n\ncontinuations:", md,
                            s->it[i].task, ev_format_name(s->it[i].format), r->ctx[q]);
        free(md);
        md = add;
        for (int ch = 0; ch < s->it[i].n_choices; ch++) {
            add = xstrfmt("%s `%s`", md, r->cont[q + ch]);
            free(md);
            md = add;
        }
        add = xstrfmt("%s\n\nGeneration prompt:\n\n```\n%s\n```\n\nreply: `%s`\n", md, r->gen[i], r->reply[i]);
        free(md);
        md = add;
    }
    return md;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char *path = hx_path_join(dir, name);
    int rc = hx_write_file(path, text, strlen(text));
    free(path);
    return rc;
}

/* items.jsonl, metrics.json, prompts.md, and lm-eval's results.json + samples_<task>.jsonl. */
static int write_outputs(hx_stage_ctx *c, const ev_itemset *s, const eval_reqs *r, json_t *res, json_t *metrics,
                         const eval_opts *o)
{
    hx_sbuf b = {0};
    for (size_t i = 0; i < json_array_size(res); i++) {
        char *line = json_dumps(json_array_get(res, i), JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        hx_sb_puts(&b, line);
        hx_sb_putc(&b, '\n');
        free(line);
    }
    char *items = hx_sb_take(&b), *add;
    int rc = write_text(c->out_dir, "items.jsonl", items);
    free(items);
    char *m = json_dumps(metrics, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    add = xstrfmt("%s\n", m);
    if (!rc) rc = write_text(c->out_dir, "metrics.json", add);
    free(m);
    free(add);
    char *md = prompts_md(s, r);
    if (!rc) rc = write_text(c->out_dir, "prompts.md", md);
    free(md);
    json_t **docs = xcalloc((size_t)s->n + 1, sizeof *docs);
    for (int i = 0; i < s->n; i++) {
        json_t *d = json_array_get(s->sel_docs, (size_t)i), *orig = json_object_get(d, "doc");
        docs[i] = orig ? orig : d;
    }
    const char *mkey = hx_input_key(c, "model");
    char *model_args = xstrfmt("pretrained=%s", mkey ? mkey : "(model input)");
    json_t *config = json_pack("{s:s,s:s,s:i,s:[],s:n,s:o,s:i,s:{s:O,s:i,s:b},s:I,s:I,s:I,s:I}", "model", "hx",
                               "model_args", model_args, "batch_size", o->batch, "batch_sizes", "use_cache", "limit",
                               o->limit ? json_integer(o->limit) : json_null(), "bootstrap_iters", o->reps, "gen_kwargs",
                               "until", hx_with_json(c, "stop"), "max_gen_toks", o->max_new, "do_sample", 0,
                               "random_seed", (json_int_t)o->seed, "numpy_seed", (json_int_t)o->seed, "torch_seed",
                               (json_int_t)o->seed, "fewshot_seed", (json_int_t)o->seed);
    ev_lm_run lm = {.n = s->n, .items = s->it, .docs = docs, .outcomes = res, .ll_ctx = (const char *const *)r->ctx,
                    .ll_cont = (const char *const *)r->cont, .ll_logp = r->logp, .ll_greedy = r->greedy,
                    .gen_prompt = (const char *const *)r->gen, .n_original = s->n_original, .shots = o->shots,
                    .chat = o->ll_chat, .version = EVAL_VERSION, .config = config, .task_params = c->with};
    if (!rc) rc = ev_lmeval_write(c->out_dir, &lm);
    json_decref(config);
    free(model_args);
    free(docs);
    return rc;
}

static void stage_metrics(hx_stage_ctx *c, json_t *metrics, int n, double t0)
{
    static const char *const keys[] = {"n", "ll_acc", "gen_acc", "gap"};
    for (int k = 0; k < 4; k++) json_object_set_new(c->metrics, keys[k], json_copy(json_object_get(metrics, keys[k])));
    json_t *h = json_object_get(json_object_get(metrics, "heldout"), "all");
    if (h) {
        json_object_set_new(c->metrics, "heldout_ll_acc", json_copy(json_object_get(h, "ll_acc")));
        json_object_set_new(c->metrics, "heldout_gen_acc", json_copy(json_object_get(h, "gen_acc")));
    }
    json_object_set_new(c->metrics, "items_per_s", hx_json_num(n / (hx_now() - t0 + 1e-9)));
    log_info("ll_acc %.3f gen_acc %.3f gap %+.3f on %lld eval items",
             json_number_value(json_object_get(metrics, "ll_acc")), json_number_value(json_object_get(metrics, "gen_acc")),
             json_number_value(json_object_get(metrics, "gap")), (long long)json_integer_value(json_object_get(metrics, "n")));
}

static int eval_run(hx_stage_ctx *c)
{
    static const char *const bench_roles[] = {"data", "bench"};
    const char *model_dir = hx_input_dir(c, "model"), *dirs[2], *roles[2];
    int n_dirs = 0;
    for (int i = 0; i < 2; i++)
        if ((dirs[n_dirs] = hx_input_dir(c, bench_roles[i]))) roles[n_dirs++] = bench_roles[i];
    if (!model_dir || !n_dirs)
        return error("stage '%s': eval needs the input `model` and a benchmark input, `data` or `bench`", c->stage_name);
    eval_opts o;
    ev_itemset s;
    if (read_opts(c, &o) ||
        ev_items_load(&s, dirs, roles, n_dirs, hx_with_json(c, "tasks"), hx_with_json(c, "splits"), o.limit, c->stage_name))
        return -1;
    eval_reqs r;
    int rc = build_requests(&s, &o, &r), own = !c->engine;
    nn_engine *eng = own ? nn_engine_new(c->device ? c->device : "cpu", c->threads) : c->engine;
    nn_tokenizer *tok = NULL;
    nn_model *m = NULL;
    if (!rc && !eng) rc = -1;
    if (!rc) k_mem_reset_peak(nn_engine_backend(eng)); /* peak_mem_bytes: what the backend held during this stage */
    if (!rc && !(tok = open_tokenizer(c, model_dir))) rc = -1;
    if (!rc) {
        const char *mkey = hx_input_key(c, "model");
        if (!(m = nn_engine_model(eng, mkey ? mkey : model_dir, model_dir)))
            rc = error_prefix("stage '%s': model %s", c->stage_name, model_dir);
    }
    if (!rc && nn_tokenizer_vocab_size(tok) > (size_t)m->cfg.vocab)
        rc = error("stage '%s': the tokenizer has %zu ids but the model's vocab_size is %d; they do not belong together",
                   c->stage_name, nn_tokenizer_vocab_size(tok), m->cfg.vocab);
    double t0 = hx_now(), t1 = t0;
    if (!rc) {
        log_info("%d items (%d scored continuations, %d generations), %d-shot", s.n, r.n_ll,
                 s.n, o.shots);
        hx_progress pg;
        int done = 0;
        hx_progress_begin(&pg, c->stage_name, r.n_ll + s.n, "req");
        rc = score_all(c, m, tok, &r, o.batch, &pg, &done);
        t1 = hx_now();
        if (!rc) rc = generate_all(c, m, tok, &s, &r, &o, &pg, &done);
        hx_progress_end(&pg);
    }
    json_t *res = json_array(), *metrics = NULL;
    for (int i = 0, q = 0; i < s.n && !rc; q += s.it[i].n_choices, i++)
        json_array_append_new(res, ev_grade_outcome(&s.it[i], r.logp + q, r.greedy + q, r.reply[i], o.exact));
    if (!rc && !(metrics = ev_metrics(res, o.reps, o.seed))) rc = -1;
    if (!rc && c->metrics) {
        json_object_set_new(c->metrics, "score_seconds", hx_json_num(t1 - t0));
        json_object_set_new(c->metrics, "gen_seconds", hx_json_num(hx_now() - t1));
        json_object_set_new(c->metrics, "peak_mem_bytes", json_integer((json_int_t)nn_engine_backend(eng)->mem_peak));
    }
    if (!rc) rc = write_outputs(c, &s, &r, res, metrics, &o);
    if (!rc && c->metrics) stage_metrics(c, metrics, s.n, t0);
    json_decref(metrics);
    json_decref(res);
    if (tok) nn_tokenizer_free(tok);
    if (own && eng) nn_engine_free(eng);
    reqs_release(&r, s.n);
    ev_items_release(&s);
    return rc;
}

const hx_stage_kind hx_kind_eval = {
    .name = "eval",
    .version = EVAL_VERSION,
    .doc = "knowledge benchmarks scored by log-likelihood and by greedy generation on the same items (docs/eval.md)",
    .fields = eval_fields,
    .roles = eval_roles,
    .needs_gpu = 1,
    .run = eval_run,
};
