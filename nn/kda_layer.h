/* kda_layer.h - the KDA / GDN mixer layer (docs/models.md section 2): parameters, forward, backward, decode state. */
#ifndef NN_KDA_H
#define NN_KDA_H

#include <stddef.h>
#include <stdint.h>
#include "kernels/kernels.h"

/* Shapes: B batch, T time, N = B*T rows, d hidden, Hq heads (carry the state), Hkv key/value heads (repeated
 * like GQA), K head dim (= V), r gate rank, W conv width. Kf = K (kda, per-channel gate) or 1 (gdn). */
typedef struct nn_kda_cfg {
    int d, Hq, Hkv, K, r, W;
    int conv_act;   /* 0 identity (default, as in the paper), 1 silu */
    int per_head;   /* 0 kda (per-channel decay), 1 gdn (per-head scalar decay) */
    float eps;      /* o_norm eps (rms_norm_eps) */
    int save;       /* floats per (sequence, head, chunk) the backend's core keeps beyond the chunk-start state
                     * (k_ops.kda_save of the backend the layer runs on; 0 on the CPU) */
} nn_kda_cfg;

/* Parameters in checkpoint order; names under `model.layers.{i}.linear_attn.` */
enum {
    NN_KDA_Q_PROJ, NN_KDA_K_PROJ, NN_KDA_V_PROJ, NN_KDA_Q_CONV, NN_KDA_K_CONV, NN_KDA_V_CONV, NN_KDA_F_DOWN,
    NN_KDA_F_UP, NN_KDA_A_LOG, NN_KDA_DT_BIAS, NN_KDA_B_PROJ, NN_KDA_G_DOWN, NN_KDA_G_UP, NN_KDA_G_UP_B,
    NN_KDA_O_NORM, NN_KDA_O_PROJ, NN_KDA_NPARAMS
};
extern const char *const nn_kda_param_names[NN_KDA_NPARAMS]; /* "q_proj.weight", ..., "o_proj.weight" */

/* The layer's tensors (or their gradients: same layout; a NULL gradient pointer means frozen). */
typedef union nn_kda_params {
    struct {
        float *q_proj;  /* [Hq*K, d] */
        float *k_proj;  /* [Hkv*K, d] */
        float *v_proj;  /* [Hkv*K, d] */
        float *q_conv;  /* [Hq*K, W] */
        float *k_conv;  /* [Hkv*K, W] */
        float *v_conv;  /* [Hkv*K, W] */
        float *f_down;  /* [r, d] */
        float *f_up;    /* [Hq*Kf, r] */
        float *A_log;   /* [Hq] */
        float *dt_bias; /* [Hq*Kf] */
        float *b_proj;  /* [Hq, d] */
        float *g_down;  /* [r, d] */
        float *g_up;    /* [Hq*K, r] */
        float *g_up_b;  /* [Hq*K]  (g_up.bias) */
        float *o_norm;  /* [K] */
        float *o_proj;  /* [d, Hq*K] */
    };
    float *t[NN_KDA_NPARAMS];
} nn_kda_params;

/* Shape of parameter i (ndim 1 or 2) and its element count. */
int nn_kda_param_shape(const nn_kda_cfg *c, int i, int64_t shape[2]);
size_t nn_kda_param_numel(const nn_kda_cfg *c, int i);
size_t nn_kda_params_floats(const nn_kda_cfg *c);                 /* all of them */
void nn_kda_params_bind(nn_kda_params *p, float *base, const nn_kda_cfg *c); /* consecutive, table order */
/* Checks the config (positive dims, Hq % Hkv == 0, W in 1..17); returns 0 or error(). */
int nn_kda_cfg_check(const nn_kda_cfg *c);

/* Activations saved by the forward for the backward: one allocation of nn_kda_acts_floats, bound by
 * nn_kda_acts_bind. Or nn_kda_acts_kept_floats per layer and nn_kda_acts_tmp_floats that every layer reuses,
 * bound by nn_kda_acts_bind_shared: the backward then remakes qc, kc, vc, qn, kn, vr, knk from qp, kp, vp
 * (convs, norms, repeats: bit-identical), which saves those seven per layer (the model does this). */
