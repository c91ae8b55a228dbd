/* bpe_train.c - byte-level BPE training on a word-frequency table with incremental pair counts (HF BpeTrainer style). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/base.h"
#include "base/strmap.h"
#include "nn/bpe_train.h"
#include "nn/tokenizer_internal.h"

const char *const nn_bpe_default_special[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>",
                                              NULL};

/* ---- tokens and words: base's string table, whose indexes (insertion order) are the token ids and the word
 * indexes ---- */

static int32_t tok_add(hx_strmap *tok, const char *b, size_t n) { return (int32_t)hx_strmap_add(tok, b, n, NULL); }

typedef struct word {
    int32_t *sym;    /* current symbols (token ids) */
    int32_t n;
    int64_t count;
    uint32_t stamp;  /* last merge step that visited it */
} word;

typedef struct word_table {
    hx_strmap keys;  /* the words' bytes; word k is key k */
    word *w;         /* [keys.n] */
    size_t cap;
} word_table;

static void words_count(word_table *wt, const char *b, size_t n)
{
    int added;
    size_t k = (size_t)hx_strmap_add(&wt->keys, b, n, &added);
    if (!added) {
        wt->w[k].count++;
        return;
    }
    if (k == wt->cap) {
        wt->cap = wt->cap ? 2 * wt->cap : 4096;
        wt->w = xrealloc(wt->w, wt->cap * sizeof *wt->w);
    }
    memset(&wt->w[k], 0, sizeof wt->w[k]);
    wt->w[k].count = 1;
}

/* ---- pairs: (a, b) -> count and the words that (may) hold it ---- */

typedef struct pair {
    int32_t a, b;
    int64_t count, pushed; /* current count; count of its newest heap entry */
    int32_t *where;        /* word indices (may repeat or be stale) */
    size_t nw, cw;
    uint32_t stamp;        /* last merge step that touched it */
} pair;

typedef struct trainer {
    hx_strmap tok;
    word_table words;
    pair *p;
    size_t np, cp;
    int32_t *pslots; /* open addressing over pair indexes, -1 empty: keyed by two ids (a hot loop; not strmap's bytes) */
    size_t npslots;
    struct hent { int64_t count; int32_t pair; } *heap;
    size_t nheap, cheap;
    int32_t *touched;
    size_t ntouched, ctouched;
} trainer;

static void pairs_rehash(trainer *T, size_t nslots)
{
    free(T->pslots);
    T->npslots = nslots;
    T->pslots = xmalloc(nslots * sizeof *T->pslots);
    memset(T->pslots, 0xff, nslots * sizeof *T->pslots);
    for (size_t k = 0; k < T->np; k++) {
        uint64_t key = ((uint64_t)(uint32_t)T->p[k].a << 32) | (uint32_t)T->p[k].b;
        size_t m = nslots - 1, i = nn_hash_u64(key) & m;
        while (T->pslots[i] >= 0) i = (i + 1) & m;
        T->pslots[i] = (int32_t)k;
    }
}

static int32_t pair_get(trainer *T, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t m = T->npslots - 1, i = nn_hash_u64(key) & m;
    for (int32_t k; (k = T->pslots[i]) >= 0; i = (i + 1) & m)
        if (T->p[k].a == a && T->p[k].b == b) return k;
    if (T->np == T->cp) {
        T->cp = T->cp ? 2 * T->cp : 4096;
        T->p = xrealloc(T->p, T->cp * sizeof *T->p);
    }
    pair *p = &T->p[T->np];
    memset(p, 0, sizeof *p);
    p->a = a;
    p->b = b;
    p->stamp = UINT32_MAX;
    T->pslots[i] = (int32_t)T->np;
    T->np++;
    if (2 * T->np > T->npslots) pairs_rehash(T, 2 * T->npslots);
    return (int32_t)(T->np - 1);
}

