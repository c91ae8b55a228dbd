/* facts.c - relations with their prose/question/answer templates, and the quality-filtered fact table from WordNet and world-countries. */
#include "world/world.h"
#include "world/world_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- relations: templates use {s} {S} (subject, capitalised), {o} {O}, {as} {AS} {ao} {AO} (with a/an) ---- */

#define T(...) (const char *const[]){__VA_ARGS__, NULL}

static const world_relation relations[] = {
    {"capital", WORLD_FAM_COUNTRY, "world-countries",
     T("The capital of {s} is {o}.", "{O} is the capital of {s}.", "{O} serves as the capital city of {s}.",
       "The government of {s} sits in its capital, {o}.", "The capital city of {s} is {o}.",
       "{S} has its capital at {o}.", "Visitors to {s} often arrive in {o}, the capital."),
     T("What is the capital of {s}?", "Which city is the capital of {s}?", "Name the capital city of {s}."),
     T("The capital of {s} is {o}.", "{O} is the capital of {s}.")},
    {"region", WORLD_FAM_COUNTRY, "world-countries",
     T("{S} lies in {o}.", "{S} is located in {o}.", "Geographically, {s} belongs to {o}.", "{S} is part of {o}.",
       "On a map of the world, {s} is found in {o}.", "{O} is the region of the world where {s} lies."),
     T("In which region of the world is {s}?", "Which world region does {s} belong to?",
       "Where in the world is {s} located?"),
     T("{S} is located in {o}.", "{S} belongs to {o}.")},
    {"subregion", WORLD_FAM_COUNTRY, "world-countries",
     T("Geographers place {s} in {o}.", "{S} is counted among the lands of {o}.",
       "Within its continent, {s} belongs to {o}.", "{S} is one of the places that make up {o}.",
       "More precisely, {s} lies in {o}.", "The subregion of {s} is {o}."),
     T("Which subregion is {s} part of?", "In which subregion of the world does {s} lie?",
       "What subregion does {s} belong to?"),
     T("{S} is part of {o}.", "The subregion of {s} is {o}.")},
    {"language", WORLD_FAM_COUNTRY, "world-countries",
     T("The official language of {s} is {o}.", "People in {s} speak {o}.", "{O} is the language of {s}.",
       "In {s}, the official language is {o}.", "Official business in {s} is conducted in {o}.",
       "Schools in {s} teach in {o}, the national language."),
     T("What is the official language of {s}?", "Which language is spoken officially in {s}?",
       "In what language is official business done in {s}?"),
     T("The official language of {s} is {o}.", "People in {s} speak {o}.")},
    {"currency", WORLD_FAM_COUNTRY, "world-countries",
     T("The currency of {s} is the {o}.", "In {s}, people pay with the {o}.", "The {o} is the money of {s}.",
       "Prices in {s} are given in the {o}.", "The official currency of {s} is the {o}.",
       "Travellers to {s} exchange their money for the {o}."),
     T("What is the currency of {s}?", "Which currency is used in {s}?", "What money do people use in {s}?"),
     T("The currency of {s} is the {o}.", "People in {s} pay with the {o}.")},
    {"demonym", WORLD_FAM_COUNTRY, "world-countries",
     T("Someone from {s} is {o}.", "A person born in {s} is called {o}.", "The people of {s} are {o}.",
       "The demonym for people from {s} is {o}.", "A citizen of {s} is described as {o}.",
       "People from {s} call themselves {o}."),
     T("What is the demonym for people from {s}?", "What do you call someone from {s}?",
       "How is a person from {s} described?"),
     T("Someone from {s} is {o}.", "The demonym for people from {s} is {o}.")},
    {"border", WORLD_FAM_COUNTRY, "world-countries",
     T("{S} shares its only land border with {o}.", "The only country bordering {s} is {o}.",
       "{S} is bordered by just one country, {o}.", "By land, {s} touches only {o}.",
       "{O} is the sole land neighbour of {s}.", "Leaving {s} by land, you can only enter {o}."),
     T("Which country is the only land neighbour of {s}?", "Which country does {s} share its only land border with?",
       "What is the one country that borders {s}?"),
     T("The only country bordering {s} is {o}.", "{S} shares its only land border with {o}.")},
    {"definition", WORLD_FAM_DEFINITION, "wordnet",
     T("The word \"{o}\" means {s}.", "The term {o} refers to {s}.", "In English, {s} is called {o}.",
       "The noun {o} denotes {s}.", "A dictionary defines {o} as {s}.", "When people say {o}, they mean {s}."),
     T("Which word means \"{s}\"?", "What is the word for {s}?", "What do we call {s}?"),
     T("The word is {o}.", "It is called {o}.")},
    {"hypernym", WORLD_FAM_HYPERNYM, "wordnet",
     T("{AS} is a kind of {o}.", "Every {s} is a type of {o}.", "The word {s} names a kind of {o}.",
       "{AS} is one type of {o}.", "Broadly speaking, {as} is {ao}.", "Among the kinds of {o} is {as}."),
     T("What kind of thing is {as}?", "{AS} is a kind of what?", "What is the broader category of the word {s}?"),
     T("{AS} is a kind of {o}.", "{AS} is one type of {o}.")},
    {"synonym", WORLD_FAM_LEXICAL, "wordnet",
     T("Another word for {s} is {o}.", "The word {s} means the same as {o}.", "{O} is a synonym of {s}.",
       "Instead of {s}, one can say {o}.", "{S} and {o} mean the same thing.", "A synonym for {s} is {o}."),
     T("What is another word for {s}?", "Which word is a synonym of {s}?", "What word means the same as {s}?"),
     T("Another word for {s} is {o}.", "A synonym of {s} is {o}.")},
    {"antonym", WORLD_FAM_LEXICAL, "wordnet",
     T("The opposite of {s} is {o}.", "{S} is the opposite of {o}.", "{O} is the antonym of {s}.",
       "{S} and {o} are opposites.", "The antonym of {s} is {o}.", "What is not {s} may well be {o}."),
     T("What is the opposite of {s}?", "Which word is the antonym of {s}?", "What word means the opposite of {s}?"),
     T("The opposite of {s} is {o}.", "The antonym of {s} is {o}.")},
};
#undef T

