/* distill_loss.c - GenDistill machinery: KL/CE objectives, layer-wise alignment, instruction rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "nn/chat.h"
#include "nn/distill_loss.h"

#define IGNORE_INDEX (-100)

/* ---------------------------------------------------------------- objectives */

int nn_objective_parse(const char *s, nn_objective *o)
{
    if (!strcmp(s, "kl") || !strcmp(s, "kd")) *o = NN_OBJ_KL;
    else if (!strcmp(s, "reverse_kl")) *o = NN_OBJ_REVERSE_KL;
    else if (!strcmp(s, "ce") || !strcmp(s, "sft")) *o = NN_OBJ_CE;
    else if (!strcmp(s, "kl+ce")) *o = NN_OBJ_KL_CE;
    else return -1;
    return 0;
}

const char *nn_objective_name(nn_objective o)
{
    static const char *names[] = {"kl", "reverse_kl", "ce", "kl+ce"};
    return (unsigned)o < 4 ? names[o] : "?";
}

int nn_objective_needs_teacher(nn_objective o) { return o != NN_OBJ_CE; }

int nn_freeze_mask(const char *const *frozen, int n, unsigned *trainable)
{
    unsigned m = NN_ALL_GROUPS;
    for (int i = 0; i < n; i++) {
        nn_group g;
        if (nn_group_parse(frozen[i], &g))
            return error("freeze: '%s' is not a parameter group (embed, attention, kda, mlp, norm, lm_head)",
                         frozen[i]);
        m &= ~NN_GROUP_BIT(g);
    }
    *trainable = m;
    return 0;
}

int nn_distill_init(nn_distill *ds, nn_model *student, nn_model *teacher, int B, int T, nn_objective obj,
                    float alpha, float temp)
{
    memset(ds, 0, sizeof *ds);
    if (nn_objective_needs_teacher(obj)) {
        if (!teacher) return error("distill: objective %s needs a teacher", nn_objective_name(obj));
        if (teacher->cfg.vocab != student->cfg.vocab)
            return error("distill: teacher vocabulary %d differs from the student's %d (same tokenizer needed)",
                         teacher->cfg.vocab, student->cfg.vocab);
        if (teacher->be != student->be) return error("distill: teacher and student must live on the same backend");
    }
    if (!(temp > 0)) return error("distill: temperature %g must be > 0", temp);
    if (obj == NN_OBJ_KL_CE && !(alpha >= 0 && alpha <= 1)) return error("distill: alpha %g outside [0, 1]", alpha);
    if (nn_model_prepare(student, B, T, NN_ACT_TRAIN)) return -1;
    ds->s = student;
    ds->t = nn_objective_needs_teacher(obj) ? teacher : NULL;
    ds->obj = obj;
    ds->alpha = alpha;
    ds->temp = temp;
    ds->B = B;
    ds->T = T;
    k_backend *be = student->be;
    size_t N = (size_t)B * T;
    if (ds->t) { /* a chunk of the student's LM head at a time (nn_model_head) */
        ds->dkl = k_alloc_f32(be, (size_t)student->head_rows * student->cfg.vocab);
        ds->tlog = k_alloc_f32(be, (size_t)student->head_rows * student->cfg.vocab);
    }
    ds->rows = k_alloc_f32(be, N);
    ds->mask = be->op->alloc(be, N * sizeof(int32_t));
    ds->hmask = xmalloc(N * sizeof(int32_t));
    ds->hrows = xmalloc(N * sizeof(float));
    return 0;
}

void nn_distill_release(nn_distill *ds)
{
    if (ds->s) {
        k_backend *be = ds->s->be;
        if (ds->dkl) be->op->free(be, ds->dkl);
        if (ds->tlog) be->op->free(be, ds->tlog);
        be->op->free(be, ds->rows);
        be->op->free(be, ds->mask);
    }
    free(ds->hmask);
    free(ds->hrows);
    memset(ds, 0, sizeof *ds);
}

/* the objective on a chunk of rows of the student's LM head (nn_model_head): the teacher's logits of the same rows,
 * the KL (it reads the student's logits before the CE gradient overwrites them), the CE, their gradients summed */
