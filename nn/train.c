/* train.c - packed data loader, LR schedules, AdamW training step (accumulation, clipping), verified training-state
 * checkpoints, and the one resumable training loop (nn_fit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <jansson.h>

#include "base/base.h"
#include "nn/train.h"

/* ---- data ---- */

int nn_data_from_text(nn_data *d, const nn_tokenizer *t, const char *path)
{
    memset(d, 0, sizeof *d);
    char *text;
    size_t len, n;
    if (hx_read_file(path, &text, &len)) return -1;
    int r = nn_tokenizer_encode(t, text, len, &d->tok, &n);
    free(text);
    if (r) return error_prefix("tokenising %s", path);
    d->n = n;
    d->eos = nn_tokenizer_token_id(t, "<|endoftext|>");
    for (size_t i = 0; i < n; i++) d->n_docs += d->tok[i] == d->eos;
    if (n && d->tok[n - 1] != d->eos) d->n_docs++;
    return 0;
}

void nn_data_release(nn_data *d)
{
    free(d->tok);
    memset(d, 0, sizeof *d);
}

int nn_loader_init(nn_loader *l, const nn_data *d, int B, int T)
{
    if (B < 1 || T < 1) return error("loader: batch %d x %d", B, T);
    if (d->n < (size_t)T + 1)
        return error("loader: the corpus has %zu tokens, fewer than one sequence of %d + 1", d->n, T);
    l->d = d;
    l->B = B;
    l->T = T;
    l->pos = 0;
    l->epoch = 0;
    return 0;
}

void nn_loader_next(nn_loader *l, int32_t *ids, int32_t *tg, int32_t *seg, int32_t *pos)
{
    const nn_data *d = l->d;
    int T = l->T;
    for (int b = 0; b < l->B; b++) {
        if (l->pos + (size_t)T + 1 > d->n) {
            l->pos = 0;
            l->epoch++;
        }
        const int32_t *w = d->tok + l->pos;
        int s = 0, p = 0;
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = w[t];
            seg[b * T + t] = s;
            pos[b * T + t] = p++;
            if (w[t] == d->eos) {
                tg[b * T + t] = -100;
                s++;
                p = 0;
            } else
                tg[b * T + t] = w[t + 1];
        }
        l->pos += (size_t)T;
    }
}

/* ---- schedules ---- */

int nn_sched_parse(const char *s, nn_sched_kind *k)
{
    if (!strcmp(s, "constant")) *k = NN_SCHED_CONSTANT;
    else if (!strcmp(s, "cosine")) *k = NN_SCHED_COSINE;
    else if (!strcmp(s, "wsd")) *k = NN_SCHED_WSD;
    else return -1;
    return 0;
}

double nn_sched_lr(const nn_sched *s, int step)
{
    if (step < s->warmup) return s->lr * (step + 1) / (double)s->warmup;
    int span = s->total - s->warmup;
    if (span <= 0) return s->lr;
    double f = (double)(step - s->warmup) / span; /* 0 .. 1 */
    if (f > 1) f = 1;
    switch (s->kind) {
    case NN_SCHED_CONSTANT: return s->lr;
    case NN_SCHED_COSINE: return s->min_lr + 0.5 * (s->lr - s->min_lr) * (1 + cos(M_PI * f));
    case NN_SCHED_WSD: {
        double start = 1 - s->decay_frac;
        if (f <= start || s->decay_frac <= 0) return s->lr;
        return s->lr + (s->min_lr - s->lr) * (f - start) / s->decay_frac;
    }
    }
    return s->lr;
}

/* ---- trainer ---- */

