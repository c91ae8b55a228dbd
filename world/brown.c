/* brown.c - the Brown corpus: strip POS tags, rejoin tokens into normal text, keep paragraphs and sentences. */
#include "world/world.h"
#include "world/world_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int attaches_left(const char *w, size_t n)
{
    static const char *const left[] = {",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%",
                                       "'s", "'S", "n't", "'re", "'ll", "'ve", "'m", "'d", "...", NULL};
    for (const char *const *p = left; *p; p++)
        if (strlen(*p) == n && !memcmp(*p, w, n)) return 1;
    return 0;
}

static int attaches_right(const char *w, size_t n)
{
    static const char *const right[] = {"(", "[", "{", "``", "`", "$", NULL};
    for (const char *const *p = right; *p; p++)
        if (strlen(*p) == n && !memcmp(*p, w, n)) return 1;
    return 0;
}

/* Detokenises one tagged line. Returns NULL with *bad set to the 1-based column of a token without a
 * tag. *headline is set when every tag is a headline tag (-hl). */
static void count_word(struct world_wordfreq *fq, const char *w, size_t wn, const char *tag, size_t tagn)
{
    char low[64];
    if (wn >= sizeof low) return;
    for (size_t k = 0; k < wn; k++) {
        if (!w_isalpha((unsigned char)w[k])) return;
        low[k] = (char)w_tolower((unsigned char)w[k]);
    }
    low[wn] = 0;
    (*wmap_put(&fq->all, low, 0))++;
    if (tagn >= 2 && tag[0] == 'n' && tag[1] == 'n') (*wmap_put(&fq->noun, low, 0))++;
    if (tagn >= 2 && tag[0] == 'j' && tag[1] == 'j') (*wmap_put(&fq->adj, low, 0))++;
}

static char *detok(const char *s, size_t len, int *headline, int *bad, struct world_wordfreq *fq)
{
    hx_sbuf out = {0};
    int glue = 1, n_tok = 0, n_hl = 0;
    *bad = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && w_isspace((unsigned char)s[i])) i++;
        if (i >= len) break;
        size_t t0 = i;
        while (i < len && !w_isspace((unsigned char)s[i])) i++;
        const char *tok = s + t0;
        size_t tn = i - t0;
        const char *slash = NULL;
        for (size_t k = tn; k > 0; k--)
            if (tok[k - 1] == '/') { slash = tok + k - 1; break; }
        if (!slash || slash == tok || slash == tok + tn - 1) {
            *bad = (int)t0 + 1;
            hx_sb_free(&out);
            return NULL;
        }
        size_t wn = (size_t)(slash - tok);
        const char *tag = slash + 1;
        size_t tagn = tn - wn - 1;
        n_tok++;
        if (fq) count_word(fq, tok, wn, tag, tagn);
        if (tagn >= 3 && !memcmp(tag + tagn - 3, "-hl", 3)) n_hl++;
        const char *w = tok;
        if (wn == 2 && !memcmp(w, "``", 2)) {
            if (!glue) hx_sb_putc(&out, ' ');
            hx_sb_putc(&out, '"');
            glue = 1;
            continue;
        }
        if (wn == 2 && !memcmp(w, "''", 2)) {
            hx_sb_putc(&out, '"');
            glue = 0;
            continue;
        }
        if (!glue && !attaches_left(w, wn)) hx_sb_putc(&out, ' ');
        for (size_t k = 0; k < wn; k++) { /* Brown writes '"' as `` or '' inside words too (1/4'' = inches) */
            if (k + 1 < wn && ((w[k] == '\'' && w[k + 1] == '\'') || (w[k] == '`' && w[k + 1] == '`'))) {
                hx_sb_putc(&out, '"');
                k++;
            } else {
                hx_sb_putc(&out, w[k]);
            }
        }
        glue = attaches_right(w, wn);
    }
    *headline = n_tok > 0 && n_hl == n_tok;
    return hx_sb_take(&out);
}

char *world_brown_detok(const char *tagged, size_t len)
{
    int hl, bad;
    return detok(tagged, len, &hl, &bad, NULL);
}

static void para_push(world_para *p, char *sent)
{
    p->sents = xrealloc(p->sents, sizeof *p->sents * (size_t)(p->n_sents + 1));
    p->sents[p->n_sents++] = sent;
}

static world_para *doc_new_para(world_brown_doc *d)
{
    d->paras = xrealloc(d->paras, sizeof *d->paras * (size_t)(d->n_paras + 1));
    world_para *p = &d->paras[d->n_paras++];
    memset(p, 0, sizeof *p);
    return p;
}