typedef struct distill_ctx {
    nn_distill *ds;
    const int32_t *tg; /* device [N] targets */
    int grad, ce_grad;
    k_kl_mode mode;
    float kl_scale, ce_scale;
} distill_ctx;

static int distill_chunk(void *p, float *logits, int r0, int n)
{
    distill_ctx *x = p;
    nn_distill *ds = x->ds;
    k_backend *be = ds->s->be;
    const int V = ds->s->cfg.vocab;
    if (ds->t) {
        nn_model_head_rows(ds->t, ds->tlog, r0, n);
        be->op->kl_fwd_bwd(be, ds->rows + r0, x->grad ? ds->dkl : NULL, logits, ds->tlog, ds->mask + r0, n, V, x->mode,
                           ds->temp, x->kl_scale);
    }
    be->op->xent_fwd_bwd(be, ds->s->loss_rows + r0, x->ce_grad ? logits : NULL, logits, x->tg + r0, n, V,
                         IGNORE_INDEX, x->ce_scale);
    if (x->grad && ds->t) {
        if (x->ce_grad) be->op->add(be, logits, logits, ds->dkl, (size_t)n * V);
        else be->op->copy(be, logits, ds->dkl, (size_t)n * V * sizeof(float));
    }
    return 0;
}

/* the mean of rows [N] (device) over cnt counted rows */
static double rows_mean(k_backend *be, float *host, const float *rows, int N, int cnt)
{
    be->op->download(be, host, rows, (size_t)N * sizeof(float));
    double sum = 0;
    for (int i = 0; i < N; i++) sum += host[i];
    return cnt ? sum / cnt : 0;
}

int nn_distill_micro(nn_distill *ds, const nn_batch *bt, const int32_t *targets, float grad_scale, int grad,
                     nn_distill_loss *out)
{
    nn_model *s = ds->s, *t = ds->t;
    k_backend *be = s->be;
    int N = bt->B * bt->T, V = s->cfg.vocab;
    if (bt->B > ds->B || N > ds->B * ds->T) return error("distill: batch %d x %d exceeds %d x %d", bt->B, bt->T, ds->B, ds->T);
    int cnt = 0;
    for (int i = 0; i < N; i++) cnt += ds->hmask[i] = targets[i] != IGNORE_INDEX && targets[i] >= 0 && targets[i] < V;
    nn_distill_loss L = {.count = cnt};
    if (t && (nn_model_prepare(t, bt->B, bt->T, NN_ACT_HIDDEN) || nn_model_forward(t, bt, NULL, NULL, NULL)))
        return error_prefix("distill: teacher forward");
    if (nn_model_forward(s, bt, NULL, NULL, NULL)) return error_prefix("distill: student forward");
    if (!cnt) { /* nothing to learn from here: no loss, no gradient */
        if (out) *out = L;
        return 0;
    }
    double w_kl = ds->obj == NN_OBJ_KL_CE ? ds->alpha : t ? 1 : 0, w_ce = ds->obj == NN_OBJ_KL_CE ? 1 - ds->alpha
                                                                      : ds->obj == NN_OBJ_CE ? 1 : 0;
    double tau2 = (double)ds->temp * ds->temp;
    int32_t *tg = s->io + 3 * (size_t)N; /* nn_model_xent's place for them */
    be->op->upload(be, tg, targets, (size_t)N * 4);
    if (t) be->op->upload(be, ds->mask, ds->hmask, (size_t)N * sizeof(int32_t));
    distill_ctx x = {.ds = ds, .tg = tg, .grad = grad, .ce_grad = grad && w_ce > 0,
                     .mode = ds->obj == NN_OBJ_REVERSE_KL ? K_KL_REVERSE : K_KL_FORWARD,
                     .kl_scale = (float)(grad_scale * w_kl * tau2 / cnt), .ce_scale = (float)(grad_scale * w_ce / cnt)};
    if (nn_model_head(s, grad, distill_chunk, &x)) return -1;
    if (t) L.kl = rows_mean(be, ds->hrows, ds->rows, N, cnt);
    /* the student's cross-entropy is always reported; its gradient only when it is trained */
    L.ce = rows_mean(be, ds->hrows, s->loss_rows, N, cnt);
    L.loss = w_kl * tau2 * L.kl + w_ce * L.ce;
    if (grad && nn_model_backward(s)) return -1;
    if (out) *out = L;
    return 0;
}