int nn_trainer_init(nn_trainer *tr, nn_model *m, const nn_data *d, int B, int T, const nn_sched *s, int accum)
{
    memset(tr, 0, sizeof *tr);
    if (!m->g) return error("trainer: no trainable parameter groups");
    if (nn_loader_init(&tr->ld, d, B, T) || nn_model_prepare(m, B, T, NN_ACT_TRAIN)) return -1;
    tr->m = m;
    tr->sched = *s;
    tr->beta1 = 0.9f;
    tr->beta2 = 0.95f;
    tr->eps = 1e-8f;
    tr->weight_decay = 0.1f;
    tr->clip = 1.0f;
    tr->accum = accum < 1 ? 1 : accum;
    size_t N = (size_t)B * T;
    tr->ids = xmalloc(4 * N * sizeof(int32_t));
    tr->tg = tr->ids + N;
    tr->seg = tr->tg + N;
    tr->pos = tr->seg + N;
    return 0;
}

void nn_trainer_release(nn_trainer *tr)
{
    free(tr->ids);
    memset(tr, 0, sizeof *tr);
}

int nn_train_xent_micro(void *arg, long long micro, float grad_scale, nn_fit_stats *st)
{
    (void)micro; /* the loader's position is the trainer's state */
    nn_trainer *tr = arg;
    nn_model *m = tr->m;
    nn_loader_next(&tr->ld, tr->ids, tr->tg, tr->seg, tr->pos);
    nn_batch bt = {.B = tr->ld.B, .T = tr->ld.T, .ids = tr->ids, .pos = tr->pos, .seg = tr->seg};
    double l;
    int cnt;
    if (nn_model_forward(m, &bt, NULL, NULL, NULL) || nn_model_xent(m, tr->tg, 1, grad_scale, &l, &cnt) ||
        nn_model_backward(m))
        return -1;
    st->loss += l;
    st->tokens += cnt;
    return 0;
}

int nn_train_step(nn_trainer *tr, double *loss, double *grad_norm, double *lr_out)
{
    nn_model_zero_grad(tr->m);
    nn_fit_stats st = {0};
    for (int a = 0; a < tr->accum; a++)
        if (nn_train_xent_micro(tr, (long long)tr->step * tr->accum + a, 1.0f / tr->accum, &st)) return -1;
    if (nn_train_update(tr, grad_norm, lr_out)) return -1;
    tr->tokens += st.tokens;
    if (loss) *loss = st.loss / tr->accum;
    return 0;
}

/* One multi-tensor AdamW launch per run of trainable tensors that lie back to back in both the parameter and
 * the gradient/moment buffers (all of them when nothing is frozen); segment ends are relative to the run. */
void nn_adamw_step(nn_model *m, const k_adamw_hp *hp)
{
    k_backend *be = m->be;
    size_t *ends = xmalloc((size_t)(m->n_params > 0 ? m->n_params : 1) * sizeof *ends);
    unsigned char *decay = xmalloc((size_t)(m->n_params > 0 ? m->n_params : 1));
    for (int i = 0; i < m->n_params;) {
        const nn_param *p0 = &m->params[i];
        if (p0->goff == SIZE_MAX) { i++; continue; }
        size_t n = 0;
        int ns = 0;
        for (; i < m->n_params; i++) {
            const nn_param *p = &m->params[i];
            if (p->goff == SIZE_MAX || p->off != p0->off + n || p->goff != p0->goff + n) break;
            n += p->numel;
            ends[ns] = n;
            decay[ns++] = (unsigned char)p->decay;
        }
        be->op->adamw(be, m->p + p0->off, m->g + p0->goff, m->m + p0->goff, m->v + p0->goff, n, ns, ends, decay, hp);
    }
    free(ends);
    free(decay);
}

int nn_train_update(nn_trainer *tr, double *grad_norm, double *lr_out)
{
    nn_model *m = tr->m;
    k_backend *be = m->be;
    double ss;
    be->op->sumsq(be, &ss, m->g, m->n_gfloats);
    double norm = sqrt(ss);
    if (!isfinite(norm)) return error("step %d: gradient norm is not finite (lower the learning rate)", tr->step + 1);
    if (tr->clip > 0 && norm > tr->clip) be->op->scale(be, m->g, (float)(tr->clip / norm), m->n_gfloats);
    double lr = nn_sched_lr(&tr->sched, tr->step);
    k_adamw_hp hp = {.lr = (float)lr, .beta1 = tr->beta1, .beta2 = tr->beta2, .eps = tr->eps,
                     .weight_decay = tr->weight_decay, .step = tr->step + 1};
    nn_adamw_step(m, &hp);
    tr->step++;
    if (grad_norm) *grad_norm = norm;
    if (lr_out) *lr_out = lr;
    return 0;
}