/* Heap order: higher count first; ties: smaller bytes of the left token, then of the right one. */
static int tok_cmp(const hx_strmap *t, int32_t x, int32_t y)
{
    size_t lx, ly;
    const char *bx = hx_strmap_key(t, (size_t)x, &lx), *by = hx_strmap_key(t, (size_t)y, &ly);
    int c = memcmp(bx, by, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

static int hbefore(const trainer *T, const struct hent *x, const struct hent *y)
{
    if (x->count != y->count) return x->count > y->count;
    const pair *p = &T->p[x->pair], *q = &T->p[y->pair];
    int c = tok_cmp(&T->tok, p->a, q->a);
    if (!c) c = tok_cmp(&T->tok, p->b, q->b);
    return c < 0;
}

NN_HEAP_DEFINE(pairq, struct hent, const trainer *, hbefore)

static void heap_push(trainer *T, int32_t k)
{
    if (T->nheap == T->cheap) {
        T->cheap = T->cheap ? 2 * T->cheap : 4096;
        T->heap = xrealloc(T->heap, T->cheap * sizeof *T->heap);
    }
    struct hent e = {T->p[k].count, k};
    T->p[k].pushed = e.count;
    pairq_push(T, T->heap, &T->nheap, e);
}

/* Adds delta to the count of pair (a, b) held by word w; records w and marks the pair touched in this step. */
static void pair_add(trainer *T, int32_t a, int32_t b, int64_t delta, int32_t w, uint32_t step)
{
    int32_t k = pair_get(T, a, b);
    pair *p = &T->p[k];
    p->count += delta;
    if (delta > 0 && (p->nw == 0 || p->where[p->nw - 1] != w)) {
        if (p->nw == p->cw) {
            p->cw = p->cw ? 2 * p->cw : 4;
            p->where = xrealloc(p->where, p->cw * sizeof *p->where);
        }
        p->where[p->nw++] = w;
    }
    if (p->stamp != step) {
        p->stamp = step;
        if (T->ntouched == T->ctouched) {
            T->ctouched = T->ctouched ? 2 * T->ctouched : 1024;
            T->touched = xrealloc(T->touched, T->ctouched * sizeof *T->touched);
        }
        T->touched[T->ntouched++] = k;
    }
}

static void word_pairs(trainer *T, int32_t wi, int64_t sign, uint32_t step)
{
    word *w = &T->words.w[wi];
    for (int32_t i = 0; i + 1 < w->n; i++) pair_add(T, w->sym[i], w->sym[i + 1], sign * w->count, wi, step);
}

static void trainer_free(trainer *T)
{
    hx_strmap_free(&T->tok);
    for (size_t i = 0; i < T->words.keys.n; i++) free(T->words.w[i].sym);
    hx_strmap_free(&T->words.keys);
    free(T->words.w);
    for (size_t i = 0; i < T->np; i++) free(T->p[i].where);
    free(T->p); free(T->pslots); free(T->heap); free(T->touched);
}

/* Splits one segment (no special tokens, NFC) with Qwen3's pattern and counts its pre-tokens. */
static int count_segment(trainer *T, pcre2_code *re, pcre2_match_data *md, const char *s, size_t n)
{
    size_t pos = 0, gap = 0;
    while (pos < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return error("bpe: pre-tokenizer regex failed at byte %zu (code %d)", pos, rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) { pos = ov[0] + 1; continue; } /* the pattern never matches empty; be safe */
        if (ov[0] > gap) words_count(&T->words, s + gap, ov[0] - gap);
        words_count(&T->words, s + ov[0], ov[1] - ov[0]);
        pos = gap = ov[1];
    }
    if (gap < n) words_count(&T->words, s + gap, n - gap);
    return 0;
}

static char *to_bytelevel(const char *b, size_t n, const uint16_t byte_to_cp[256])
{
    char *s = xmalloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += nn_utf8_put(s + k, byte_to_cp[(unsigned char)b[i]]);
    s[k] = 0;
    return s;
}

static json_t *pretok_json(void)
{
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                     "pretokenizers", "type", "Split", "pattern", "Regex", NN_QWEN3_SPLIT_PATTERN, "behavior",
                     "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0,
                     "use_regex", 0);
}

static json_t *bytelevel_json(void)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0,
                     "use_regex", 0);
}

