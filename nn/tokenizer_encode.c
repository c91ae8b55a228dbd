/* tokenizer_encode.c - encoding: added tokens, pre-tokenizer splits, BPE by merge rank. */
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/base.h"
#include "base/strmap.h"
#include "nn/tokenizer.h"
#include "nn/tokenizer_internal.h"

/* ---- encoding ---- */

typedef struct ids_buf {
    int32_t *v;
    size_t n, cap;
} ids_buf;

static void ids_push(ids_buf *b, int32_t id)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->v = xrealloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = id;
}

/* Per-call state: scratch for BPE and a cache of words already encoded (thread safety: nothing shared). */
typedef struct enc_state {
    const nn_tokenizer *t;
    ids_buf *out;
    pcre2_match_data *md;
    /* BPE scratch over one word */
    int32_t *sym, *prev, *next;
    struct heap_ent { int32_t rank, pos, new_id; } *heap;
    size_t scratch_cap, heap_n;
    /* word cache: a word's bytes -> the offset in cache_ids of its id count, then its ids */
    hx_strmap cache;
    int32_t *cache_ids; size_t ci_n, ci_cap;
} enc_state;

static int heap_less(const enc_state *s, const struct heap_ent *a, const struct heap_ent *b)
{
    (void)s;
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

NN_HEAP_DEFINE(mergeq, struct heap_ent, const enc_state *, heap_less)

static void try_pair(enc_state *s, int32_t pos)
{
    int32_t nx = s->next[pos], rank, nid;
    if (nx >= 0 && nn_tok_pair_find(s->t, s->sym[pos], s->sym[nx], &rank, &nid)) mergeq_push(s, s->heap, &s->heap_n, (struct heap_ent){rank, pos, nid});
}

/*
 * BPE of one pre-token (its raw bytes): start from one symbol per byte, then repeatedly apply the merge of
 * lowest rank, leftmost first (a heap of candidate merges, checked for staleness when popped; HF's
 * Word::merge_all). Appends the ids to s->out.
 */
static int bpe_word(enc_state *s, const unsigned char *w, size_t n)
{
    const nn_tokenizer *t = s->t;
    if (n > s->scratch_cap) {
        s->scratch_cap = n + n / 2 + 16;
        s->sym = xrealloc(s->sym, s->scratch_cap * sizeof *s->sym);
        s->prev = xrealloc(s->prev, s->scratch_cap * sizeof *s->prev);
        s->next = xrealloc(s->next, s->scratch_cap * sizeof *s->next);
        s->heap = xrealloc(s->heap, 2 * s->scratch_cap * sizeof *s->heap);
    }
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = t->byte_id[w[i]];
        if (s->sym[i] < 0)
            return error("%s: byte 0x%02x has no token in the vocabulary (the byte alphabet is incomplete)", t->name,
                         w[i]);
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(s, (int32_t)i);
    while (s->heap_n) {
        struct heap_ent m = mergeq_pop(s, s->heap, &s->heap_n);
        int32_t p = m.pos, nx = s->next[p], rank, nid;
        if (s->sym[p] < 0 || nx < 0) continue;                                      /* merged away */
        if (!nn_tok_pair_find(t, s->sym[p], s->sym[nx], &rank, &nid) || nid != m.new_id) continue; /* stale */
        s->sym[p] = nid;
        s->sym[nx] = -1;
        s->next[p] = s->next[nx];
        if (s->next[nx] >= 0) s->prev[s->next[nx]] = p;
        if (s->prev[p] >= 0) try_pair(s, s->prev[p]);
        try_pair(s, p);
    }
    for (int32_t i = 0; i >= 0; i = s->next[i]) ids_push(s->out, s->sym[i]);
    return 0;
}

/* Encodes one pre-token through the word cache. */
static int encode_word(enc_state *s, const char *w, size_t n)
{
    if (n == 0) return 0;
    if (n > 256) return bpe_word(s, (const unsigned char *)w, n); /* rare: not worth caching */
    int added;
    size_t k = (size_t)hx_strmap_add(&s->cache, w, n, &added);
    if (!added) {
        const int32_t *ids = s->cache_ids + *hx_strmap_val(&s->cache, k);
        for (int32_t i = 1; i <= ids[0]; i++) ids_push(s->out, ids[i]);
        return 0;
    }
    size_t start = s->out->n;
    if (bpe_word(s, (const unsigned char *)w, n)) return -1; /* the half-made entry dies with the call */
    size_t got = s->out->n - start;
    if (s->ci_n + got + 1 > s->ci_cap) {
        s->ci_cap = 2 * (s->ci_n + got + 1) + 1024;
        s->cache_ids = xrealloc(s->cache_ids, s->ci_cap * sizeof *s->cache_ids);
    }
    *hx_strmap_val(&s->cache, k) = (int64_t)s->ci_n;
    s->cache_ids[s->ci_n] = (int32_t)got;
    memcpy(s->cache_ids + s->ci_n + 1, s->out->v + start, got * sizeof *s->cache_ids);
    s->ci_n += got + 1;
    return 0;
}

static int split_piece(enc_state *s, int k, const char *p, size_t n);

/* Runs pre-tokenizer steps k.. over piece p[0..n) (already normalised) and encodes the resulting words. */
static int pretok_rec(enc_state *s, int k, const char *p, size_t n)
{
    const nn_tokenizer *t = s->t;
    if (n == 0) return 0;
    if (k == t->n_steps) return encode_word(s, p, n);
    const pretok_step *st = &t->steps[k];
    if (st->type == PT_BYTELEVEL && st->add_prefix_space && p[0] != ' ') {
        /* HF ByteLevel: every piece it receives gets a leading space, then is split by the regex */
        char *q = xmalloc(n + 1);
        q[0] = ' ';
        memcpy(q + 1, p, n);
        int rc = split_piece(s, k, q, n + 1);
        free(q);
        return rc;
    }
    return split_piece(s, k, p, n);
}

/* Splits piece p[0..n) with step k's regex and its behaviour, passing the parts to step k + 1. */
static int split_piece(enc_state *s, int k, const char *p, size_t n)
{
    const nn_tokenizer *t = s->t;
    const pretok_step *st = &t->steps[k];
    if (!st->re) return pretok_rec(s, k + 1, p, n);
    size_t pos = 0, pending = 0; /* pending: start of a gap or merged piece not yet emitted */
    while (pos <= n) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)p, n, pos, PCRE2_NO_UTF_CHECK, s->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return error("%s: pre-tokenizer regex failed at byte %zu: %s", t->name, pos, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: step over one character */
            pos = ms + 1;
            while (pos < n && ((unsigned char)p[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        switch (st->behavior) {
        case SPLIT_ISOLATED:
            if (pretok_rec(s, k + 1, p + pending, ms - pending)) return -1;
            if (pretok_rec(s, k + 1, p + ms, me - ms)) return -1;
            pending = me;
            break;
        case SPLIT_REMOVED:
            if (pretok_rec(s, k + 1, p + pending, ms - pending)) return -1;
            pending = me;
            break;
        case SPLIT_MERGED_PREV:
            if (pretok_rec(s, k + 1, p + pending, me - pending)) return -1;
            pending = me;
            break;
        case SPLIT_MERGED_NEXT:
            if (pretok_rec(s, k + 1, p + pending, ms - pending)) return -1;
            pending = ms;
            break;
        }
        pos = me;
    }
    return pretok_rec(s, k + 1, p + pending, n - pending);
}

/* Normalises one segment (between added tokens) and pre-tokenises it. */
static int encode_segment(enc_state *s, const char *p, size_t n)
{
    if (!s->t->nfc) return pretok_rec(s, 0, p, n);
    char *norm = NULL;
    size_t nlen = 0;
    if (nn_nfc(p, n, &norm, &nlen)) return -1;
    int rc = norm ? pretok_rec(s, 0, norm, nlen) : pretok_rec(s, 0, p, n);
    free(norm);
    return rc;
}

static int is_word_byte(unsigned char c) { return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static int is_space_byte(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Leftmost-longest added token at or after `from`: returns 1 with its match span [*ms, *me) and id. */
static int find_added(const nn_tokenizer *t, const char *text, size_t len, size_t from, size_t *ms, size_t *me,
                      int32_t *id)
{
    for (size_t i = from; i < len; i++) {
        if (!t->added_first[(unsigned char)text[i]]) continue;
        for (size_t a = 0; a < t->n_added; a++) {
            const added_token *at = &t->added[a];
            if (at->len > len - i || memcmp(text + i, at->content, at->len)) continue;
            size_t s = i, e = i + at->len;
            if (at->single_word && ((s > 0 && is_word_byte((unsigned char)text[s - 1])) ||
                                    (e < len && is_word_byte((unsigned char)text[e]))))
                continue;
            if (at->lstrip) while (s > from && is_space_byte((unsigned char)text[s - 1])) s--;
            if (at->rstrip) while (e < len && is_space_byte((unsigned char)text[e])) e++;
            *ms = s; *me = e; *id = at->id;
            return 1;
        }
    }
    return 0;
}

int nn_tokenizer_encode(const nn_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    for (size_t i = 0; i < len;) { /* PCRE2 with UTF needs valid UTF-8; HF takes a Rust String */
        uint32_t cp;
        size_t l = nn_utf8_get((const unsigned char *)text, i, len, &cp);
        if (!l) return error("%s: encode: invalid UTF-8 at byte offset %zu", t->name, i);
        i += l;
    }
    ids_buf out = {0};
    enc_state s = {.t = t, .out = &out};
    hx_strmap_reserve(&s.cache, 2048); /* a size hint: text of a few KB has ~1000 distinct words */
    s.md = pcre2_match_data_create(4, NULL);
    int rc = 0;
    size_t pos = 0, ms, me;
    int32_t id;
    while (!rc && pos < len && t->n_added && find_added(t, text, len, pos, &ms, &me, &id)) {
        rc = encode_segment(&s, text + pos, ms - pos);
        ids_push(&out, id);
        pos = me;
    }
    if (!rc && pos < len) rc = encode_segment(&s, text + pos, len - pos);
    pcre2_match_data_free(s.md);
    free(s.sym); free(s.prev); free(s.next); free(s.heap);
    hx_strmap_free(&s.cache); free(s.cache_ids);
    if (rc) { free(out.v); return -1; }
    if (!out.v) out.v = xmalloc(sizeof *out.v);
    *ids = out.v;
    *n = out.n;
    return 0;
}