/* ---- training state ---- */

/* The states listed in dir/state.json, newest first (a new reference), or NULL if it cannot be read (warned when
 * resuming). A state.json of hx before digests (one state, top-level fields) reads as a list of that one state,
 * without a digest. */
static json_t *state_list(const char *jp, int resuming)
{
    json_t *j = hx_read_json(jp, 0), *list = NULL; /* a regular file within the doc cap (base.h) */
    if (!j) {
        if (resuming) log_warn("%s (the training state is unreadable; training starts over)", hx_last_error());
        hx_clear_error();
        return NULL;
    }
    if (json_is_array(json_object_get(j, "states"))) list = json_incref(json_object_get(j, "states"));
    else if (json_is_string(json_object_get(j, "file"))) list = json_pack("[O]", j);
    else if (resuming) log_warn("%s: lists no state (training starts over)", jp);
    json_decref(j);
    return list;
}

static const char *state_file(json_t *rec)
{
    const char *fn = json_string_value(json_object_get(rec, "file"));
    return fn && !strchr(fn, '/') && !strncmp(fn, "state-", 6) ? fn : NULL;
}

/* Removes the state files of dir that `list` does not name (older states, a damaged one, a killed write's temp). */
static void state_prune(const char *dir, json_t *list)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "state-", 6)) continue;
        int listed = 0;
        for (size_t i = 0; i < json_array_size(list) && !listed; i++) {
            const char *fn = state_file(json_array_get(list, i));
            listed = fn && !strcmp(fn, e->d_name);
        }
        if (listed) continue;
        char *p = hx_path_join(dir, e->d_name);
        remove(p);
        free(p);
    }
    if (d) closedir(d);
}

int nn_train_save(const nn_trainer *tr, const char *dir, json_t *extra)
{
    const nn_model *m = tr->m;
    k_backend *be = m->be;
    if (hx_mkdir_p(dir)) return -1;
    st_writer w;
    st_writer_init(&w);
    float *host = xmalloc((m->n_floats > m->n_gfloats ? m->n_floats : m->n_gfloats) * sizeof(float) + 4);
    int64_t np = (int64_t)m->n_floats, ng = (int64_t)m->n_gfloats;
    be->op->download(be, host, m->p, m->n_floats * sizeof(float));
    int r = st_writer_add(&w, "params", ST_F32, 1, &np, host);
    be->op->download(be, host, m->m, m->n_gfloats * sizeof(float));
    r = r || st_writer_add(&w, "adam_m", ST_F32, 1, &ng, host);
    be->op->download(be, host, m->v, m->n_gfloats * sizeof(float));
    r = r || st_writer_add(&w, "adam_v", ST_F32, 1, &ng, host);
    free(host);
    char fname[64], hex[65];
    snprintf(fname, sizeof fname, "state-%08d.safetensors", tr->step);
    char *sp = hx_path_join(dir, fname), *jp = hx_path_join(dir, "state.json");
    if (!r) r = st_writer_write(&w, sp);
    st_writer_release(&w);
    if (!r) r = hx_sha256_file_hex(sp, hex);
    free(sp);
    if (r) {
        free(jp);
        return -1;
    }
    json_t *rec = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "file", fname, "sha256", hex, "step",
                            tr->step, "tokens", (json_int_t)tr->tokens, "data_pos", (json_int_t)tr->ld.pos,
                            "data_epoch", (json_int_t)tr->ld.epoch, "n_params", (json_int_t)m->n_floats, "n_grads",
                            (json_int_t)m->n_gfloats, "trainable", (json_int_t)m->trainable);
    if (extra) json_object_set(rec, "extra", extra);
    /* this state, then the older ones still listed (a state past this step was abandoned by a fallback) */
    json_t *list = json_array(), *prev = hx_file_exists(jp) ? state_list(jp, 0) : NULL;
    json_array_append_new(list, rec);
    for (size_t i = 0; i < json_array_size(prev) && json_array_size(list) < NN_TRAIN_KEEP; i++) {
        json_t *p = json_array_get(prev, i);
        if (state_file(p) && json_is_string(json_object_get(p, "sha256")) &&
            json_integer_value(json_object_get(p, "step")) < tr->step)
            json_array_append(list, p);
    }
    json_decref(prev);
    json_t *j = json_pack("{s:i, s:O}", "stage_train_state", 2, "states", list);
    char *txt = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(j);
    r = hx_write_file_atomic(jp, txt, strlen(txt));
    if (!r) state_prune(dir, list);
    json_decref(list);
    free(jp);
    free(txt);
    return r;
}