enum { R_CAPITAL, R_REGION, R_SUBREGION, R_LANGUAGE, R_CURRENCY, R_DEMONYM, R_BORDER, R_DEFINITION, R_HYPERNYM,
       R_SYNONYM, R_ANTONYM, R_N };

const world_relation *world_relations(int *n)
{
    if (n) *n = R_N;
    return relations;
}

const char *world_family_name(int fam)
{
    static const char *const names[] = {"country", "definition", "hypernym", "lexical"};
    return fam >= 0 && fam < WORLD_N_FAM ? names[fam] : "?";
}

const char *world_split_name(int split)
{
    static const char *const names[] = {"pretrain", "instruct", "eval", "heldout"};
    return split >= 0 && split < WORLD_N_SPLIT ? names[split] : "?";
}

/* ---- rendering ---- */

static const char *indefinite(const char *w)
{
    char c = (char)w_tolower((unsigned char)w[0]);
    if (!strncmp(w, "uni", 3) || !strncmp(w, "use", 3) || !strncmp(w, "one", 3) || !strncmp(w, "eu", 2)) return "a";
    if (!strncmp(w, "hour", 4) || !strncmp(w, "honest", 6) || !strncmp(w, "honor", 5) || !strncmp(w, "heir", 4))
        return "an";
    return strchr("aeiou", c) ? "an" : "a";
}

char *world_render(const char *tpl, const world_fact *f)
{
    hx_sbuf b = {0};
    for (const char *p = tpl; *p;) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (!e) BUG("unterminated placeholder in template '%s'", tpl);
            size_t n = (size_t)(e - p - 1);
            const char *ph = p + 1;
            int cap = w_isalpha((unsigned char)ph[0]) && ph[0] >= 'A' && ph[0] <= 'Z';
            int art = n == 2;
            char which = (char)w_tolower((unsigned char)ph[n - 1]);
            if ((n != 1 && n != 2) || (which != 's' && which != 'o')) BUG("bad placeholder in template '%s'", tpl);
            const char *text = which == 's' ? f->subj_text : f->obj_text;
            size_t start = b.len;
            if (art) {
                hx_sb_puts(&b, indefinite(text));
                hx_sb_putc(&b, ' ');
            }
            hx_sb_puts(&b, text);
            if (cap && b.len > start) b.s[start] = (char)w_toupper((unsigned char)b.s[start]);
            p = e + 1;
        } else {
            hx_sb_putc(&b, *p++);
        }
    }
    return hx_sb_take(&b);
}

