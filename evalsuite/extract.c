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
    static const char *names[] = {"none", "explicit", "leading", "choice", "anywhere"};
    return r >= EV_RULE_NONE && r <= EV_RULE_ANYWHERE ? names[r] : "none";
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

/* The article "A" ("A country ...") rather than the letter A. */
static int article_at(const char *text, long at)
{
    return text[at] == 'A' && text[at + 1] == ' ' && text[at + 2] >= 'a' && text[at + 2] <= 'z';
}

int ev_extract_letter(const char *text, const char *const *choices, int n_choices, ev_rule *rule)
{
    if (rule) *rule = EV_RULE_NONE;
    if (n_choices < 1 || n_choices > 26) return -1;
    char last = (char)('A' + n_choices - 1);
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

int ev_match_open(const char *text, const char *target, const char *const *aliases, int n_aliases, int *exact,
                  int *contains)
{
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