/* ---------------------------------------------------------------- layer-wise alignment */

int nn_align_target_parse(const char *s, nn_align_target *t)
{
    if (!strcmp(s, "mixer_out")) *t = NN_ALIGN_MIXER_OUT;
    else if (!strcmp(s, "block_out")) *t = NN_ALIGN_BLOCK_OUT;
    else return -1;
    return 0;
}

int nn_align_init(nn_align *al, nn_model *student, nn_model *teacher, int B, int T, nn_align_target target)
{
    memset(al, 0, sizeof *al);
    const nn_config *s = &student->cfg, *t = &teacher->cfg;
    if (s->n_layers != t->n_layers || s->d != t->d || s->vocab != t->vocab || s->ffn != t->ffn)
        return error("align: the student (%d layers, d %d, vocab %d) is not a conversion of the teacher (%d layers, "
                     "d %d, vocab %d)", s->n_layers, s->d, s->vocab, t->n_layers, t->d, t->vocab);
    if (student->be != teacher->be) return error("align: teacher and student must live on the same backend");
    for (int l = 0; l < s->n_layers; l++)
        if (s->mixer[l] != t->mixer[l]) al->layer[al->n++] = l;
    if (!al->n) return error("align: no student layer differs from the teacher's (convert the teacher first)");
    if (nn_model_prepare(student, B, T, NN_ACT_TRAIN)) return -1;
    al->s = student;
    al->t = teacher;
    al->target = target;
    al->B = B;
    al->T = T;
    k_backend *be = student->be;
    size_t N = (size_t)B * T, d = (size_t)s->d;
    al->hid = xcalloc((size_t)s->n_layers + 1, sizeof *al->hid);
    for (int i = 0; i < al->n; i++) al->hid[al->layer[i]] = xmalloc(N * d * sizeof(float));
    al->x = k_alloc_f32(be, N * d);
    al->y = k_alloc_f32(be, 3 * N * d + N); /* teacher target | student output | dloss/doutput | rows */
    al->dy = al->y + 2 * N * d;
    al->rows = al->dy + N * d;
    al->hrows = xmalloc(N * sizeof(float));
    return 0;
}

void nn_align_release(nn_align *al)
{
    if (al->s) {
        k_backend *be = al->s->be;
        be->op->free(be, al->x);
        be->op->free(be, al->y);
        for (int l = 0; l <= al->s->cfg.n_layers; l++) free(al->hid[l]);
    }
    free(al->hid);
    free(al->hrows);
    memset(al, 0, sizeof *al);
}

int nn_align_micro(nn_align *al, const nn_batch *bt, float grad_scale, int grad, double *loss)
{
    nn_model *s = al->s, *t = al->t;
    k_backend *be = s->be;
    size_t N = (size_t)bt->B * bt->T, d = (size_t)s->cfg.d;
    if (bt->B > al->B || N > (size_t)al->B * al->T)
        return error("align: batch %d x %d exceeds %d x %d", bt->B, bt->T, al->B, al->T);
    /* the teacher's hidden states at the inputs of the aligned layers */
    if (nn_model_prepare(t, bt->B, bt->T, NN_ACT_HIDDEN) || nn_model_forward(t, bt, NULL, NULL, al->hid))
        return error_prefix("align: teacher forward");
    float *tgt = al->y, *out = al->y + N * d;
    int mix = al->target == NN_ALIGN_MIXER_OUT;
    double total = 0;
    for (int i = 0; i < al->n; i++) {
        int l = al->layer[i];
        be->op->upload(be, al->x, al->hid[l], N * d * sizeof(float));
        if (nn_model_layer_forward(t, l, bt, al->x, mix ? tgt : NULL, mix ? NULL : tgt) ||
            nn_model_layer_forward(s, l, bt, al->x, mix ? out : NULL, mix ? NULL : out))
            return error_prefix("align: layer %d", l);
        /* loss = (1/n) sum_layers (1/N) sum_rows mean_d (out - tgt)^2 */
        be->op->mse_fwd_bwd(be, al->rows, grad ? al->dy : NULL, out, tgt, (int)N, (int)d,
                            grad_scale / (float)(al->n * N));
        be->op->download(be, al->hrows, al->rows, N * sizeof(float));
        double sum = 0;
        for (size_t r = 0; r < N; r++) sum += al->hrows[r];
        al->mse[i] = sum / N;
        total += al->mse[i];
        if (grad && nn_model_layer_backward(s, l, mix ? al->dy : NULL, mix ? NULL : al->dy, NULL)) return -1;
    }
    if (loss) *loss = total / al->n;
    return 0;
}