/* One listed state into the trainer: 1 restored, 0 damaged (warned: the caller tries the previous one), -1 error. */
static int state_restore(nn_trainer *tr, const char *dir, json_t *rec)
{
    nn_model *m = tr->m;
    k_backend *be = m->be;
    json_int_t np = json_integer_value(json_object_get(rec, "n_params")),
               ng = json_integer_value(json_object_get(rec, "n_grads")),
               tm = json_integer_value(json_object_get(rec, "trainable"));
    const char *fn = state_file(rec), *want_hex = json_string_value(json_object_get(rec, "sha256"));
    if (!fn) {
        log_warn("%s/state.json: a state names no file; skipping it", dir);
        return 0;
    }
    if ((size_t)np != m->n_floats || (size_t)ng != m->n_gfloats || (unsigned)tm != m->trainable)
        return error("%s/state.json: the saved state is for another model shape or freezing (%lld params, %lld "
                     "trainable)", dir, (long long)np, (long long)ng);
    char *sp = hx_path_join(dir, fn), hex[65];
    int r = 0;
    if (!want_hex) {
        log_warn("%s: no digest recorded (written by an older hx); not trusted, skipping it", sp);
    } else if (!hx_file_exists(sp) || hx_sha256_file_hex(sp, hex)) {
        log_warn("%s: missing or unreadable; skipping it", sp);
    } else if (strcmp(hex, want_hex)) {
        log_warn("%s: damaged (SHA-256 %.12s..., recorded %.12s...); skipping it", sp, hex, want_hex);
    } else {
        st_file f;
        const char *names[3] = {"params", "adam_m", "adam_v"};
        float *dst[3] = {m->p, m->m, m->v};
        size_t want[3] = {m->n_floats, m->n_gfloats, m->n_gfloats};
        const st_tensor *t[3] = {NULL, NULL, NULL};
        int ok = !st_open(&f, sp);
        for (int i = 0; i < 3 && ok; i++) {
            t[i] = st_find(&f, names[i]);
            ok = t[i] && t[i]->dtype == ST_F32 && st_numel(t[i]) == want[i];
        }
        if (ok) { /* every tensor checked before any is uploaded: a skipped state leaves the model as it was */
            for (int i = 0; i < 3; i++) be->op->upload(be, dst[i], f.data + t[i]->offset, want[i] * sizeof(float));
            tr->step = (int)json_integer_value(json_object_get(rec, "step"));
            tr->tokens = json_integer_value(json_object_get(rec, "tokens"));
            tr->ld.pos = (size_t)json_integer_value(json_object_get(rec, "data_pos"));
            tr->ld.epoch = json_integer_value(json_object_get(rec, "data_epoch"));
            if (tr->ld.pos + (size_t)tr->ld.T + 1 > tr->ld.d->n && tr->ld.pos != 0) tr->ld.pos = 0;
            r = 1;
        } else {
            log_warn("%s: not a training state of this model (%s); skipping it", sp, hx_last_error());
        }
        st_close(&f);
    }
    free(sp);
    return r;
}