int nn_bpe_train(const char *text, size_t len, const nn_bpe_opts *o, char **json_out, size_t *json_len,
                 nn_bpe_stats *st)
{
    const char *const *special = o->special ? o->special : nn_bpe_default_special;
    size_t n_special = 0;
    while (special[n_special]) n_special++;
    if (o->vocab_size < 256 + n_special)
        return error("bpe: vocab_size %zu is below 256 bytes + %zu special tokens", o->vocab_size, n_special);
    if (o->min_frequency < 1) return error("bpe: min_frequency must be >= 1 (got %lld)", o->min_frequency);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = nn_utf8_get((const unsigned char *)text, i, len, &cp);
        if (!l) return error("bpe: corpus: invalid UTF-8 at byte offset %zu", i);
        i += l;
    }
    double t0 = hx_now();
    trainer T;
    memset(&T, 0, sizeof T);
    hx_strmap_reserve(&T.tok, 1024);
    hx_strmap_reserve(&T.words.keys, 1 << 15);
    pairs_rehash(&T, 1 << 16);

    /* Byte tokens in GPT-2's order (printable bytes first), so ids match Qwen3's for single bytes. */
    uint16_t b2c[256];
    int16_t c2b[324];
    nn_bytelevel_tables(b2c, c2b);
    int32_t byte_id[256];
    for (uint32_t cp = 0; cp < 324; cp++)
        if (c2b[cp] >= 0) {
            char b = (char)c2b[cp];
            byte_id[(unsigned char)b] = tok_add(&T.tok, &b, 1);
        }

    /* Count pre-tokens between special tokens (the encoder cuts them out the same way). */
    int ec;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)NN_QWEN3_SPLIT_PATTERN, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &ec, &eoff, NULL);
    if (!re) BUG("Qwen3 split pattern does not compile (error %d)", ec);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    int rc = 0;
    size_t pos = 0, *next = xmalloc(n_special * sizeof *next); /* next occurrence of each special token */
    for (size_t k = 0; k < n_special; k++) next[k] = SIZE_MAX; /* not searched yet */
    while (!rc && pos < len) {
        size_t best = len, blen = 0; /* leftmost, then longest special token */
        for (size_t k = 0; k < n_special; k++) {
            size_t sl = strlen(special[k]);
            if (next[k] == SIZE_MAX || next[k] < pos) {
                const char *f = memmem(text + pos, len - pos, special[k], sl);
                next[k] = f ? (size_t)(f - text) : len;
            }
            if (next[k] < len && (next[k] < best || (next[k] == best && sl > blen))) { best = next[k]; blen = sl; }
        }
        char *norm = NULL;
        size_t nlen = 0;
        rc = nn_nfc(text + pos, best - pos, &norm, &nlen);
        if (!rc) rc = norm ? count_segment(&T, re, md, norm, nlen) : count_segment(&T, re, md, text + pos, best - pos);
        free(norm);
        pos = best + blen;
    }
    free(next);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc) { trainer_free(&T); return -1; }

    size_t n_words = 0;
    for (size_t k = 0; k < T.words.keys.n; k++) {
        word *w = &T.words.w[k];
        size_t klen;
        const char *key = hx_strmap_key(&T.words.keys, k, &klen);
        n_words += (size_t)w->count;
        w->n = (int32_t)klen;
        w->sym = xmalloc((w->n ? w->n : 1) * sizeof *w->sym);
        for (int32_t i = 0; i < w->n; i++) w->sym[i] = byte_id[(unsigned char)key[i]];
        word_pairs(&T, (int32_t)k, +1, 0);
    }
    for (size_t k = 0; k < T.ntouched; k++) heap_push(&T, T.touched[k]);
    T.ntouched = 0;

    /* Merge until the vocabulary is full or no pair is frequent enough. */
    int32_t *merges = NULL; /* pairs of token ids */
    size_t n_merges = 0, cap_merges = 0, target = o->vocab_size - n_special;
    char *buf = NULL;
    size_t cap_buf = 0;
    for (uint32_t step = 1; T.tok.n < target && T.nheap;) {
        struct hent e = pairq_pop(&T, T.heap, &T.nheap);
        pair *p = &T.p[e.pair];
        if (e.count != p->count) { /* stale entry: its pair's count fell; requeue at the current count */
            if (p->count > 0 && e.count == p->pushed) heap_push(&T, e.pair);
            continue;
        }
        if (p->count < o->min_frequency || p->count <= 0) break;
        int32_t a = p->a, b = p->b;
        size_t la, lb;
        const char *ba = hx_strmap_key(&T.tok, (size_t)a, &la), *bb = hx_strmap_key(&T.tok, (size_t)b, &lb);
        if (la + lb > cap_buf) buf = xrealloc(buf, cap_buf = 2 * (la + lb));
        memcpy(buf, ba, la);
        memcpy(buf + la, bb, lb);
        int32_t c = tok_add(&T.tok, buf, la + lb); /* the existing token if the merge makes a known one */
        if (n_merges == cap_merges) merges = xrealloc(merges, (cap_merges = cap_merges ? 2 * cap_merges : 1024) * 2 * sizeof *merges);
        merges[2 * n_merges] = a;
        merges[2 * n_merges + 1] = b;
        n_merges++;
        p = &T.p[e.pair];
        size_t nwhere = p->nw;
        int32_t *where = p->where; /* detach: word_pairs may grow this very list */
        p->where = NULL; p->nw = p->cw = 0;
        for (size_t k = 0; k < nwhere; k++) {
            word *w = &T.words.w[where[k]];
            if (w->stamp == step) continue;
            w->stamp = step;
            int has = 0;
            for (int32_t i = 0; i + 1 < w->n && !has; i++) has = w->sym[i] == a && w->sym[i + 1] == b;
            if (!has) continue;
            word_pairs(&T, where[k], -1, step);
            int32_t j = 0;
            for (int32_t i = 0; i < w->n; i++) {
                if (i + 1 < w->n && w->sym[i] == a && w->sym[i + 1] == b) { w->sym[j++] = c; i++; }
                else w->sym[j++] = w->sym[i];
            }
            w->n = j;
            word_pairs(&T, where[k], +1, step);
        }
        free(where);
        for (size_t k = 0; k < T.ntouched; k++) {
            pair *q = &T.p[T.touched[k]];
            if (q->count > q->pushed) heap_push(&T, T.touched[k]);
        }
        T.ntouched = 0;
        step++;
    }
    free(buf);

    /* tokenizer.json of Qwen3's structure. */
    json_t *vocab = json_object();
    for (size_t id = 0; id < T.tok.n; id++) {
        size_t n;
        const char *b = hx_strmap_key(&T.tok, id, &n);
        char *s = to_bytelevel(b, n, b2c);
        json_object_set_new(vocab, s, json_integer((json_int_t)id));
        free(s);
    }
    json_t *jm = json_array();
    for (size_t k = 0; k < n_merges; k++) {
        size_t la, lb;
        const char *a = hx_strmap_key(&T.tok, (size_t)merges[2 * k], &la);
        const char *b = hx_strmap_key(&T.tok, (size_t)merges[2 * k + 1], &lb);
        char *x = to_bytelevel(a, la, b2c), *y = to_bytelevel(b, lb, b2c);
        json_array_append_new(jm, json_pack("[s, s]", x, y));
        free(x);
        free(y);
    }
    json_t *added = json_array();
    for (size_t k = 0; k < n_special; k++) {
        int is_special = strcmp(special[k], "<think>") && strcmp(special[k], "</think>");
        json_array_append_new(added, json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)(T.tok.n + k),
                                               "content", special[k], "single_word", 0, "lstrip", 0, "rstrip", 0,
                                               "normalized", 0, "special", is_special));
    }
    json_t *root = json_pack(
        "{s:s, s:n, s:n, s:o, s:{s:s}, s:o, s:o, s:o, s:{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}}",
        "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer", "type", "NFC",
        "pre_tokenizer", pretok_json(), "post_processor", bytelevel_json(), "decoder", bytelevel_json(), "model",
        "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix", "", "end_of_word_suffix", "",
        "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab, "merges", jm);
    if (!root) BUG("json_pack of tokenizer.json failed");
    char *out = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!out) BUG("json_dumps failed");
    *json_out = out;
    *json_len = strlen(out);
    if (st) {
        st->n_words = n_words;
        st->n_unique = T.words.keys.n;
        st->n_merges = n_merges;
        st->vocab_size = T.tok.n + n_special;
        st->seconds = hx_now() - t0;
    }
    free(merges);
    trainer_free(&T);
    return 0;
}

int nn_bpe_train_file(const char *corpus_path, const nn_bpe_opts *o, const char *out_path, nn_bpe_stats *st)
{
    char *text, *json;
    size_t len, jlen;
    if (hx_read_file(corpus_path, &text, &len)) return -1;
    int rc = nn_bpe_train(text, len, o, &json, &jlen, st);
    free(text);
    if (rc) return error_prefix("%s", corpus_path);
    rc = hx_write_file_atomic(out_path, json, jlen);
    free(json);
    return rc;
}