typedef struct nn_kda_acts {
    int B, T;
    int shared_tmp;        /* qc, kc, vc, qn, kn, vr, knk, bl are in the reused buffer */
    float *qp, *kp, *vp;   /* projections, conv inputs: [N,Hq*K], [N,Hkv*K] x2 */
    float *qc, *kc;        /* conv outputs: [N,Hq*K], [N,Hkv*K] (vc goes straight to vr) */
    float *vc;             /* [N,Hkv*K] */
    float *qn, *kn, *vr;   /* core inputs [N,Hq,K]: normalised+scaled q, normalised+repeated k, repeated v */
    float *knk;            /* normalised k at Hkv heads [N,Hkv,K] */
    float *fd, *f, *g;     /* gate: [N,r], [N,Hq*Kf], [N,Hq,K] */
    float *bl, *beta;      /* beta logits and sigmoid [N,Hq] */
    float *o;              /* core output [N,Hq,K] */
    float *gd, *og;        /* output gate [N,r], [N,Hq*K] */
    float *yn;             /* gated-norm output, o_proj input [N,Hq*K] */
    float *s_chunks;       /* [B,Hq,NC,K,K], then [B,Hq,NC,save] (kernels.h kda_fwd) */
    float *ones;           /* [N] of 1.0, written by the forward (bias add and its gradient as matmuls) */
} nn_kda_acts;
size_t nn_kda_acts_floats(const nn_kda_cfg *c, int B, int T);      /* kept + tmp */
size_t nn_kda_acts_kept_floats(const nn_kda_cfg *c, int B, int T);
size_t nn_kda_acts_tmp_floats(const nn_kda_cfg *c, int B, int T);
void nn_kda_acts_bind(nn_kda_acts *a, float *base, const nn_kda_cfg *c, int B, int T);
void nn_kda_acts_bind_shared(nn_kda_acts *a, float *base, float *tmp, const nn_kda_cfg *c, int B, int T);
/* Scratch of the backward (may be shared by all layers). */
size_t nn_kda_bwd_scratch_floats(const nn_kda_cfg *c, int B, int T);

/* Decode state of one layer: recurrent state and the conv caches (last W-1 projections). */
typedef struct nn_kda_state {
    float *S;                    /* [B,Hq,K,K] */
    float *cq, *ck, *cv;         /* [B,W-1,Hq*K], [B,W-1,Hkv*K] x2 */
} nn_kda_state;
size_t nn_kda_state_floats(const nn_kda_cfg *c, int B);
void nn_kda_state_bind(nn_kda_state *s, float *base, const nn_kda_cfg *c, int B); /* caller zeroes */

/*
 * Forward: y [N,d] = KDA(x [N,d]) (overwritten). With st == NULL the state starts at zero (training);
 * otherwise st is the initial state and conv cache and is updated to follow the T tokens (prefill, chunked
 * prefill, and decode with T = 1, which uses the recurrent step). The kernels come from the backend's op table.
 */
void nn_kda_forward(k_backend *kb, float *y, nn_kda_acts *a, const float *x, const nn_kda_params *p,
                    const nn_kda_cfg *c, nn_kda_state *st);
/*
 * Backward of a forward run with st == NULL: dx [N,d] += ..., every non-NULL pointer of g += its gradient.
 * scratch holds nn_kda_bwd_scratch_floats floats.
 */
void nn_kda_backward(k_backend *kb, float *dx, nn_kda_params *g, const float *dy, const nn_kda_acts *a,
                     const float *x, const nn_kda_params *p, const nn_kda_cfg *c, float *scratch);

/*
 * Documents and padding (docs/kda.md "Documents and ragged batches"). Both host arrays, either may be NULL:
 *  - seg [B*T]: segment ids of packed training rows. A document is a maximal run of equal ids in a row: at its
 *    first token the recurrent state restarts at zero and the short convs see zeros before it, exactly as if
 *    it were run alone. Training only (st == NULL).
 *  - len [B]: with a state (prefill of right-padded prompts), only the first len[b] (0..T) tokens of row b are
 *    real: the state and conv cache of sequence b follow exactly those, and the padding rows' outputs are 0.
 * The time-mixing ops (convs, core) then run per document on pointer offsets (B = 1, T = its length); all other
 * ops stay batched. nn_kda_forward / nn_kda_backward are these with seg = len = NULL. The backward must get the
 * forward's seg (the chunk-start states of the documents are packed into a->s_chunks while they fit; the others
 * are recomputed in the backward).
 */
void nn_kda_forward_docs(k_backend *kb, float *y, nn_kda_acts *a, const float *x, const nn_kda_params *p,
                         const nn_kda_cfg *c, nn_kda_state *st, const int32_t *seg, const int *len);
void nn_kda_backward_docs(k_backend *kb, float *dx, nn_kda_params *g, const float *dy, const nn_kda_acts *a,
                          const float *x, const nn_kda_params *p, const nn_kda_cfg *c, float *scratch,
                          const int32_t *seg);

/* hx conform kinds kda_core and kda_layer (nn/conform_kda.c): 0 when the fixture could be read. */
struct nn_check;
int nn_conform_kda_core(const char *dir, struct nn_check *c);
int nn_conform_kda_layer(const char *dir, struct nn_check *c);
/* The same on a given backend (hx conform --device): inputs uploaded, ops through its table, results downloaded. */
int nn_conform_kda_core_on(const char *dir, k_backend *be, struct nn_check *c);
int nn_conform_kda_layer_on(const char *dir, k_backend *be, struct nn_check *c);

#endif
