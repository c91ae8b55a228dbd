/* kda_layer.c - the KDA / GDN mixer layer: forward, backward and decode over the op table (docs/models.md section 2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/kda_layer.h"

const char *const nn_kda_param_names[NN_KDA_NPARAMS] = {
    "q_proj.weight", "k_proj.weight", "v_proj.weight", "q_conv.weight", "k_conv.weight", "v_conv.weight",
    "f_down.weight", "f_up.weight", "A_log", "dt_bias", "b_proj.weight", "g_down.weight", "g_up.weight",
    "g_up.bias", "o_norm.weight", "o_proj.weight",
};

int nn_kda_cfg_check(const nn_kda_cfg *c)
{
    if (c->d <= 0 || c->Hq <= 0 || c->Hkv <= 0 || c->K <= 0 || c->r <= 0)
        return error("KDA config: d, num_heads, num_kv_heads, head_dim and gate_rank must be positive "
                     "(got %d, %d, %d, %d, %d)", c->d, c->Hq, c->Hkv, c->K, c->r);
    if (c->Hq % c->Hkv)
        return error("KDA config: num_heads %d is not a multiple of num_kv_heads %d", c->Hq, c->Hkv);
    if (c->W < 1 || c->W > 17) return error("KDA config: conv_size %d outside 1..17", c->W);
    if (c->conv_act != 0 && c->conv_act != 1) return error("KDA config: conv_act must be identity or silu");
    if (!(c->eps > 0)) return error("KDA config: norm eps must be positive");
    return 0;
}

int nn_kda_param_shape(const nn_kda_cfg *c, int i, int64_t s[2])
{
    const int64_t qk = (int64_t)c->Hq * c->K, kvk = (int64_t)c->Hkv * c->K;
    const int64_t kf = c->per_head ? c->Hq : qk;
    switch (i) {
    case NN_KDA_Q_PROJ: s[0] = qk; s[1] = c->d; return 2;
    case NN_KDA_K_PROJ: case NN_KDA_V_PROJ: s[0] = kvk; s[1] = c->d; return 2;
    case NN_KDA_Q_CONV: s[0] = qk; s[1] = c->W; return 2;
    case NN_KDA_K_CONV: case NN_KDA_V_CONV: s[0] = kvk; s[1] = c->W; return 2;
    case NN_KDA_F_DOWN: case NN_KDA_G_DOWN: s[0] = c->r; s[1] = c->d; return 2;
    case NN_KDA_F_UP: s[0] = kf; s[1] = c->r; return 2;
    case NN_KDA_A_LOG: s[0] = c->Hq; return 1;
    case NN_KDA_DT_BIAS: s[0] = kf; return 1;
    case NN_KDA_B_PROJ: s[0] = c->Hq; s[1] = c->d; return 2;
    case NN_KDA_G_UP: s[0] = qk; s[1] = c->r; return 2;
    case NN_KDA_G_UP_B: s[0] = qk; return 1;
    case NN_KDA_O_NORM: s[0] = c->K; return 1;
    case NN_KDA_O_PROJ: s[0] = c->d; s[1] = qk; return 2;
    }
    BUG("KDA parameter index %d", i);
}

size_t nn_kda_param_numel(const nn_kda_cfg *c, int i)
{
    int64_t s[2];
    int nd = nn_kda_param_shape(c, i, s);
    return nd == 1 ? (size_t)s[0] : (size_t)(s[0] * s[1]);
}

size_t nn_kda_params_floats(const nn_kda_cfg *c)
{
    size_t n = 0;
    for (int i = 0; i < NN_KDA_NPARAMS; i++) n += nn_kda_param_numel(c, i);
    return n;
}

void nn_kda_params_bind(nn_kda_params *p, float *base, const nn_kda_cfg *c)
{
    for (int i = 0; i < NN_KDA_NPARAMS; i++) {
        p->t[i] = base;
        base += nn_kda_param_numel(c, i);
    }
}

/* Activation layout: the sizes in nn_kda_acts order; KDA_KEPT what the backward reads, KDA_TMP what it can
 * remake from the kept ones (kda_core_inputs) or does not read (bl). Each buffer starts 64-byte aligned
 * (KDA_PAD): the CUDA chunk kernels read q, k, v, g, o and s_chunks 16 bytes at a time, and a buffer of an odd
 * size before them (beta or f with N * Hq floats, fd with N * r) shifted every later one by 8 bytes (a
 * "misaligned address" in kcp_out on an H200). */