/* ---------------------------------------------------------------- instruction rows */

typedef struct sft_ex {
    int32_t *ids;
    int n, n_prompt;
} sft_ex;

/* One JSONL line -> prompt and completion ids. */
static int sft_encode_line(const nn_tokenizer *tok, json_t *j, sft_ex *ex)
{
    json_t *p = json_object_get(j, "prompt"), *c = json_object_get(j, "completion"), *msgs = json_object_get(j, "messages");
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (json_is_string(p) && json_is_string(c)) {
        if (nn_tokenizer_encode(tok, json_string_value(p), json_string_length(p), &a, &na) ||
            nn_tokenizer_encode(tok, json_string_value(c), json_string_length(c), &b, &nb)) {
            free(a);
            return -1;
        }
        a = xrealloc(a, (na + nb + 1) * sizeof *a);
        memcpy(a + na, b, nb * sizeof *b);
        free(b);
        ex->ids = a;
        ex->n = (int)(na + nb);
        ex->n_prompt = (int)na;
        return 0;
    }
    if (json_is_array(msgs)) {
        nn_chat_msg *m;
        size_t n, nid, np;
        if (nn_chat_parse(msgs, &m, &n)) return -1;
        int r = nn_chat_encode(tok, m, n, 0, &a, &nid, &np);
        free(m);
        if (r) return -1;
        ex->ids = a;
        ex->n = (int)nid;
        ex->n_prompt = (int)np;
        return 0;
    }
    return error("expected string fields \"prompt\" and \"completion\", or a \"messages\" list");
}

