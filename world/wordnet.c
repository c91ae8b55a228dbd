/* wordnet.c - WordNet 3.1 dict/data.noun and data.adj: synsets with lemmas, hypernyms, antonyms and glosses. */
#include "world/world.h"
#include "world/world_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the next space-separated field of a data line. */
static int next_field(const char **p, const char *end, const char **f, size_t *n)
{
    const char *s = *p;
    while (s < end && *s == ' ') s++;
    if (s >= end) return 0;
    const char *e = s;
    while (e < end && *e != ' ') e++;
    *f = s;
    *n = (size_t)(e - s);
    *p = e;
    return 1;
}

static int parse_num(const char *f, size_t n, int base, unsigned long *out)
{
    if (!n || n > 16) return -1;
    char tmp[17];
    memcpy(tmp, f, n);
    tmp[n] = 0;
    char *e;
    *out = strtoul(tmp, &e, base);
    return *e ? -1 : 0;
}

static void synset_free(world_synset *s)
{
    for (int i = 0; i < s->n_words; i++) free(s->words[i]);
    free(s->words);
    free(s->hyper);
    free(s->ant_src);
    free(s->ant_off);
    free(s->ant_dst);
    free(s->gloss);
}

#define BAD(what) do { synset_free(&s); return error("%s: line %d: %s (WordNet data line: offset lex_filenum ss_type w_cnt words p_cnt pointers | gloss)", name, lineno, what); } while (0)

static int parse_line(const char *name, int lineno, const char *line, size_t ln, world_synset *out)
{
    world_synset s;
    memset(&s, 0, sizeof s);
    const char *p = line, *end = line + ln, *f;
    size_t n;
    unsigned long v;
    const char *bar = memchr(line, '|', ln);
    if (!bar) BAD("no '|' before the gloss");
    end = bar;
    if (!next_field(&p, end, &f, &n) || parse_num(f, n, 10, &v) < 0) BAD("bad synset offset");
    s.offset = (uint32_t)v;
    if (!next_field(&p, end, &f, &n) || parse_num(f, n, 10, &v) < 0) BAD("bad lex_filenum");
    if (!next_field(&p, end, &f, &n) || n != 1 || !strchr("nvasr", *f)) BAD("bad ss_type");
    s.pos = *f;
    if (!next_field(&p, end, &f, &n) || parse_num(f, n, 16, &v) < 0 || v == 0) BAD("bad w_cnt");
    int wcnt = (int)v;
    s.words = xcalloc((size_t)wcnt, sizeof *s.words);
    for (int i = 0; i < wcnt; i++) {
        if (!next_field(&p, end, &f, &n)) BAD("fewer words than w_cnt");
        size_t wn = n;
        if (wn > 2 && f[wn - 1] == ')') { /* adjective marker: beautiful(a), (p), (ip) */
            const char *o = memchr(f, '(', wn);
            if (o && o > f) wn = (size_t)(o - f);
        }
        s.words[s.n_words++] = w_strndup(f, wn);
        if (!next_field(&p, end, &f, &n) || parse_num(f, n, 16, &v) < 0) BAD("bad lex_id");
    }
    if (!next_field(&p, end, &f, &n) || parse_num(f, n, 10, &v) < 0) BAD("bad p_cnt");
    int pcnt = (int)v;
    for (int i = 0; i < pcnt; i++) {
        const char *sym, *off, *pos, *st;
        size_t nsym, noff, npos, nst;
        if (!next_field(&p, end, &sym, &nsym) || !next_field(&p, end, &off, &noff) ||
            !next_field(&p, end, &pos, &npos) || !next_field(&p, end, &st, &nst))
            BAD("fewer pointers than p_cnt");
        unsigned long o, stv;
        if (parse_num(off, noff, 10, &o) < 0 || nst != 4 || parse_num(st, nst, 16, &stv) < 0 || npos != 1)
            BAD("bad pointer");
        if (nsym == 1 && sym[0] == '@' && pos[0] == s.pos) {
            s.hyper = xrealloc(s.hyper, sizeof *s.hyper * (size_t)(s.n_hyper + 1));
            s.hyper[s.n_hyper++] = (uint32_t)o;
        } else if (nsym == 1 && sym[0] == '!' && stv != 0) {
            int src = (int)(stv >> 8), dst = (int)(stv & 0xff);
            if (src < 1 || src > s.n_words) BAD("antonym source word out of range");
            s.ant_src = xrealloc(s.ant_src, sizeof *s.ant_src * (size_t)(s.n_ant + 1));
            s.ant_off = xrealloc(s.ant_off, sizeof *s.ant_off * (size_t)(s.n_ant + 1));
            s.ant_dst = xrealloc(s.ant_dst, sizeof *s.ant_dst * (size_t)(s.n_ant + 1));
            s.ant_src[s.n_ant] = src - 1;
            s.ant_off[s.n_ant] = (uint32_t)o;
            s.ant_dst[s.n_ant] = dst - 1;
            s.n_ant++;
        }
    }
    const char *g = bar + 1, *ge = line + ln;
    while (g < ge && *g == ' ') g++;
    while (ge > g && w_isspace((unsigned char)ge[-1])) ge--;
    s.gloss = w_strndup(g, (size_t)(ge - g));
    *out = s;
    return 0;
}
#undef BAD

