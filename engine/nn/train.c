/* train.c - packed data loader, LR schedules, AdamW training step (accumulation, clipping), training-state resume. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "engine/nn/train.h"

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

int nn_train_step(nn_trainer *tr, double *loss, double *grad_norm, double *lr_out)
{
    nn_model *m = tr->m;
    nn_model_zero_grad(m);
    double lsum = 0;
    for (int a = 0; a < tr->accum; a++) {
        nn_loader_next(&tr->ld, tr->ids, tr->tg, tr->seg, tr->pos);
        nn_batch bt = {.B = tr->ld.B, .T = tr->ld.T, .ids = tr->ids, .pos = tr->pos, .seg = tr->seg};
        double l;
        int cnt;
        if (nn_model_forward(m, &bt, NULL, NULL, NULL) ||
            nn_model_xent(m, tr->tg, 1, 1.0f / tr->accum, &l, &cnt) || nn_model_backward(m))
            return -1;
        lsum += l;
        tr->tokens += cnt;
    }
    if (nn_train_update(tr, grad_norm, lr_out)) return -1;
    if (loss) *loss = lsum / tr->accum;
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

int nn_train_save(const nn_trainer *tr, const char *dir)
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
    /* state-<step>.safetensors first, then state.json naming it (atomic rename): a kill at any point leaves
     * either the previous complete state or the new one */
    char fname[64];
    snprintf(fname, sizeof fname, "state-%08d.safetensors", tr->step);
    char *sp = hx_path_join(dir, fname), *old = NULL;
    if (!r) r = st_writer_write(&w, sp);
    st_writer_release(&w);
    free(sp);
    if (r) return -1;
    char *jp0 = hx_path_join(dir, "state.json");
    json_t *prev = hx_read_json(jp0, 0);
    if (prev && json_is_string(json_object_get(prev, "file")) && strcmp(json_string_value(json_object_get(prev, "file")), fname))
        old = hx_path_join(dir, json_string_value(json_object_get(prev, "file")));
    json_decref(prev);
    free(jp0);
    json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "file", fname, "step", tr->step, "tokens", (json_int_t)tr->tokens,
                          "data_pos", (json_int_t)tr->ld.pos, "data_epoch", (json_int_t)tr->ld.epoch,
                          "n_params", (json_int_t)m->n_floats, "n_grads", (json_int_t)m->n_gfloats,
                          "trainable", (json_int_t)m->trainable);
    char *txt = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(j);
    char *jp = hx_path_join(dir, "state.json");
    r = hx_write_file_atomic(jp, txt, strlen(txt));
    if (!r && old) remove(old);
    free(old);
    free(jp);
    free(txt);
    return r;
}

int nn_train_resume(nn_trainer *tr, const char *dir)
{
    nn_model *m = tr->m;
    k_backend *be = m->be;
    char *jp = hx_path_join(dir, "state.json"), *sp = NULL;
    int r = 0;
    if (!hx_file_exists(jp)) goto out;
    json_t *j = hx_read_json(jp, 0);
    if (!j) {
        r = -1;
        goto out;
    }
    json_int_t step = json_integer_value(json_object_get(j, "step")),
               np = json_integer_value(json_object_get(j, "n_params")),
               ng = json_integer_value(json_object_get(j, "n_grads")),
               tm = json_integer_value(json_object_get(j, "trainable"));
    const char *fn = json_string_value(json_object_get(j, "file"));
    if (!fn || strchr(fn, '/')) {
        json_decref(j);
        r = error("%s: no state file named", jp);
        goto out;
    }
    sp = hx_path_join(dir, fn);
    if ((size_t)np != m->n_floats || (size_t)ng != m->n_gfloats || (unsigned)tm != m->trainable) {
        json_decref(j);
        r = error("%s: the saved state is for another model shape or freezing (%lld params, %lld trainable)", jp,
                  (long long)np, (long long)ng);
        goto out;
    }
    st_file f;
    if (st_open(&f, sp)) {
        json_decref(j);
        r = -1;
        goto out;
    }
    const char *names[3] = {"params", "adam_m", "adam_v"};
    float *dst[3] = {m->p, m->m, m->v};
    size_t want[3] = {m->n_floats, m->n_gfloats, m->n_gfloats};
    for (int i = 0; i < 3 && !r; i++) {
        const st_tensor *t = st_find(&f, names[i]);
        if (!t || t->dtype != ST_F32 || st_numel(t) != want[i]) {
            r = error("%s: tensor %s missing or of the wrong size", sp, names[i]);
            break;
        }
        be->op->upload(be, dst[i], f.data + t->offset, want[i] * sizeof(float));
    }
    st_close(&f);
    if (!r) {
        tr->step = (int)step;
        tr->tokens = json_integer_value(json_object_get(j, "tokens"));
        tr->ld.pos = (size_t)json_integer_value(json_object_get(j, "data_pos"));
        tr->ld.epoch = json_integer_value(json_object_get(j, "data_epoch"));
        if (tr->ld.pos + (size_t)tr->ld.T + 1 > tr->ld.d->n && tr->ld.pos != 0) tr->ld.pos = 0;
        r = 1;
    }
    json_decref(j);
out:
    free(jp);
    free(sp);
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