int nn_sft_load_mem(nn_sft_data *d, const nn_tokenizer *tok, const char *text, size_t len, const char *name, int T,
                    int completion_only, int32_t pad_id, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->perm_epoch = -1;
    if (T < 2) return error("%s: rows of %d tokens are too short", name, T);
    sft_ex *ex = NULL;
    size_t n = 0, cap = 0;
    int line = 0, rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        const char *s = text + i, *nl = memchr(s, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - s) : len - i;
        i += ll + 1;
        line++;
        size_t k = 0;
        while (k < ll && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
        if (k == ll) continue;
        json_error_t je;
        json_t *j = json_loadb(s, ll, 0, &je);
        if (!j) {
            rc = error("%s:%d:%d: %s", name, line, je.column, je.text);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            ex = xrealloc(ex, cap * sizeof *ex);
        }
        if (!json_is_object(j)) rc = error("%s:%d: expected a JSON object", name, line);
        else if (sft_encode_line(tok, j, &ex[n])) rc = error_prefix("%s:%d", name, line);
        else if (ex[n].n < 2 || ex[n].n_prompt >= ex[n].n) {
            free(ex[n].ids);
            rc = error("%s:%d: the example has no completion tokens", name, line);
        } else
            n++;
        json_decref(j);
    }
    if (!rc && !n) rc = error("%s: no examples", name);
    if (rc) {
        for (size_t i = 0; i < n; i++) free(ex[i].ids);
        free(ex);
        return -1;
    }
    /* seeded order (Fisher-Yates), then first-fit packing in that order */
    hx_rng r;
    hx_rng_seed(&r, seed ^ 0x5f7d1c3a9e2b4d61ull);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)hx_rng_below(&r, i);
        sft_ex tmp = ex[i - 1];
        ex[i - 1] = ex[j];
        ex[j] = tmp;
    }
    long long rows = 0, fill = T;
    for (size_t i = 0; i < n; i++) {
        int m = ex[i].n < T ? ex[i].n : T;
        if (fill + m > T) {
            rows++;
            fill = 0;
        }
        fill += m;
    }
    size_t NT = (size_t)rows * T;
    d->T = T;
    d->R = rows;
    d->ids = xmalloc(4 * NT * sizeof(int32_t));
    d->tg = d->ids + NT;
    d->seg = d->tg + NT;
    d->pos = d->seg + NT;
    d->seed = seed;
    d->n_examples = n;
    long long row = -1;
    int t0 = T, sg = 0;
    for (size_t i = 0; i <= n; i++) {
        int m = i < n ? (ex[i].n < T ? ex[i].n : T) : T + 1;
        if (t0 + m > T && row >= 0) { /* close the row: pad in a segment of its own */
            for (int t = t0; t < T; t++) {
                size_t o = (size_t)row * T + t;
                d->ids[o] = pad_id;
                d->tg[o] = IGNORE_INDEX;
                d->seg[o] = sg;
                d->pos[o] = t - t0;
            }
        }
        if (i == n) break;
        if (t0 + m > T) {
            row++;
            t0 = 0;
            sg = 0;
        }
        sft_ex *e = &ex[i];
        d->n_truncated += e->n > T;
        d->n_prompt_tokens += e->n_prompt < m ? e->n_prompt : m;
        d->n_completion_tokens += m > e->n_prompt ? m - e->n_prompt : 0;
        for (int t = 0; t < m; t++) {
            size_t o = (size_t)row * T + t0 + t;
            int counted = t + 1 < m && (!completion_only || t + 1 >= e->n_prompt);
            d->ids[o] = e->ids[t];
            d->tg[o] = counted ? e->ids[t + 1] : IGNORE_INDEX;
            d->seg[o] = sg;
            d->pos[o] = t;
            d->n_loss_tokens += counted;
        }
        t0 += m;
        sg++;
    }
    for (size_t i = 0; i < n; i++) free(ex[i].ids);
    free(ex);
    if (!d->n_loss_tokens) {
        nn_sft_release(d);
        return error("%s: no token carries a loss (every completion truncated away? raise seq_len)", name);
    }
    d->perm = xmalloc((size_t)rows * sizeof *d->perm);
    return 0;
}

int nn_sft_load(nn_sft_data *d, const nn_tokenizer *tok, const char *jsonl_path, int T, int completion_only,
                int32_t pad_id, uint64_t seed)
{
    char *text;
    size_t len;
    memset(d, 0, sizeof *d);
    if (hx_read_file(jsonl_path, &text, &len)) return -1;
    int r = nn_sft_load_mem(d, tok, text, len, jsonl_path, T, completion_only, pad_id, seed);
    free(text);
    return r;
}

void nn_sft_release(nn_sft_data *d)
{
    free(d->ids);
    free(d->perm);
    memset(d, 0, sizeof *d);
}

void nn_sft_rows(nn_sft_data *d, long long k, int B, int32_t *ids, int32_t *tg, int32_t *seg, int32_t *pos)
{
    int T = d->T;
    for (int b = 0; b < B; b++, k++) {
        long long e = k / d->R, j = k % d->R;
        if (e != d->perm_epoch) { /* the row order of epoch e: a seeded Fisher-Yates of 0..R-1 */
            hx_rng r;
            hx_rng_seed(&r, d->seed * 0x9e3779b97f4a7c15ull + (uint64_t)e + 1);
            for (long long i = 0; i < d->R; i++) d->perm[i] = i;
            for (long long i = d->R; i > 1; i--) {
                long long x = (long long)hx_rng_below(&r, (uint64_t)i), tmp = d->perm[i - 1];
                d->perm[i - 1] = d->perm[x];
                d->perm[x] = tmp;
            }
            d->perm_epoch = e;
        }
        size_t src = (size_t)d->perm[j] * T, dst = (size_t)b * T;
        memcpy(ids + dst, d->ids + src, (size_t)T * sizeof(int32_t));
        memcpy(tg + dst, d->tg + src, (size_t)T * sizeof(int32_t));
        memcpy(seg + dst, d->seg + src, (size_t)T * sizeof(int32_t));
        memcpy(pos + dst, d->pos + src, (size_t)T * sizeof(int32_t));
    }
}
