/* model_internal.h - what the model's files share (model.c, model_mixer.c, model_forward.c, model_cache.c). */
#ifndef NN_MODEL_INTERNAL_H
#define NN_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "nn/kda_layer.h"
#include "nn/model.h"

#define IGNORE_INDEX (-100)

/* Indices into the parameter table of one layer; mixer params follow mix0 consecutively. */
struct nn_layer_ix {
    int ln1, ln2, gate, up, down;
    int mix0, nmix;           /* first mixer parameter and how many */
    int q, k, v, o, qn, kn;   /* attention (full_attention layers) */
};

static inline float *P(const nn_model *m, int i) { return i < 0 ? NULL : m->p + m->params[i].off; }
static inline float *G(const nn_model *m, int i)
{
    return (i < 0 || !m->g || m->params[i].goff == SIZE_MAX) ? NULL : m->g + m->params[i].goff;
}

typedef struct nn_ptab {
    nn_param *t;
    int n, cap;
    size_t off;
} nn_ptab;

int nn_ptab_add(nn_ptab *pt, const char *name, int ndim, int64_t r, int64_t c, nn_group g, int layer, int decay);

/* ---- the mixer dispatch (model_mixer.c): each switches on the layer's mixer ---- */

/* Per-call context of the layer functions. */
typedef struct nn_fwd_ctx {
    int B, T, N;
    const int32_t *pos, *seg, *q_start; /* device */
    nn_cache *cache;
    int train;
    const int32_t *hseg;   /* host copy of seg (KDA layers split packed rows into documents) */
    const int *valid;      /* host [B] or NULL: real tokens per sequence of a right-padded cached prefill */
} nn_fwd_ctx;

/* The KDA / GDN layer's shape from the model config (docs/models.md section 3: K = V = head_dim). */
void nn_mixer_kda_cfg(nn_kda_cfg *k, const nn_config *c, int l);
int nn_mixer_add_params(nn_ptab *pt, const nn_config *c, int l, struct nn_layer_ix *ix);
/* Floats of layer l's mixer activations; of the KDA activations every KDA layer reuses (the largest layer's); of
 * the backward scratch all layers share; of layer l's decode cache. */
size_t nn_mixer_act_floats(const nn_config *c, int l, int B, int T);
size_t nn_mixer_kda_tmp_floats(const nn_config *c, int B, int T);
size_t nn_mixer_bwd_scratch_floats(const nn_config *c, int B, int T);
size_t nn_mixer_cache_floats(const nn_config *c, int l, int B, int Tmax);
void nn_mixer_forward(nn_model *m, int l, const nn_fwd_ctx *f, float *y, const float *x, float *act, float *cache_l);
void nn_mixer_backward(nn_model *m, int l, const nn_fwd_ctx *f, float *dx, const float *dy, const float *x, float *act,
                       float *scratch);

/* ---- activations (model.c) ---- */

/* One layer's block: res_in, ln1, res_mid, ln2 [N,d]; rstd1, rstd2 [N]; gate, up, swi [N,F]; mixer acts. */
typedef struct nn_layer_act {
    float *res_in, *ln1, *rstd1, *res_mid, *ln2, *rstd2, *gate, *up, *swi, *mix;
} nn_layer_act;

/* Global buffers after the layer blocks. */
typedef struct nn_glob_act {
    float *res_final, *rstd_f, *tmp, *dres, *dln, *dgate, *dup, *dswi, *dfn, *mscratch, *rowbuf, *kda_tmp;
} nn_glob_act;

/* Views of layer l's activations and of the global block, for the prepared batch (nn_model_prepare). */
void nn_model_layer_act(const nn_model *m, nn_layer_act *a, int l, int B, int T);
void nn_model_glob(const nn_model *m, nn_glob_act *g, int B, int T);
/* The global block's kda_tmp, sized for the prepared batch. */
float *nn_model_kda_tmp(const nn_model *m);
/* Block l from a->res_in up to what its backward reads (model.c); the MLP half's backward. */
void nn_layer_forward_body(nn_model *m, int l, const nn_fwd_ctx *f, const nn_layer_act *a, const nn_glob_act *g,
                           float *cache_l);
void nn_mlp_backward(nn_model *m, int l, int N, const nn_layer_act *a, const nn_glob_act *g);

#endif