void world_brown_doc_free(world_brown_doc *d)
{
    for (int i = 0; i < d->n_paras; i++) {
        for (int j = 0; j < d->paras[i].n_sents; j++) free(d->paras[i].sents[j]);
        free(d->paras[i].sents);
    }
    free(d->paras);
    d->paras = NULL;
    d->n_paras = 0;
}

static int parse_counted(const char *name, const char *data, size_t len, world_brown_doc *doc,
                         struct world_wordfreq *fq)
{
    memset(doc, 0, sizeof *doc);
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    snprintf(doc->name, sizeof doc->name, "%s", base);
    world_para *cur = NULL;
    int lineno = 0;
    size_t i = 0;
    size_t ln;
    const char *line;
    while ((line = w_next_text_line(data, len, &i, &ln, &lineno))) {
        if (memchr(line, 0, ln)) {
            world_brown_doc_free(doc);
            return error("%s: line %d: binary data (NUL byte) in a Brown file", name, lineno);
        }
        int headline, bad;
        char *sent = detok(line, ln, &headline, &bad, fq);
        if (!sent) {
            world_brown_doc_free(doc);
            return error("%s: line %d, column %d: token without a /tag (Brown files are `word/tag` tokens)",
                         name, lineno, bad);
        }
        if (!*sent) {
            free(sent);
            continue;
        }
        if (headline || line[0] == '\t' || !cur) cur = doc_new_para(doc);
        para_push(cur, sent);
        if (headline) cur = NULL;
    }
    if (!doc->n_paras) return error("%s: no text in this Brown file", name);
    return 0;
}

int world_brown_parse(const char *name, const char *data, size_t len, world_brown_doc *doc)
{
    return parse_counted(name, data, len, doc, NULL);
}

void world_brown_freq(const world_brown *b, const char *word, int *all, int *noun, int *adj)
{
    int *v;
    *all = *noun = *adj = 0;
    if (!b->freq) return;
    if ((v = wmap_get(&b->freq->all, word))) *all = *v;
    if ((v = wmap_get(&b->freq->noun, word))) *noun = *v;
    if ((v = wmap_get(&b->freq->adj, word))) *adj = *v;
}

static int brown_want(const char *entry, void *ud)
{
    (void)ud;
    const char *b = strrchr(entry, '/');
    b = b ? b + 1 : entry;
    /* text files are c<genre a-r><2 digits>: ca01 .. cr09 */
    return strlen(b) == 4 && b[0] == 'c' && b[1] >= 'a' && b[1] <= 'r' && w_isdigit((unsigned char)b[2]) &&
           w_isdigit((unsigned char)b[3]);
}

struct brown_ctx {
    world_brown *b;
    const char *tgz;
};

static int brown_take(const char *entry, const char *data, size_t len, void *ud)
{
    struct brown_ctx *c = ud;
    world_brown *b = c->b;
    b->docs = xrealloc(b->docs, sizeof *b->docs * (size_t)(b->n_docs + 1));
    char *name = xstrfmt("%s:%s", c->tgz, entry);
    int rc = parse_counted(name, data, len, &b->docs[b->n_docs], b->freq);
    free(name);
    if (rc < 0) return -1;
    b->n_docs++;
    return 0;
}

static int doc_cmp(const void *a, const void *b)
{
    return strcmp(((const world_brown_doc *)a)->name, ((const world_brown_doc *)b)->name);
}

int world_brown_load(const char *tgz, world_brown *b)
{
    memset(b, 0, sizeof *b);
    b->freq = xcalloc(1, sizeof *b->freq);
    struct brown_ctx c = {b, tgz};
    if (hx_tgz_each(tgz, brown_want, brown_take, &c) < 0) {
        world_brown_free(b);
        return -1;
    }
    if (b->n_docs == 0) return error("%s: no Brown text files (c[a-r]NN) in the package", tgz);
    qsort(b->docs, (size_t)b->n_docs, sizeof *b->docs, doc_cmp);
    for (int i = 1; i < b->n_docs; i++)
        if (!strcmp(b->docs[i].name, b->docs[i - 1].name)) {
            int rc = error("%s: Brown file %s appears twice", tgz, b->docs[i].name);
            world_brown_free(b);
            return rc;
        }
    return 0;
}

void world_brown_free(world_brown *b)
{
    for (int i = 0; i < b->n_docs; i++) world_brown_doc_free(&b->docs[i]);
    free(b->docs);
    if (b->freq) {
        wmap_free(&b->freq->all);
        wmap_free(&b->freq->noun);
        wmap_free(&b->freq->adj);
        free(b->freq);
    }
    memset(b, 0, sizeof *b);
}

char *world_para_text(const world_para *p)
{
    hx_sbuf b = {0};
    for (int i = 0; i < p->n_sents; i++) {
        if (i) hx_sb_putc(&b, ' ');
        hx_sb_puts(&b, p->sents[i]);
    }
    return hx_sb_take(&b);
}
