/* extract.c - answer extraction: SQuAD normalisation, MCQ letter rules (PCRE2), open-answer exact/contains match. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "evalsuite/extract.h"

const char *ev_rule_name(ev_rule r)
{
    static const char *names[] = {"none", "explicit", "leading", "choice", "anywhere", "ambiguous"};
    return r >= EV_RULE_NONE && r <= EV_RULE_AMBIGUOUS ? names[r] : "none";
}

static int is_article(const char *w, size_t n)
{
    return (n == 1 && w[0] == 'a') || (n == 2 && !memcmp(w, "an", 2)) || (n == 3 && !memcmp(w, "the", 3));
}

char *ev_normalize(const char *s)
{
    size_t n = strlen(s);
    char *t = xmalloc(n + 1), *out = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && ispunct(c)) continue; /* SQuAD drops string.punctuation without a space */
        t[k++] = c < 0x80 ? (char)tolower(c) : (char)c;
    }
    t[k] = 0;
    size_t o = 0;
    for (size_t i = 0; i < k;) {
        while (i < k && isspace((unsigned char)t[i])) i++;
        size_t j = i;
        while (j < k && !isspace((unsigned char)t[j])) j++;
        if (j > i && !is_article(t + i, j - i)) {
            if (o) out[o++] = ' ';
            memcpy(out + o, t + i, j - i);
            o += j - i;
        }
        i = j;
    }
    out[o] = 0;
    free(t);
    return out;
}

/* Whole-word occurrence of needle in hay (both normalised: single spaces, no leading/trailing space). */
static int contains_words(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (!n) return 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) {
        int left = p == hay || p[-1] == ' ', right = p[n] == 0 || p[n] == ' ';
        if (left && right) return 1;
    }
    return 0;
}

/*
 * First match of pattern in text at or after `from`; the offset of capture group 1 (or -1). Patterns are
 * constants of this file: a compile failure is a BUG.
 */
static long re_group1(const char *pattern, const char *text, size_t from)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (!re) BUG("extract: pattern '%s' does not compile at %zu", pattern, (size_t)eo);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    long at = -1;
    int rc = pcre2_match(re, (PCRE2_SPTR)text, strlen(text), from, 0, md, NULL);
    if (rc >= 2) at = (long)pcre2_get_ovector_pointer(md)[2];
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return at;
}

/*
 * Words that never follow the article "a" (verbs, auxiliaries, conjunctions, prepositions, pronouns): after "A " one
 * of these makes "A" the option letter ("A is the answer", "A and B"), any other lower-case word makes it the article
 * that starts a noun phrase ("A country in Africa").
 */
static const char *const not_after_article[] = {
    "and", "appears", "are", "as", "at", "be", "because", "but", "by", "can", "could", "did", "does", "fits", "for",
    "from", "had", "has", "have", "if", "in", "is", "it", "looks", "matches", "may", "might", "must", "nor", "of",
    "on", "or", "seems", "shall", "should", "since", "so", "than", "that", "then", "to", "was", "were", "which",
    "will", "with", "would", NULL,
};

/* The article "A" starting a noun phrase ("A country ...") rather than the letter A ("A is the answer"). */
static int article_at(const char *text, long at)
{
    if (text[at] != 'A' || text[at + 1] != ' ' || text[at + 2] < 'a' || text[at + 2] > 'z') return 0;
    const char *w = text + at + 2;
    size_t n = 0;
    while (w[n] >= 'a' && w[n] <= 'z') n++;
    for (int i = 0; not_after_article[i]; i++)
        if (strlen(not_after_article[i]) == n && !strncmp(w, not_after_article[i], n)) return 0;
    return 1;
}

/*
 * Two different option letters offered as alternatives: "C or D", "B, C", "A and B", "(A)/(B)", "either B or
 * option C". Returns 1 when the reply hedges so (docs/eval.md: rule `ambiguous`).
 */