#define KDA_PAD(n) (((size_t)(n) + 15) & ~(size_t)15)
#define KDA_KEPT(X, c, N, nc, B)                                                                              \
    X(qp, (N) * (c)->Hq * (c)->K) X(kp, (N) * (c)->Hkv * (c)->K) X(vp, (N) * (c)->Hkv * (c)->K)               \
    X(fd, (N) * (c)->r) X(f, (N) * (c)->Hq * ((c)->per_head ? 1 : (c)->K))                                    \
    X(g, (N) * (c)->Hq * (c)->K) X(beta, (N) * (c)->Hq) X(o, (N) * (c)->Hq * (c)->K)                          \
    X(gd, (N) * (c)->r) X(og, (N) * (c)->Hq * (c)->K) X(yn, (N) * (c)->Hq * (c)->K)                           \
    X(s_chunks, (size_t)(B) * (c)->Hq * (nc) * ((size_t)(c)->K * (c)->K + (c)->save)) X(ones, (N))
#define KDA_TMP(X, c, N)                                                                                      \
    X(qc, (N) * (c)->Hq * (c)->K) X(kc, (N) * (c)->Hkv * (c)->K) X(vc, (N) * (c)->Hkv * (c)->K)               \
    X(qn, (N) * (c)->Hq * (c)->K) X(kn, (N) * (c)->Hq * (c)->K) X(vr, (N) * (c)->Hq * (c)->K)                 \
    X(knk, (N) * (c)->Hkv * (c)->K) X(bl, (N) * (c)->Hq)

size_t nn_kda_acts_kept_floats(const nn_kda_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, nc = k_kda_nchunks(T), n = 0;
#define ADD(name, sz) n += KDA_PAD(sz);
    KDA_KEPT(ADD, c, N, nc, B)
#undef ADD
    return n;
}

size_t nn_kda_acts_tmp_floats(const nn_kda_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, n = 0;
#define ADD(name, sz) n += KDA_PAD(sz);
    KDA_TMP(ADD, c, N)
#undef ADD
    return n;
}

size_t nn_kda_acts_floats(const nn_kda_cfg *c, int B, int T)
{
    return nn_kda_acts_kept_floats(c, B, T) + nn_kda_acts_tmp_floats(c, B, T);
}

void nn_kda_acts_bind_shared(nn_kda_acts *a, float *base, float *tmp, const nn_kda_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, nc = k_kda_nchunks(T);
    a->B = B;
    a->T = T;
    a->shared_tmp = 1;
#define BIND(name, sz) a->name = base; base += KDA_PAD(sz);
    KDA_KEPT(BIND, c, N, nc, B)
#undef BIND
#define BIND(name, sz) a->name = tmp; tmp += KDA_PAD(sz);
    KDA_TMP(BIND, c, N)
#undef BIND
}

void nn_kda_acts_bind(nn_kda_acts *a, float *base, const nn_kda_cfg *c, int B, int T)
{
    nn_kda_acts_bind_shared(a, base, base + nn_kda_acts_kept_floats(c, B, T), c, B, T);
    a->shared_tmp = 0;
}

size_t nn_kda_state_floats(const nn_kda_cfg *c, int B)
{
    return (size_t)B * ((size_t)c->Hq * c->K * c->K + (size_t)(c->W - 1) * (c->Hq + 2 * c->Hkv) * c->K);
}

void nn_kda_state_bind(nn_kda_state *s, float *base, const nn_kda_cfg *c, int B)
{
    s->S = base;
    base += (size_t)B * c->Hq * c->K * c->K;
    s->cq = base;
    base += (size_t)B * (c->W - 1) * c->Hq * c->K;
    s->ck = base;
    base += (size_t)B * (c->W - 1) * c->Hkv * c->K;
    s->cv = base;
}