char *world_render_prefix(const char *tpl, const world_fact *f)
{
    /* exactly one object placeholder ({o} {O} {ao} {AO}), the plain {o}, and only "." after it */
    const char *at = NULL;
    int n_obj = 0;
    for (const char *p = strchr(tpl, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (e && w_tolower((unsigned char)e[-1]) == 'o') {
            n_obj++;
            at = p;
        }
    }
    if (n_obj != 1 || strncmp(at, "{o}", 3) || strcmp(at + 3, ".") || at == tpl) return NULL;
    size_t n = (size_t)(at - tpl);
    while (n && tpl[n - 1] == ' ') n--;
    if (!n) return NULL;
    char *head = w_strndup(tpl, n), *s = world_render(head, f);
    free(head);
    return s;
}

/* ---- building ---- */

typedef struct fact_list {
    world_fact *f;
    int n, cap;
} fact_list;

static void str_push(char ***arr, int *n, const char *s)
{
    *arr = xrealloc(*arr, sizeof **arr * (size_t)(*n + 1));
    (*arr)[(*n)++] = xstrdup(s);
}

static int has_ci(char **arr, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (w_strcaseeq(arr[i], s)) return 1;
    return 0;
}

static world_fact *fact_add(fact_list *l, int rel, const char *subject, const char *object, const char *subj_text,
                            const char *obj_text)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->f = xrealloc(l->f, sizeof *l->f * (size_t)l->cap);
    }
    world_fact *f = &l->f[l->n++];
    memset(f, 0, sizeof *f);
    f->rel = rel;
    f->subject = xstrdup(subject);
    f->object = xstrdup(object);
    f->subj_text = xstrdup(subj_text ? subj_text : subject);
    f->obj_text = xstrdup(obj_text ? obj_text : object);
    str_push(&f->exclude, &f->n_exclude, object);
    return f;
}

static void fact_free(world_fact *f)
{
    free(f->subject); free(f->object); free(f->subj_text); free(f->obj_text);
    for (int i = 0; i < f->n_aliases; i++) free(f->aliases[i]);
    for (int i = 0; i < f->n_exclude; i++) free(f->exclude[i]);
    free(f->aliases);
    free(f->exclude);
}

/* Short answers only: objects of at most 4 words and 40 bytes tokenise to a few tokens. */
static int short_enough(const char *s) { return *s && strlen(s) <= 40 && w_count_words(s) <= 4; }

/* "the Netherlands", "the United States", "the Cayman Islands" */
static char *country_text(const char *name)
{
    static const char *const the[] = {"Bahamas", "Netherlands", "Philippines", "Gambia", "Comoros", "Maldives",
                                      "Seychelles", "Vatican City", "Falkland Islands", NULL};
    size_t n = strlen(name);
    int art = !strncmp(name, "United ", 7) || (n > 8 && !strcmp(name + n - 8, " Islands")) ||
              (n > 9 && !strcmp(name + n - 9, " Republic")) || strstr(name, " of ") != NULL;
    for (const char *const *p = the; *p && !art; p++) art = !strcmp(name, *p);
    return art ? xstrfmt("the %s", name) : xstrdup(name);
}

char *world_object_text(int rel, const char *object)
{
    if (rel == R_BORDER) return country_text(object);
    int the = (rel == R_REGION && (!strcmp(object, "Americas") || !strcmp(object, "Antarctic"))) ||
              (rel == R_SUBREGION && !strcmp(object, "Caribbean"));
    return the ? xstrfmt("the %s", object) : xstrdup(object);
}