static int hedged_letters(const char *text, char last)
{
    char pat[320];
    snprintf(pat, sizeof pat,
             "(?<![A-Za-z0-9])[\\(\\[]?([A-%c])[\\)\\]]?"
             "(?:\\s*,\\s*(?:(?:or|and)\\s+)?|\\s*[/&]\\s*|\\s+(?:or|and|and/or|nor)\\s+)"
             "(?:(?:option|choice)\\s+)?[\\(\\[]?([A-%c])(?![A-Za-z0-9])",
             last, last);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (!re) BUG("extract: pattern '%s' does not compile at %zu", pat, (size_t)eo);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int hedge = 0;
    size_t len = strlen(text);
    for (size_t from = 0; !hedge && from < len;) {
        if (pcre2_match(re, (PCRE2_SPTR)text, len, from, 0, md, NULL) < 3) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        long a = (long)ov[2], b = (long)ov[4];
        hedge = text[a] != text[b] && !article_at(text, a);
        from = (size_t)a + 1; /* overlapping lists: "A, B or C" is tried at B too */
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return hedge;
}

int ev_extract_letter(const char *text, const char *const *choices, int n_choices, ev_rule *rule)
{
    if (rule) *rule = EV_RULE_NONE;
    if (n_choices < 1 || n_choices > 26) return -1;
    char last = (char)('A' + n_choices - 1);
    if (hedged_letters(text, last)) {
        if (rule) *rule = EV_RULE_AMBIGUOUS;
        return -1;
    }
    char pat[256];
    /* explicit: "answer is B", "Answer: (B)", "answer - B." ("answer" in any case, the letter upper-case) */
    snprintf(pat, sizeof pat,
             "[Aa][Nn][Ss][Ww][Ee][Rr](?:\\s+is)?\\s*[:\\-]?\\s*(?:option\\s+|choice\\s+)?[\\(\\[]?([A-%c])(?![A-Za-z0-9])",
             last);
    long at = re_group1(pat, text, 0);
    if (at >= 0 && !article_at(text, at)) {
        if (rule) *rule = EV_RULE_EXPLICIT;
        return text[at] - 'A';
    }
    snprintf(pat, sizeof pat, "^\\s*[\\(\\[]?([A-%c])(?![A-Za-z0-9])", last);
    at = re_group1(pat, text, 0);
    if (at >= 0 && !article_at(text, at)) {
        if (rule) *rule = EV_RULE_LEADING;
        return text[at] - 'A';
    }
    if (choices) {
        char *nt = ev_normalize(text);
        int eq = -1, hit = -1, n_hit = 0;
        for (int c = 0; c < n_choices; c++) {
            if (!choices[c]) continue;
            char *nc = ev_normalize(choices[c]);
            if (*nc && !strcmp(nc, nt) && eq < 0) eq = c;
            if (contains_words(nt, nc)) {
                hit = c;
                n_hit++;
            }
            free(nc);
        }
        free(nt);
        if (eq < 0 && n_hit >= 2) { /* "Lebanese or Ugandan": two options named */
            if (rule) *rule = EV_RULE_AMBIGUOUS;
            return -1;
        }
        int pick = eq >= 0 ? eq : n_hit == 1 ? hit : -1;
        if (pick >= 0) {
            if (rule) *rule = EV_RULE_CHOICE;
            return pick;
        }
    }
    snprintf(pat, sizeof pat, "(?<![A-Za-z0-9])([A-%c])(?![A-Za-z0-9])", last);
    for (size_t from = 0; (at = re_group1(pat, text, from)) >= 0; from = (size_t)at + 1) {
        if (article_at(text, at)) continue;
        if (rule) *rule = EV_RULE_ANYWHERE;
        return text[at] - 'A';
    }
    return -1;
}

char *ev_open_answer(const char *text)
{
    const char *p = text;
    for (;;) { /* first non-empty line */
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (*p != '\n') break;
        p++;
    }
    size_t n = strcspn(p, "\n");
    while (n && isspace((unsigned char)p[n - 1])) n--;
    static const char *const prefixes[] = {"the answer is", "answer:", "a:"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t k = strlen(prefixes[i]);
        if (n >= k && !strncasecmp(p, prefixes[i], k)) {
            p += k;
            n -= k;
            while (n && isspace((unsigned char)*p)) p++, n--;
            break;
        }
    }
    char *s = xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* First ASCII case-insensitive occurrence of needle (non-empty) in hay, or NULL. */
static char *find_ci(char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (char *p = hay; *p; p++)
        if (!strncasecmp(p, needle, n)) return p;
    return NULL;
}

static int by_length_desc(const void *a, const void *b)
{
    size_t x = strlen(*(const char *const *)a), y = strlen(*(const char *const *)b);
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Separator at p: its length (0: none); *disj = 1 for a disjunction ("or", "nor", "/"). */
static size_t list_sep(const char *p, int *disj)
{
    static const struct { const char *s; int disj; } seps[] = {
        {",", 0}, {";", 0}, {"&", 0}, {"/", 1}, {" or ", 1}, {" nor ", 1}, {" and ", 0},
    };
    for (size_t i = 0; i < sizeof seps / sizeof seps[0]; i++) {
        size_t n = strlen(seps[i].s);
        if (!strncasecmp(p, seps[i].s, n)) {
            *disj |= seps[i].disj;
            return n;
        }
    }
    return 0;
}

int ev_open_is_list(const char *text, const char *target, const char *const *aliases, int n_aliases)
{
    char *ans = ev_open_answer(text);
    /* every accepted answer becomes one word (\x01), longest first: "Bosnia and Herzegovina" is not a list */
    const char **acc = xcalloc((size_t)n_aliases + 1, sizeof *acc);
    int na = 0;
    for (int i = -1; i < n_aliases; i++) {
        const char *g = i < 0 ? target : aliases[i];
        if (g && *g) acc[na++] = g;
    }
    qsort(acc, (size_t)na, sizeof *acc, by_length_desc);
    for (int i = 0; i < na; i++)
        for (char *hit; (hit = find_ci(ans, acc[i]));) {
            size_t n = strlen(acc[i]);
            hit[0] = '\x01';
            memmove(hit + 1, hit + n, strlen(hit + n) + 1);
        }
    free(acc);
    /* parts between separators: trimmed, their words counted */
    enum { MAX_PARTS = 64 };
    char *part[MAX_PARTS];
    int n_parts = 0, disj = 0, short_parts = 1;
    for (char *p = ans, *start = ans;; p++) {
        size_t sep = *p ? list_sep(p, &disj) : 1;
        if (!sep) continue;
        char *e = p;
        while (start < e && (isspace((unsigned char)*start))) start++;
        while (e > start && (isspace((unsigned char)e[-1]) || strchr(".!?", e[-1]))) e--;
        if (e > start && n_parts < MAX_PARTS) {
            int words = 0;
            for (char *q = start; q < e; q++)
                words += !isspace((unsigned char)*q) && (q == start || isspace((unsigned char)q[-1]));
            short_parts &= words <= 4;
            part[n_parts++] = xstrfmt("%.*s", (int)(e - start), start);
        }
        if (!*p) break;
        p += sep - 1;
        start = p + 1;
    }
    int distinct = 0;
    for (int i = 1; i < n_parts && !distinct; i++) distinct = strcasecmp(part[i], part[0]) != 0;
    for (int i = 0; i < n_parts; i++) free(part[i]);
    free(ans);
    return n_parts >= 2 && short_parts && distinct && (disj || n_parts >= 3);
}

int ev_match_open(const char *text, const char *target, const char *const *aliases, int n_aliases, int *exact,
                  int *contains)
{
    if (ev_open_is_list(text, target, aliases, n_aliases)) {
        if (exact) *exact = 0;
        if (contains) *contains = 0;
        return 0;
    }
    char *ans = ev_open_answer(text), *na = ev_normalize(ans), *nt = ev_normalize(text);
    int ex = 0, co = 0;
    for (int i = -1; i < n_aliases; i++) {
        const char *g = i < 0 ? target : aliases[i];
        if (!g) continue;
        char *ng = ev_normalize(g);
        if (*ng) {
            ex |= !strcmp(na, ng);
            co |= contains_words(nt, ng);
        }
        free(ng);
    }
    free(ans);
    free(na);
    free(nt);
    if (exact) *exact = ex;
    if (contains) *contains = co;
    return co;
}

/* 1 when an occurrence of `ans` in text (ASCII case-insensitive) has byte `at` inside it. Its last byte does not
 * count: the "." of "Washington D.C." also ends the sentence. */
static int covered(const char *text, size_t at, const char *ans)
{
    size_t n = ans ? strlen(ans) : 0;
    if (n < 2 || !strchr(ans, '.')) return 0;
    for (size_t q = at + 2 >= n ? at + 2 - n : 0; q <= at; q++)
        if (!strncasecmp(text + q, ans, n)) return 1;
    return 0;
}

size_t ev_prose_end(const char *text, const char *target, const char *const *aliases, int n_aliases)
{
    size_t i = 0;
    for (; text[i] && text[i] != '\n'; i++) {
        if (text[i] != '.') continue;
        int inside = covered(text, i, target);
        for (int a = 0; a < n_aliases && !inside; a++) inside = covered(text, i, aliases[a]);
        if (!inside) break;
    }
    return i;
}