/* Backward scratch: gradients of the intermediates (same shapes as the matching activations), then the
 * recomputed core output and chunk-start states of one document whose states did not fit in a->s_chunks. */
#define KDA_SCRATCH(X, c, N, T)                                                                               \
    X(dyn, (N) * (c)->Hq * (c)->K) X(dO, (N) * (c)->Hq * (c)->K) X(dog, (N) * (c)->Hq * (c)->K)               \
    X(dgd, (N) * (c)->r) X(dqn, (N) * (c)->Hq * (c)->K) X(dkn, (N) * (c)->Hq * (c)->K)                        \
    X(dvr, (N) * (c)->Hq * (c)->K) X(dg, (N) * (c)->Hq * (c)->K) X(dbeta, (N) * (c)->Hq) X(dbl, (N) * (c)->Hq) \
    X(df, (N) * (c)->Hq * ((c)->per_head ? 1 : (c)->K)) X(dfd, (N) * (c)->r) X(dknk, (N) * (c)->Hkv * (c)->K)  \
    X(dqc, (N) * (c)->Hq * (c)->K) X(dkc, (N) * (c)->Hkv * (c)->K) X(dvc, (N) * (c)->Hkv * (c)->K)            \
    X(dqp, (N) * (c)->Hq * (c)->K) X(dkp, (N) * (c)->Hkv * (c)->K) X(dvp, (N) * (c)->Hkv * (c)->K)            \
    X(otmp, (size_t)(T) * (c)->Hq * (c)->K)                                                                   \
    X(sch, (size_t)k_kda_nchunks(T) * (c)->Hq * ((size_t)(c)->K * (c)->K + (c)->save))

size_t nn_kda_bwd_scratch_floats(const nn_kda_cfg *c, int B, int T)
{
    size_t N = (size_t)B * T, n = 0;
#define ADD(name, sz) n += (size_t)(sz);
    KDA_SCRATCH(ADD, c, N, T)
#undef ADD
    return n;
}

/*
 * ===== Documents and padding =====
 * A document is a contiguous run of rows [b*T + t0, b*T + t0 + len) of the [N, ...] activations, so the
 * time-mixing ops (short convs and the core) run on it alone with B = 1, T = len on pointer offsets: the state
 * starts at zero (or at sequence b's cached state) and the conv reads zeros (or b's conv cache) before it.
 * Its chunk-start states take sc floats into a->s_chunks (first fit, in order: a batch of B rows has room for
 * B * ceil(T/64) chunks, and a row cut into documents needs more); sc = -1 means not saved (the backward
 * recomputes them) or not needed (inference).
 */
typedef struct kda_doc {
    int b, t0, len;
    ptrdiff_t sc;
} kda_doc;

/* The documents of a batch (docs/kda.md), or 0 when there is nothing to split (no seg and no len, every row one
 * document, or every len[b] == T): then the batched ops are exact and faster. *out is xmalloc'd. */
static int kda_docs(kda_doc **out, const nn_kda_cfg *c, int B, int T, const int32_t *seg, const int *len)
{
    int n = 0;
    *out = NULL;
    if (seg && len) BUG("KDA layer: segment ids and padded lengths together");
    if (seg) {
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) n += t == 0 || seg[(size_t)b * T + t] != seg[(size_t)b * T + t - 1];
        if (n == B) return 0;
    } else if (len) {
        int ragged = 0;
        for (int b = 0; b < B; b++) {
            if (len[b] < 0 || len[b] > T) BUG("KDA layer: sequence %d has %d real tokens of %d", b, len[b], T);
            ragged |= len[b] != T;
        }
        if (!ragged) return 0;
        n = B;
    } else
        return 0;
    kda_doc *d = xmalloc((size_t)n * sizeof *d);
    const ptrdiff_t slot = (ptrdiff_t)c->Hq * ((ptrdiff_t)c->K * c->K + c->save), room = (ptrdiff_t)B * k_kda_nchunks(T);
    ptrdiff_t used = 0;
    int i = 0;
    for (int b = 0; b < B; b++) {
        if (len) {
            d[i++] = (kda_doc){.b = b, .t0 = 0, .len = len[b], .sc = -1};
            continue;
        }
        for (int t = 0; t < T; t++) {
            if (t > 0 && seg[(size_t)b * T + t] == seg[(size_t)b * T + t - 1]) {
                d[i - 1].len++;
                continue;
            }
            d[i++] = (kda_doc){.b = b, .t0 = t, .len = 1, .sc = -1};
        }
    }
    for (int j = 0; !len && j < n; j++) { /* training: room for the chunk-start states */
        ptrdiff_t need = k_kda_nchunks(d[j].len);
        if (used + need <= room) {
            d[j].sc = used * slot;
            used += need;
        }
    }
    *out = d;
    return n;
}

