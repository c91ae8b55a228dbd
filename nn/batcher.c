/* batcher.c - continuous batching of greedy generation: sequence slots that the next prompt refills as one stops. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/generate.h"

/*
 * Two caches: `pre` holds the right-padded prefill of the prompts that enter free slots together (re-laid out for
 * their number, nn_cache_rebatch), `dec` the slots being decoded; a prefilled sequence moves into its slot with
 * nn_cache_copy_seq. A decode step runs every slot (a free one decodes a pad token at position 0, never read).
 * Every kernel computes a row from that row alone (GEMM rows, attention over the row's own cache positions, the
 * KDA state of its own sequence), so an item's tokens do not depend on the others: nn_generate_stream ==
 * nn_generate of each prompt alone, token for token (tests/unit/test_generate_stream.c).
 */
#define REFILL_DIV 8

typedef struct stream {
    nn_model *m;
    const nn_gen_opts *o;
    int32_t **out;
    int *n_out;
    int *item;       /* [S] item in each slot, -1 free */
    int32_t *next;   /* [S] the slot's last token, input of the next decode step */
    int live;
} stream;

/* Appends token tok to item i's output; 1 when the item stops (max_new, a stop id, the stop callback). */
static int emit(stream *st, int i, int tok)
{
    const nn_gen_opts *o = st->o;
    st->out[i][st->n_out[i]++] = tok;
    int stop = st->n_out[i] >= o->max_new;
    for (int k = 0; k < o->n_stop_ids && !stop; k++) stop = tok == o->stop_ids[k];
    if (!stop && o->stop) stop = o->stop(o->stop_ud, i, st->out[i], st->n_out[i]);
    return stop;
}

/* Prefills items first.. (as many as there are free slots) in one right-padded batch and moves them into the
 * free slots with their first token; *first advances past them. */
static int refill(stream *st, nn_cache *pre, nn_cache *dec, const int32_t *const *prompts, const int *lens, int n,
                  int *first, int32_t *ids, int *rows, int32_t *toks, float *logits)
{
    nn_model *m = st->m;
    int S = dec->B, pad = m->cfg.pad_id >= 0 ? m->cfg.pad_id : 0;
    int slot[1024], *free_s = S <= 1024 ? slot : xmalloc((size_t)S * sizeof *free_s), k = 0, T = 0, r = 0;
    for (int s = 0; s < S && *first + k < n; s++)
        if (st->item[s] < 0) {
            free_s[k] = s;
            T = lens[*first + k] > T ? lens[*first + k] : T;
            k++;
        }
    if (k) r = nn_cache_rebatch(m, pre, k);
    for (int j = 0; j < k && !r; j++) {
        const int32_t *p = prompts[*first + j];
        for (int t = 0; t < T; t++) ids[j * T + t] = t < lens[*first + j] ? p[t] : pad;
        rows[j] = lens[*first + j] - 1;
    }
    nn_batch bt = {.B = k, .T = T, .ids = ids};
    if (k && !r) r = nn_model_forward(m, &bt, pre, rows, NULL);
    if (k && !r) nn_model_argmax(m, k, toks, logits);
    for (int j = 0; j < k && !r; j++) {
        int i = *first + j, tok = toks[j];
        pre->len[j] = lens[i];
        if (emit(st, i, tok)) continue; /* done at its first token: the slot stays free */
        r = nn_cache_copy_seq(m, dec, free_s[j], pre, j);
        st->item[free_s[j]] = i;
        st->next[free_s[j]] = tok;
        st->live++;
    }
    *first += k;
    if (free_s != slot) free(free_s);
    return r;
}

int nn_generate_stream(nn_model *m, const int32_t *const *prompts, const int *lens, int n, int slots,
                       const nn_gen_opts *o, int32_t **out, int *n_out)
{
    int V = m->cfg.vocab, Tp = 0, pad = m->cfg.pad_id >= 0 ? m->cfg.pad_id : 0;
    if (slots < 1) return error("generate: %d sequence slots (need at least 1)", slots);
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1) return error("generate: prompt %d is empty", i);
        Tp = lens[i] > Tp ? lens[i] : Tp;
    }
    for (int i = 0; i < n; i++) {
        out[i] = xmalloc((size_t)(o->max_new > 0 ? o->max_new : 1) * sizeof(int32_t));
        n_out[i] = 0;
    }
    if (o->max_new <= 0 || n == 0) return 0;
    int S = slots < n ? slots : n;
    nn_cache *pre = NULL, *dec = NULL;
    if (nn_model_prepare(m, S, Tp, NN_ACT_GEN) || nn_cache_new(&pre, m, S, Tp) ||
        nn_cache_new(&dec, m, S, Tp + o->max_new)) {
        nn_cache_free(m, pre);
        return -1;
    }
    stream st = {.m = m, .o = o, .out = out, .n_out = n_out, .item = xmalloc((size_t)S * sizeof(int)),
                 .next = xmalloc((size_t)S * sizeof(int32_t))};
    for (int s = 0; s < S; s++) st.item[s] = -1;
    int32_t *ids = xmalloc((size_t)S * Tp * sizeof(int32_t));
    int *rows = xcalloc((size_t)S, sizeof(int));
    int32_t *toks = xmalloc((size_t)S * sizeof(int32_t));
    float *logits = m->be->op->argmax_rows ? NULL : xmalloc((size_t)S * V * sizeof(float)); /* nn_model_argmax's */
    double t_pre = 0, t_dec = 0;
    int first = 0, steps = 0, r = 0;
    while (!r) {
        double t0 = hx_now();
        /* prefills of one prompt are inefficient (the GEMMs' M is one prompt): wait until REFILL_DIV-th of the slots
         * are free (or as many as items are left, or none is decoding) and prefill them together */
        int want = S / REFILL_DIV > 1 ? S / REFILL_DIV : 1;
        while (!r && first < n && (S - st.live >= (want < n - first ? want : n - first) || !st.live))
            r = refill(&st, pre, dec, prompts, lens, n, &first, ids, rows, toks, logits);
        double t1 = hx_now();
        t_pre += t1 - t0;
        if (r || !st.live) break;
        for (int s = 0; s < S; s++) {
            ids[s] = st.item[s] >= 0 ? st.next[s] : pad;
            rows[s] = 0;
            if (st.item[s] < 0) dec->len[s] = 0;
        }
        nn_batch one = {.B = S, .T = 1, .ids = ids};
        r = nn_model_forward(m, &one, dec, rows, NULL);
        if (!r) nn_model_argmax(m, S, toks, logits);
        for (int s = 0; s < S && !r; s++) {
            int i = st.item[s];
            if (i < 0) continue;
            dec->len[s]++;
            int tok = toks[s];
            st.next[s] = tok;
            if (emit(&st, i, tok)) {
                st.item[s] = -1;
                st.live--;
            }
        }
        steps++;
        t_dec += hx_now() - t1;
    }
    if (o->times) {
        o->times->prefill_s = t_pre;
        o->times->decode_s = t_dec;
        o->times->decode_steps = steps;
    }
    free(st.item);
    free(st.next);
    free(ids);
    free(rows);
    free(toks);
    free(logits);
    nn_cache_free(m, pre);
    nn_cache_free(m, dec);
    return r;
}