static void add_country_facts(const world_countries *cc, fact_list *l)
{
    for (int i = 0; i < cc->n; i++) {
        const world_country *c = &cc->c[i];
        if (!short_enough(c->name)) continue;
        char *st = country_text(c->name);
        if (c->capital && short_enough(c->capital) && !w_strcaseeq(c->capital, c->name))
            fact_add(l, R_CAPITAL, c->name, c->capital, st, NULL);
        if (c->region && short_enough(c->region)) {
            char *ot = world_object_text(R_REGION, c->region);
            fact_add(l, R_REGION, c->name, c->region, st, ot);
            free(ot);
        }
        if (c->subregion && short_enough(c->subregion)) {
            char *ot = world_object_text(R_SUBREGION, c->subregion);
            fact_add(l, R_SUBREGION, c->name, c->subregion, st, ot);
            free(ot);
        }
        if (c->language && short_enough(c->language)) fact_add(l, R_LANGUAGE, c->name, c->language, st, NULL);
        if (c->currency && short_enough(c->currency)) fact_add(l, R_CURRENCY, c->name, c->currency, st, NULL);
        if (c->demonym && short_enough(c->demonym) && !w_strcaseeq(c->demonym, c->name))
            fact_add(l, R_DEMONYM, c->name, c->demonym, st, NULL);
        if (c->n_borders == 1) {
            for (int k = 0; k < cc->n; k++) {
                if (strcmp(cc->c[k].cca3, c->borders[0]) || !short_enough(cc->c[k].name)) continue;
                char *ot = world_object_text(R_BORDER, cc->c[k].name);
                fact_add(l, R_BORDER, c->name, cc->c[k].name, st, ot);
                free(ot);
            }
        }
        free(st);
    }
}

/* A lemma usable as a plain word: lowercase ASCII letters, single spaces or hyphens. */
static char *plain_lemma(const char *w)
{
    if (!w_isalpha((unsigned char)w[0])) return NULL;
    for (const char *p = w; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '-')) return NULL;
    char *s = xstrdup(w);
    for (char *p = s; *p; p++)
        if (*p == '_') *p = ' ';
    return s;
}

static int single_word(const char *w)
{
    for (const char *p = w; *p; p++)
        if (!(*p >= 'a' && *p <= 'z')) return 0;
    return strlen(w) >= 3;
}

/* A word the Brown corpus uses often enough, and mostly in this part of speech ('n' or 'a'):
 * "are" is a monosemous WordNet noun (a unit of area) but in Brown it is a verb. */
static int brown_ok(const world_brown *b, const char *w, char pos, int min_freq)
{
    int all, noun, adj;
    world_brown_freq(b, w, &all, &noun, &adj);
    int in_pos = pos == 'n' ? noun : adj;
    return all >= min_freq && in_pos * 2 >= all;
}

/* The definition part of a gloss: up to the first ';' (examples follow it). NULL if unusable. */
static char *gloss_definition(const world_synset *s)
{
    const char *g = s->gloss;
    size_t n = strcspn(g, ";");
    while (n && w_isspace((unsigned char)g[n - 1])) n--;
    char *d = w_strndup(g, n);
    int words = w_count_words(d);
    if (words < 3 || words > 14 || n > 90 || strpbrk(d, "()\"'[]:") ||
        !w_isalpha((unsigned char)d[0]) || (d[0] >= 'A' && d[0] <= 'Z')) {
        free(d);
        return NULL;
    }
    return d;
}

static int contains_word_ci(const char *hay, const char *w)
{
    char *h = w_lower(hay), *x = w_lower(w);
    int r = strstr(h, x) != NULL;
    free(h);
    free(x);
    return r;
}

/* Lemmas of every ancestor of s (hypernym closure), to keep them out of the distractors. */
static void ancestors(const world_wordnet *wn, const world_synset *s, char ***out, int *n, int depth)
{
    if (depth > 30) return;
    for (int h = 0; h < s->n_hyper; h++) {
        const world_synset *p = world_wordnet_find(wn, 0, s->hyper[h]);
        if (!p) continue;
        for (int i = 0; i < p->n_words; i++) {
            char *pl = plain_lemma(p->words[i]);
            if (pl && !has_ci(*out, *n, pl)) str_push(out, n, pl);
            free(pl);
        }
        ancestors(wn, p, out, n, depth + 1);
    }
}