/* Row offset of document d in the [N, ...] activations. */
static inline size_t doc_row(const kda_doc *d, int T) { return (size_t)d->b * T + d->t0; }

/* Short conv per document: y, x [N,C]; cache [B,W-1,C] or NULL (then zeros before each document). */
static void conv_docs_fwd(k_backend *kb, float *y, float *cache, const float *x, const float *w, int C,
                          const nn_kda_cfg *c, int T, const kda_doc *d, int nd)
{
    for (int i = 0; i < nd; i++) {
        size_t o = doc_row(&d[i], T) * C;
        float *cb = cache ? cache + (size_t)d[i].b * (c->W - 1) * C : NULL;
        if (d[i].len > 0) kb->op->conv_fwd(kb, y + o, cb, x + o, w, cb, 1, d[i].len, C, c->W, c->conv_act);
    }
}

/* Zeroes the padding rows [len, T) of every row of x [B*T, C] (documents from len[]). */
static void zero_padding(k_backend *kb, float *x, int C, int T, const kda_doc *d, int nd)
{
    for (int i = 0; i < nd; i++)
        if (d[i].len < T)
            kb->op->zero(kb, x + ((size_t)d[i].b * T + d[i].len) * C, sizeof(float) * (size_t)(T - d[i].len) * C);
}

/* qc, kc, vc = act(causal conv of qp, kp, vp) (per document, zeros or the cache before each; padding zeroed
 * when pad), qn = l2norm(qc) K^-0.5, knk = l2norm(kc), kn, vr = repeat(knk, vc): the forward's, and the
 * backward's again when they live in a buffer other layers reuse (a->shared_tmp). */
static void kda_core_inputs(k_backend *kb, const nn_kda_acts *a, const nn_kda_params *p, const nn_kda_cfg *c,
                            nn_kda_state *st, const kda_doc *docs, int nd, int pad)
{
    const k_ops *op = kb->op;
    const int B = a->B, T = a->T, N = B * T, K = c->K, Hq = c->Hq, Hkv = c->Hkv, CQ = Hq * K, CK = Hkv * K;
    if (!nd) {
        op->conv_fwd(kb, a->qc, st ? st->cq : NULL, a->qp, p->q_conv, st ? st->cq : NULL, B, T, CQ, c->W, c->conv_act);
        op->conv_fwd(kb, a->kc, st ? st->ck : NULL, a->kp, p->k_conv, st ? st->ck : NULL, B, T, CK, c->W, c->conv_act);
        op->conv_fwd(kb, a->vc, st ? st->cv : NULL, a->vp, p->v_conv, st ? st->cv : NULL, B, T, CK, c->W, c->conv_act);
    } else {
        conv_docs_fwd(kb, a->qc, st ? st->cq : NULL, a->qp, p->q_conv, CQ, c, T, docs, nd);
        conv_docs_fwd(kb, a->kc, st ? st->ck : NULL, a->kp, p->k_conv, CK, c, T, docs, nd);
        conv_docs_fwd(kb, a->vc, st ? st->cv : NULL, a->vp, p->v_conv, CK, c, T, docs, nd);
        if (pad) {
            zero_padding(kb, a->qc, CQ, T, docs, nd);
            zero_padding(kb, a->kc, CK, T, docs, nd);
            zero_padding(kb, a->vc, CK, T, docs, nd);
        }
    }
    op->l2norm_fwd(kb, a->qn, a->qc, (size_t)N * Hq, K, 1.0f / sqrtf((float)K), 1e-6f);
    op->l2norm_fwd(kb, a->knk, a->kc, (size_t)N * Hkv, K, 1.0f, 1e-6f);
    op->head_repeat_fwd(kb, a->kn, a->knk, N, Hq, Hkv, K);
    op->head_repeat_fwd(kb, a->vr, a->vc, N, Hq, Hkv, K);
}