int nn_train_resume(nn_trainer *tr, const char *dir, json_t **extra)
{
    if (extra) *extra = NULL;
    char *jp = hx_path_join(dir, "state.json");
    json_t *list = hx_file_exists(jp) ? state_list(jp, 1) : NULL;
    int r = 0;
    for (size_t i = 0; i < json_array_size(list) && r == 0; i++) {
        json_t *rec = json_array_get(list, i);
        r = state_restore(tr, dir, rec);
        if (r == 1 && extra && json_is_object(json_object_get(rec, "extra")))
            *extra = json_incref(json_object_get(rec, "extra"));
        if (r == 1 && i > 0) log_warn("%s: resuming from an older state (step %d)", dir, tr->step);
        if (r == 0 && i + 1 == json_array_size(list)) log_warn("%s: no intact training state; training starts over", dir);
    }
    json_decref(list);
    free(jp);
    return r;
}

/* ---- the training log ---- */

double nn_train_log_trim(const char *path, int step)
{
    char *buf;
    size_t len;
    double first = NAN;
    if (!hx_file_exists(path) || hx_read_file(path, &buf, &len)) return first;
    size_t keep = 0;
    for (char *line = buf; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
        int s = j ? (int)json_integer_value(json_object_get(j, "step")) : INT32_MAX;
        if (s <= step && isnan(first) && j) first = json_number_value(json_object_get(j, "loss"));
        json_decref(j);
        if (s > step) break;
        keep = (size_t)(nl + 1 - buf);
        line = nl + 1;
    }
    hx_write_file_atomic(path, buf, keep);
    free(buf);
    return first;
}

/* ---- the training loop ---- */

/* The log window (sums of the steps since the last log line) is saved with the training state (its `extra`), so a
 * run stopped between two log lines resumes with the same window and writes the same log as an uninterrupted one. */
static int fit_save(nn_trainer *tr, const nn_fit_cfg *cfg, const nn_fit_stats *win, int win_n)
{
    json_t *parts = json_array();
    for (int i = 0; i < 4; i++) json_array_append_new(parts, hx_json_num(win->part[i]));
    json_t *w = json_pack("{s:i, s:o, s:o}", "n", win_n, "loss", hx_json_num(win->loss), "parts", parts);
    if (!w) return error("%s: step %d: the loss window is not finite", cfg->label, tr->step);
    int r = nn_train_save(tr, cfg->ckpt_dir, w);
    json_decref(w);
    return r;
}

static void fit_load_window(json_t *w, nn_fit_stats *win, int *win_n)
{
    *win_n = (int)json_integer_value(json_object_get(w, "n"));
    win->loss = json_number_value(json_object_get(w, "loss"));
    for (int i = 0; i < 4; i++) win->part[i] = json_number_value(json_array_get(json_object_get(w, "parts"), (size_t)i));
}