static void add_wordnet_facts(const world_wordnet *wn, const world_brown *brown, int min_freq, fact_list *l)
{
    /* senses per noun lemma: monosemous words make unambiguous questions */
    wmap senses = {0}, adj_ant = {0};
    for (int i = 0; i < wn->n_syn[0]; i++)
        for (int k = 0; k < wn->syn[0][i].n_words; k++) {
            char *lw = w_lower(wn->syn[0][i].words[k]);
            (*wmap_put(&senses, lw, 0))++;
            free(lw);
        }
    for (int i = 0; i < wn->n_syn[0]; i++) {
        const world_synset *s = &wn->syn[0][i];
        const char *w = s->words[0];
        int *ns = wmap_get(&senses, w);
        if (!single_word(w) || !ns || *ns != 1 || !brown_ok(brown, w, 'n', min_freq)) continue;
        /* definition: the gloss is the subject, the word the answer; synonyms are aliases */
        char *def = gloss_definition(s);
        if (def) {
            int leak = 0;
            for (int k = 0; k < s->n_words; k++) leak |= contains_word_ci(def, s->words[k]);
            if (!leak) {
                world_fact *f = fact_add(l, R_DEFINITION, def, w, NULL, NULL);
                for (int k = 1; k < s->n_words; k++) {
                    char *pl = plain_lemma(s->words[k]);
                    if (pl && short_enough(pl) && !has_ci(f->aliases, f->n_aliases, pl)) {
                        str_push(&f->aliases, &f->n_aliases, pl);
                        str_push(&f->exclude, &f->n_exclude, pl);
                    }
                    free(pl);
                }
            }
            free(def);
        }
        /* hypernym: the first plain lemma of the (single) hypernym synset */
        if (s->n_hyper == 1) {
            const world_synset *h = world_wordnet_find(wn, 0, s->hyper[0]);
            char *obj = NULL;
            int oi = -1;
            for (int k = 0; h && k < h->n_words && !obj; k++) {
                obj = plain_lemma(h->words[k]);
                if (obj && (!short_enough(obj) || contains_word_ci(obj, w) || contains_word_ci(w, obj))) {
                    free(obj);
                    obj = NULL;
                }
                oi = k;
            }
            if (obj) {
                world_fact *f = fact_add(l, R_HYPERNYM, w, obj, NULL, NULL);
                for (int k = oi + 1; k < h->n_words; k++) {
                    char *pl = plain_lemma(h->words[k]);
                    if (pl && short_enough(pl) && !has_ci(f->aliases, f->n_aliases, pl) && !w_strcaseeq(pl, obj))
                        str_push(&f->aliases, &f->n_aliases, pl);
                    free(pl);
                }
                ancestors(wn, s, &f->exclude, &f->n_exclude, 0);
                for (int k = 0; k < s->n_words; k++) {
                    char *pl = plain_lemma(s->words[k]);
                    if (pl && !has_ci(f->exclude, f->n_exclude, pl)) str_push(&f->exclude, &f->n_exclude, pl);
                    free(pl);
                }
            }
            free(obj);
        }
        /* synonym: one fact per synset, the next plain lemma is the answer, the rest are aliases */
        if (s->n_words >= 2) {
            world_fact *f = NULL;
            for (int k = 1; k < s->n_words; k++) {
                char *pl = plain_lemma(s->words[k]);
                if (pl && short_enough(pl) && !contains_word_ci(pl, w)) {
                    if (!f) f = fact_add(l, R_SYNONYM, w, pl, NULL, NULL);
                    else if (!has_ci(f->aliases, f->n_aliases, pl) && !w_strcaseeq(pl, f->object))
                        str_push(&f->aliases, &f->n_aliases, pl);
                    if (!has_ci(f->exclude, f->n_exclude, pl)) str_push(&f->exclude, &f->n_exclude, pl);
                }
                free(pl);
            }
        }
    }
    /* antonym: adjectives with exactly one antonym over all their senses; each pair once */
    for (int i = 0; i < wn->n_syn[1]; i++) {
        const world_synset *s = &wn->syn[1][i];
        for (int a = 0; a < s->n_ant; a++) {
            char *lw = w_lower(s->words[s->ant_src[a]]);
            int *v = wmap_put(&adj_ant, lw, 0);
            (*v)++;
            free(lw);
        }
    }
    for (int i = 0; i < wn->n_syn[1]; i++) {
        const world_synset *s = &wn->syn[1][i];
        for (int a = 0; a < s->n_ant; a++) {
            const char *w = s->words[s->ant_src[a]];
            const world_synset *t = world_wordnet_find(wn, 1, s->ant_off[a]);
            if (!t || s->ant_dst[a] >= t->n_words) continue;
            const char *o = t->words[s->ant_dst[a]];
            int *nw = wmap_get(&adj_ant, w), *no = wmap_get(&adj_ant, o);
            if (!single_word(w) || !single_word(o) || strcmp(w, o) >= 0 || !nw || *nw != 1 || !no || *no != 1)
                continue;
            if (!brown_ok(brown, w, 'a', min_freq) || !brown_ok(brown, o, 'a', min_freq)) continue;
            fact_add(l, R_ANTONYM, w, o, NULL, NULL);
        }
    }
    wmap_free(&senses);
    wmap_free(&adj_ant);
}