/*
 * Forward, docs/models.md section 2 (shapes per row n of N = B*T):
 *   qp = x Wq^T [Hq*K], kp = x Wk^T, vp = x Wv^T [Hkv*K]; qc, kc, vc = act(causal conv W=4)
 *   knk = l2norm(kc) [Hkv,K]; kn, vr = repeat(knk, vc) to Hq heads; qn = l2norm(qc) * K^-0.5
 *   f = (x Wfd^T) Wfu^T; g = -exp(A_log) softplus(f + dt_bias); beta = sigmoid(x Wb^T)
 *   o = KDA core(qn, kn, vr, g, beta); og = (x Wgd^T) Wgu^T + bg; yn = rmsnorm(o) w_onorm sigmoid(og)
 *   y = yn Wo^T
 * The convs and the core run per document when seg or len asks for it (kda_docs).
 */
void nn_kda_forward_docs(k_backend *kb, float *y, nn_kda_acts *a, const float *x, const nn_kda_params *p,
                         const nn_kda_cfg *c, nn_kda_state *st, const int32_t *seg, const int *len)
{
    const k_ops *op = kb->op;
    const int B = a->B, T = a->T, N = B * T, d = c->d, K = c->K, Hq = c->Hq, Hkv = c->Hkv, r = c->r;
    const int CQ = Hq * K, CK = Hkv * K, Kf = c->per_head ? 1 : K;
    if (seg && st) BUG("KDA layer: segment ids are for training (no state)");
    if (len && !st) BUG("KDA layer: padded lengths need a state (prefill)");
    kda_doc *docs;
    int nd = kda_docs(&docs, c, B, T, seg, len);
    float *ones = xmalloc(sizeof(float) * N); /* the bias add is a rank-1 matmul: ones [N,1] x bias [1,CQ] */
    for (int i = 0; i < N; i++) ones[i] = 1.0f;
    op->upload(kb, a->ones, ones, sizeof(float) * N);
    free(ones);
    k_linear_fwd(kb, a->qp, x, p->q_proj, N, d, CQ, 0);
    k_linear_fwd(kb, a->kp, x, p->k_proj, N, d, CK, 0);
    k_linear_fwd(kb, a->vp, x, p->v_proj, N, d, CK, 0);
    kda_core_inputs(kb, a, p, c, st, docs, nd, len != NULL);
    k_linear_fwd(kb, a->fd, x, p->f_down, N, d, r, 0);
    k_linear_fwd(kb, a->f, a->fd, p->f_up, N, r, Hq * Kf, 0);
    op->kda_gate_fwd(kb, a->g, a->f, p->A_log, p->dt_bias, N, Hq, K, c->per_head);
    k_linear_fwd(kb, a->bl, x, p->b_proj, N, d, Hq, 0);
    op->sigmoid_fwd(kb, a->beta, a->bl, (size_t)N * Hq);
    if (!nd && st && T == 1)
        op->kda_step(kb, a->o, st->S, a->qn, a->kn, a->vr, a->g, a->beta, B, Hq, K, K);
    else if (!nd)
        op->kda_fwd(kb, a->o, st ? st->S : NULL, a->s_chunks, a->qn, a->kn, a->vr, a->g, a->beta,
                    st ? st->S : NULL, B, T, Hq, K, K);
    for (int i = 0; i < nd; i++) {
        const kda_doc *dc = &docs[i];
        size_t o = doc_row(dc, T) * CQ, ob = doc_row(dc, T) * Hq;
        float *S = st ? st->S + (size_t)dc->b * Hq * K * K : NULL;
        if (dc->len == 0) continue;
        if (st && dc->len == 1) /* as a decode step of this sequence alone */
            op->kda_step(kb, a->o + o, S, a->qn + o, a->kn + o, a->vr + o, a->g + o, a->beta + ob, 1, Hq, K, K);
        else
            op->kda_fwd(kb, a->o + o, S, dc->sc >= 0 ? a->s_chunks + dc->sc : NULL, a->qn + o, a->kn + o,
                        a->vr + o, a->g + o, a->beta + ob, S, 1, dc->len, Hq, K, K);
    }
    if (nd && len) zero_padding(kb, a->o, CQ, T, docs, nd);
    free(docs);
    k_linear_fwd(kb, a->gd, x, p->g_down, N, d, r, 0);
    k_linear_fwd(kb, a->og, a->gd, p->g_up, N, r, CQ, 0);
    op->matmul(kb, 0, 0, N, CQ, 1, 1.0f, a->ones, 1, p->g_up_b, CQ, 1.0f, a->og, CQ); /* + bias */
    op->gated_rmsnorm_fwd(kb, a->yn, a->o, a->og, p->o_norm, N, Hq, K, c->eps);
    k_linear_fwd(kb, y, a->yn, p->o_proj, N, CQ, d, 0);
}