int nn_fit(nn_trainer *tr, const nn_fit_cfg *cfg, nn_fit_micro fn, void *arg, nn_fit_result *res)
{
    nn_model *m = tr->m;
    nn_fit_result R = {.first_loss = NAN, .last_loss = NAN};
    FILE *log = NULL;
    int np = 0;
    while (np < 4 && cfg->part_names[np]) np++;
    if (cfg->steps < 1 || cfg->log_every < 1 || cfg->ckpt_every < 1)
        return error("%s: steps, log_every and ckpt_every must be >= 1", cfg->label);
    nn_fit_stats win = {0};
    int win_n = 0, rc = -1;
    if (cfg->ckpt_dir) {
        json_t *w = NULL;
        int resumed = nn_train_resume(tr, cfg->ckpt_dir, &w);
        if (resumed < 0) return error_prefix("%s", cfg->label);
        if (resumed) {
            log_info("%s%sresuming at step %d of %d", hx_log_scope()[0] ? "" : cfg->label, /* the scope names it */
                     hx_log_scope()[0] ? "" : ": ", tr->step, cfg->steps);
            if (w) fit_load_window(w, &win, &win_n);
            json_decref(w);
        }
        if (cfg->log_path) {
            if (resumed) R.first_loss = nn_train_log_trim(cfg->log_path, tr->step);
            else remove(cfg->log_path);
        }
    } else if (cfg->log_path)
        remove(cfg->log_path);
    if (cfg->log_path && !(log = fopen(cfg->log_path, "a"))) return error("%s: cannot append", cfg->log_path);
    R.start_step = tr->step;
    hx_progress pg;
    hx_progress_begin(&pg, cfg->label, (double)cfg->steps * cfg->tokens_per_step, "tok");
    double t0 = hx_now();
    while (tr->step < cfg->steps) {
        if ((cfg->interrupted && *cfg->interrupted) ||
            (cfg->stop_after > 0 && tr->step == cfg->stop_after && tr->step > R.start_step)) {
            if (cfg->ckpt_dir && fit_save(tr, cfg, &win, win_n)) goto out;
            error("%s: interrupted at step %d (saved; it resumes there)", cfg->label, tr->step);
            goto out;
        }
        k_mem_reset_peak(m->be);
        nn_model_zero_grad(m);
        nn_fit_stats st = {0};
        for (int a = 0; a < tr->accum; a++)
            if (fn(arg, (long long)tr->step * tr->accum + a, 1.0f / tr->accum, &st)) {
                error_prefix("%s: step %d", cfg->label, tr->step + 1);
                goto out;
            }
        double gn, lr;
        if (nn_train_update(tr, &gn, &lr)) goto out;
        tr->tokens += st.tokens;
        win.loss += st.loss / tr->accum;
        for (int i = 0; i < np; i++) win.part[i] += st.part[i] / tr->accum;
        win_n++;
        if (tr->step % cfg->log_every == 0 || tr->step == cfg->steps) {
            R.last_loss = win.loss / win_n;
            if (isnan(R.first_loss)) R.first_loss = R.last_loss;
            char nb[3][48]; /* a diverged loss is written as null (hx_json_numf): the line stays JSON */
            if (log) fprintf(log, "{\"step\": %d, \"loss\": %s", tr->step, hx_json_numf(nb[0], "%.6f", R.last_loss));
            for (int i = 0; i < np; i++) {
                R.last_part[i] = win.part[i] / win_n;
                if (log) fprintf(log, ", \"%s\": %s", cfg->part_names[i], hx_json_numf(nb[0], "%.6f", R.last_part[i]));
            }
            if (log) {
                fprintf(log, ", \"lr\": %s, \"grad_norm\": %s, \"tokens\": %lld}\n", hx_json_numf(nb[1], "%.6g", lr),
                        hx_json_numf(nb[2], "%.4f", gn), tr->tokens);
                fflush(log);
            }
            memset(&win, 0, sizeof win);
            win_n = 0;
        }
        if (m->be->mem_peak > R.peak_mem) R.peak_mem = m->be->mem_peak;
        hx_progress_update(&pg, (double)tr->step * cfg->tokens_per_step, "loss %.4f, mem %.2f GiB",
                           st.loss / tr->accum, m->be->mem_peak / 1073741824.0);
        if (cfg->ckpt_dir && tr->step % cfg->ckpt_every == 0 && tr->step < cfg->steps &&
            fit_save(tr, cfg, &win, win_n))
            goto out;
    }
    hx_progress_end(&pg);
    R.seconds = hx_now() - t0;
    R.tokens_per_s = R.seconds > 0 ? (double)(tr->step - R.start_step) * cfg->tokens_per_step / R.seconds : 0;
    rc = 0;
out:
    if (log) fclose(log);
    if (res) *res = R;
    return rc;
}