static int fact_key_cmp(const void *a, const void *b)
{
    const world_fact *x = a, *y = b;
    if (x->rel != y->rel) return x->rel - y->rel;
    char *lx = w_lower(x->subject), *ly = w_lower(y->subject);
    int c = strcmp(lx, ly);
    free(lx);
    free(ly);
    if (c) return c;
    return strcmp(x->object, y->object);
}

static int fact_id_cmp(const void *a, const void *b)
{
    return strcmp(((const world_fact *)a)->id, ((const world_fact *)b)->id);
}

int world_facts_build(const world_wordnet *wn, const world_countries *cc, const world_brown *brown,
                      int min_brown_freq, world_facts *out)
{
    fact_list l = {0};
    add_country_facts(cc, &l);
    add_wordnet_facts(wn, brown, min_brown_freq, &l);
    /* unambiguous: one object per (relation, subject); subjects with two different answers are dropped */
    qsort(l.f, (size_t)l.n, sizeof *l.f, fact_key_cmp);
    world_fact *keep = xcalloc((size_t)l.n + 1, sizeof *keep);
    int nk = 0;
    for (int i = 0; i < l.n;) {
        int j = i + 1;
        while (j < l.n && l.f[j].rel == l.f[i].rel && w_strcaseeq(l.f[j].subject, l.f[i].subject)) j++;
        int distinct = 1;
        for (int k = i + 1; k < j; k++)
            if (!w_strcaseeq(l.f[k].object, l.f[i].object)) distinct = 0;
        if (distinct) {
            keep[nk++] = l.f[i];
            for (int k = i + 1; k < j; k++) fact_free(&l.f[k]);
        } else {
            for (int k = i; k < j; k++) fact_free(&l.f[k]);
        }
        i = j;
    }
    free(l.f);
    for (int i = 0; i < nk; i++) {
        world_fact *f = &keep[i];
        char *key = xstrfmt("%s\t%s\t%s", relations[f->rel].name, f->subject, f->object);
        char hex[65];
        hx_sha256_hex(key, strlen(key), hex);
        free(key);
        snprintf(f->id, sizeof f->id, "%s-%.10s", relations[f->rel].name, hex);
    }
    qsort(keep, (size_t)nk, sizeof *keep, fact_id_cmp);
    for (int i = 1; i < nk; i++)
        if (!strcmp(keep[i].id, keep[i - 1].id)) BUG("fact id collision %s", keep[i].id);
    out->f = keep;
    out->n = nk;
    return 0;
}

void world_facts_free(world_facts *fs)
{
    for (int i = 0; i < fs->n; i++) fact_free(&fs->f[i]);
    free(fs->f);
    fs->f = NULL;
    fs->n = 0;
}