int world_wordnet_parse(const char *name, const char *data, size_t len, int slot, world_wordnet *wn)
{
    if (slot < 0 || slot > 1) BUG("bad WordNet slot %d", slot);
    int lineno = 0, cap = wn->n_syn[slot];
    size_t i = 0;
    uint32_t last = 0;
    while (i < len) {
        size_t ln;
        const char *line = w_next_line(data, len, &i, &ln);
        lineno++;
        if (ln == 0 || line[0] == ' ') continue; /* license header lines start with two spaces */
        world_synset s;
        if (parse_line(name, lineno, line, ln, &s) < 0) return -1;
        if (s.offset <= last && wn->n_syn[slot]) {
            synset_free(&s);
            return error("%s: line %d: synset offsets are not increasing", name, lineno);
        }
        last = s.offset;
        if (wn->n_syn[slot] == cap) {
            cap = cap ? cap * 2 : 4096;
            wn->syn[slot] = xrealloc(wn->syn[slot], sizeof *wn->syn[slot] * (size_t)cap);
        }
        wn->syn[slot][wn->n_syn[slot]++] = s;
    }
    return 0;
}

struct wn_ctx {
    world_wordnet *wn;
    const char *tgz;
    int seen[2];
};

static int wn_want(const char *entry, void *ud)
{
    (void)ud;
    return !strcmp(entry, "package/dict/data.noun") || !strcmp(entry, "package/dict/data.adj");
}

static int wn_take(const char *entry, const char *data, size_t len, void *ud)
{
    struct wn_ctx *c = ud;
    int slot = strstr(entry, "data.adj") ? 1 : 0;
    char *name = xstrfmt("%s:%s", c->tgz, entry);
    int rc = world_wordnet_parse(name, data, len, slot, c->wn);
    free(name);
    c->seen[slot] = 1;
    return rc;
}

int world_wordnet_load(const char *tgz, world_wordnet *wn)
{
    memset(wn, 0, sizeof *wn);
    struct wn_ctx c = {wn, tgz, {0, 0}};
    if (hx_tgz_each(tgz, wn_want, wn_take, &c) < 0) {
        world_wordnet_free(wn);
        return -1;
    }
    if (!c.seen[0] || !c.seen[1]) {
        world_wordnet_free(wn);
        return error("%s: package/dict/data.noun or data.adj missing", tgz);
    }
    return 0;
}

const world_synset *world_wordnet_find(const world_wordnet *wn, int slot, uint32_t offset)
{
    int lo = 0, hi = wn->n_syn[slot] - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        uint32_t o = wn->syn[slot][mid].offset;
        if (o == offset) return &wn->syn[slot][mid];
        if (o < offset) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

void world_wordnet_free(world_wordnet *wn)
{
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < wn->n_syn[k]; i++) synset_free(&wn->syn[k][i]);
        free(wn->syn[k]);
    }
    memset(wn, 0, sizeof *wn);
}