void nn_kda_forward(k_backend *kb, float *y, nn_kda_acts *a, const float *x, const nn_kda_params *p,
                    const nn_kda_cfg *c, nn_kda_state *st)
{
    nn_kda_forward_docs(kb, y, a, x, p, c, st, NULL, NULL);
}

void nn_kda_backward_docs(k_backend *kb, float *dx, nn_kda_params *gr, const float *dy, const nn_kda_acts *a,
                          const float *x, const nn_kda_params *p, const nn_kda_cfg *c, float *scratch,
                          const int32_t *seg)
{
    const k_ops *op = kb->op;
    const int B = a->B, T = a->T, N = B * T, d = c->d, K = c->K, Hq = c->Hq, Hkv = c->Hkv, r = c->r;
    const int CQ = Hq * K, CK = Hkv * K, Kf = c->per_head ? 1 : K;
    struct {
#define FIELD(name, sz) float *name;
        KDA_SCRATCH(FIELD, c, N, T)
#undef FIELD
    } s;
    float *base = scratch;
#define BIND(name, sz) s.name = base; base += (size_t)(sz);
    KDA_SCRATCH(BIND, c, (size_t)N, T)
#undef BIND
    op->zero(kb, scratch, sizeof(float) * nn_kda_bwd_scratch_floats(c, B, T));
    kda_doc *docs;
    int nd = kda_docs(&docs, c, B, T, seg, NULL);
    if (a->shared_tmp) /* another layer's forward has been through them since */
        kda_core_inputs(kb, a, p, c, NULL, docs, nd, 0);

    /* y = yn Wo^T */
    k_linear_bwd(kb, s.dyn, gr->o_proj, dy, a->yn, p->o_proj, N, CQ, d);
    /* yn = rmsnorm(o) w sigmoid(og) */
    op->gated_rmsnorm_bwd(kb, s.dO, s.dog, gr->o_norm, s.dyn, a->o, a->og, p->o_norm, N, Hq, K, c->eps);
    /* og = gd Wgu^T + bg; gd = x Wgd^T */
    if (gr->g_up_b) op->matmul(kb, 1, 0, 1, CQ, N, 1.0f, a->ones, 1, s.dog, CQ, 1.0f, gr->g_up_b, CQ);
    k_linear_bwd(kb, s.dgd, gr->g_up, s.dog, a->gd, p->g_up, N, r, CQ);
    k_linear_bwd(kb, dx, gr->g_down, s.dgd, x, p->g_down, N, d, r);
    /* o = core(qn, kn, vr, g, beta), per document when the rows are packed */
    if (!nd)
        op->kda_bwd(kb, s.dqn, s.dkn, s.dvr, s.dg, s.dbeta, NULL, s.dO, NULL, a->qn, a->kn, a->vr, a->g, a->beta,
                    a->s_chunks, B, T, Hq, K, K);
    for (int i = 0; i < nd; i++) {
        const kda_doc *dc = &docs[i];
        size_t o = doc_row(dc, T) * CQ, ob = doc_row(dc, T) * Hq;
        const float *sch = s.sch;
        if (dc->sc >= 0)
            sch = a->s_chunks + dc->sc;
        else /* its chunk-start states did not fit: recompute them */
            op->kda_fwd(kb, s.otmp, NULL, s.sch, a->qn + o, a->kn + o, a->vr + o, a->g + o, a->beta + ob, NULL, 1,
                        dc->len, Hq, K, K);
        op->kda_bwd(kb, s.dqn + o, s.dkn + o, s.dvr + o, s.dg + o, s.dbeta + ob, NULL, s.dO + o, NULL, a->qn + o,
                    a->kn + o, a->vr + o, a->g + o, a->beta + ob, sch, 1, dc->len, Hq, K, K);
    }
    /* beta = sigmoid(x Wb^T) */
    op->sigmoid_bwd(kb, s.dbl, s.dbeta, a->beta, (size_t)N * Hq);
    k_linear_bwd(kb, dx, gr->b_proj, s.dbl, x, p->b_proj, N, d, Hq);
    /* g = gate(f), f = fd Wfu^T, fd = x Wfd^T */
    op->kda_gate_bwd(kb, s.df, gr->A_log, gr->dt_bias, s.dg, a->f, p->A_log, p->dt_bias, N, Hq, K, c->per_head);
    k_linear_bwd(kb, s.dfd, gr->f_up, s.df, a->fd, p->f_up, N, r, Hq * Kf);
    k_linear_bwd(kb, dx, gr->f_down, s.dfd, x, p->f_down, N, d, r);
    /* kn, vr = repeat(knk, vc); knk = l2norm(kc); qn = l2norm(qc) K^-0.5 */
    op->head_repeat_bwd(kb, s.dknk, s.dkn, N, Hq, Hkv, K);
    op->head_repeat_bwd(kb, s.dvc, s.dvr, N, Hq, Hkv, K);
    op->l2norm_bwd(kb, s.dkc, s.dknk, a->kc, (size_t)N * Hkv, K, 1.0f, 1e-6f);
    op->l2norm_bwd(kb, s.dqc, s.dqn, a->qc, (size_t)N * Hq, K, 1.0f / sqrtf((float)K), 1e-6f);
    /* convs (per document: zeros before each) */
    if (!nd) {
        op->conv_bwd(kb, s.dqp, gr->q_conv, s.dqc, a->qp, p->q_conv, NULL, B, T, CQ, c->W, c->conv_act);
        op->conv_bwd(kb, s.dkp, gr->k_conv, s.dkc, a->kp, p->k_conv, NULL, B, T, CK, c->W, c->conv_act);
        op->conv_bwd(kb, s.dvp, gr->v_conv, s.dvc, a->vp, p->v_conv, NULL, B, T, CK, c->W, c->conv_act);
    }
    for (int i = 0; i < nd; i++) {
        size_t row = doc_row(&docs[i], T);
        int n = docs[i].len;
        op->conv_bwd(kb, s.dqp + row * CQ, gr->q_conv, s.dqc + row * CQ, a->qp + row * CQ, p->q_conv, NULL, 1, n, CQ,
                     c->W, c->conv_act);
        op->conv_bwd(kb, s.dkp + row * CK, gr->k_conv, s.dkc + row * CK, a->kp + row * CK, p->k_conv, NULL, 1, n, CK,
                     c->W, c->conv_act);
        op->conv_bwd(kb, s.dvp + row * CK, gr->v_conv, s.dvc + row * CK, a->vp + row * CK, p->v_conv, NULL, 1, n, CK,
                     c->W, c->conv_act);
    }
    free(docs);
    /* projections */
    k_linear_bwd(kb, dx, gr->q_proj, s.dqp, x, p->q_proj, N, d, CQ);
    k_linear_bwd(kb, dx, gr->k_proj, s.dkp, x, p->k_proj, N, d, CK);
    k_linear_bwd(kb, dx, gr->v_proj, s.dvp, x, p->v_proj, N, d, CK);
}

void nn_kda_backward(k_backend *kb, float *dx, nn_kda_params *gr, const float *dy, const nn_kda_acts *a,
                     const float *x, const nn_kda_params *p, const nn_kda_cfg *c, float *scratch)
{
    nn_kda_backward_docs(kb, dx, gr, dy, a, x, p, c, scratch, NULL);
}
