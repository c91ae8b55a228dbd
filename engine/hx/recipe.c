/* recipe.c - loads recipes: YAML to JSON with positions, includes, -S overrides, top-level checks. */
#include "engine/hx/recipe.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "engine/hx/canon.h"

#define MAX_NODES 200000   /* YAML nodes after alias expansion: stops "billion laughs" documents */
#define MAX_DEPTH 128      /* nesting of YAML collections */
#define MAX_INCLUDES 32    /* include depth */
#define MAX_LOADS 256      /* files loaded for one recipe, a file counted each time it is included */

static const char *const top_keys[] = {"hx", "name", "description", "include", "params", "axes",
                                       "zip", "scales", "stages", "report"};
static const char *const stage_keys[] = {"kind", "inputs", "with", "description", "resources"};
/* What a stage asks of a cluster scheduler (hx run --executor slurm; values checked in slurm.c). */
static const char *const resource_keys[] = {"cpus", "gpus", "mem", "time"};

/* ---- did you mean ---- */

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions), capped inputs. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return 1000;
    int d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

const char *hx_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    int bestd = INT_MAX, len = (int)strlen(word);
    for (size_t i = 0; i < n; i++) {
        int d = edit_distance(word, cands[i]);
        if (d < bestd) bestd = d, best = cands[i];
    }
    int limit = 1 + len / 4;
    if (limit > 3) limit = 3;
    return best && bestd <= limit && bestd < len ? best : NULL;
}

const char *hx_suggest_hint(const char *word, const json_t *keys_or_list)
{
    static _Thread_local char hint[256];
    size_t n = 0, i = 0;
    hint[0] = 0;
    if (!keys_or_list) return hint;
    n = json_is_object(keys_or_list) ? json_object_size(keys_or_list) : json_array_size(keys_or_list);
    const char **c = xmalloc((n ? n : 1) * sizeof *c);
    if (json_is_object(keys_or_list)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)keys_or_list, k, v) c[i++] = k;
    } else {
        for (size_t j = 0; j < n; j++)
            if (json_is_string(json_array_get(keys_or_list, j))) c[i++] = json_string_value(json_array_get(keys_or_list, j));
    }
    const char *s = hx_suggest(word, c, i);
    if (s) snprintf(hint, sizeof hint, " (did you mean '%s'?)", s);
    free(c);
    return hint;
}

static const char *suggest_hint_list(const char *word, const char *const *cands, size_t n)
{
    static _Thread_local char hint[256];
    const char *s = hx_suggest(word, cands, n);
    hint[0] = 0;
    if (s) snprintf(hint, sizeof hint, " (did you mean '%s'?)", s);
    return hint;
}

/* ---- paths ---- */

char *hx_path_key(const char *parent, const char *key)
{
    return parent && *parent ? xstrfmt("%s.%s", parent, key) : xstrdup(key);
}

char *hx_path_index(const char *parent, size_t i) { return xstrfmt("%s[%zu]", parent ? parent : "", i); }

/* Is P equal to PREFIX or inside it ("a.b" is inside "a", "a[1]" too; "ab" is not)? */
static int path_within(const char *p, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0) return 1;
    return !strncmp(p, prefix, n) && (p[n] == 0 || p[n] == '.' || p[n] == '[');
}

/*
 * Walk PATH ("a.b[2].c", also "a.b.2" for list items) from ROOT. Returns the value (borrowed) and
 * its canonical path in *canon (xmalloc'd), or NULL with *fail_parent set to the last value reached
 * and *fail_seg to the segment that was missing (both may be used for a hint).
 */
static json_t *path_get(json_t *root, const char *path, char **canon, json_t **fail_parent, char *fail_seg,
                        size_t seg_n)
{
    json_t *cur = root;
    char *cp = xstrdup("");
    const char *p = path;
    if (fail_seg && seg_n) fail_seg[0] = 0;
    if (fail_parent) *fail_parent = NULL;
    while (*p) {
        char seg[256];
        int bracket = 0;
        size_t k = 0;
        if (*p == '[') {
            bracket = 1;
            p++;
            while (*p && *p != ']' && k + 1 < sizeof seg) seg[k++] = *p++;
            if (*p != ']') goto fail_seg_now;
            p++;
        } else {
            while (*p && *p != '.' && *p != '[' && k + 1 < sizeof seg) seg[k++] = *p++;
        }
        seg[k] = 0;
        if (*p == '.') {
            p++;
            if (!*p) goto fail_seg_now;
        }
        if (k == 0) goto fail_seg_now;
        if (json_is_object(cur) && !bracket) {
            json_t *next = json_object_get(cur, seg);
            if (!next) {
                if (fail_parent) *fail_parent = cur;
                if (fail_seg) snprintf(fail_seg, seg_n, "%s", seg);
                free(cp);
                return NULL;
            }
            char *np = hx_path_key(cp, seg);
            free(cp);
            cp = np;
            cur = next;
        } else if (json_is_array(cur)) {
            char *end;
            errno = 0;
            long i = strtol(seg, &end, 10);
            if (*end || errno || i < 0 || (size_t)i >= json_array_size(cur)) goto fail_seg_now;
            char *np = hx_path_index(cp, (size_t)i);
            free(cp);
            cp = np;
            cur = json_array_get(cur, (size_t)i);
        } else {
        fail_seg_now:
            if (fail_parent) *fail_parent = json_is_object(cur) ? cur : NULL;
            if (fail_seg) snprintf(fail_seg, seg_n, "%.*s", (int)strcspn(p, ".["), p);
            free(cp);
            return NULL;
        }
    }
    if (canon) *canon = cp;
    else free(cp);
    return cur;
}

json_t *hx_recipe_get(const hx_recipe *r, const char *path)
{
    return path_get(r->doc, path, NULL, NULL, NULL, 0);
}

json_t *hx_recipe_get_canon(const hx_recipe *r, const char *path, char **canon)
{
    return path_get(r->doc, path, canon, NULL, NULL, 0);
}

const char *hx_recipe_where(const hx_recipe *r, const char *path)
{
    static _Thread_local char buf[1024];
    char *p = xstrdup(path ? path : "");
    for (;;) {
        json_t *w = r->pos ? json_object_get(r->pos, p) : NULL;
        if (w) {
            snprintf(buf, sizeof buf, "%s", json_string_value(w));
            break;
        }
        if (!*p) {
            snprintf(buf, sizeof buf, "%s:1:1", r->path ? r->path : "<recipe>");
            break;
        }
        char *dot = strrchr(p, '.'), *br = strrchr(p, '[');
        char *cut = dot > br ? dot : br;
        if (cut) *cut = 0;
        else *p = 0;
    }
    free(p);
    return buf;
}

int hx_recipe_error_at(const hx_recipe *r, const char *path, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error("%s: %s", hx_recipe_where(r, path), msg);
}

/* ---- YAML -> JSON with positions ---- */

/*
 * libyaml's event parser, not its document loader: the loader builds the whole node graph before
 * anything can be checked (a 100k-deep flow sequence took 53 s, a 2 MB one never ended), while
 * events let the depth and node limits stop a hostile document after a few hundred events.
 */

typedef struct ypos { /* one position, in the order they were recorded (later wins) */
    char *path, *where;
} ypos;

typedef struct yanchor { /* a finished anchored node: its value and positions relative to it */
    char *name;
    json_t *value;
    ypos *pos; /* path: the suffix after the anchored node's own path ("", ".a", "[0].b") */
    size_t n_pos;
    long nodes;
    int height; /* levels below the anchored node */
} yanchor;

typedef struct yconv {
    yaml_parser_t parser;
    const char *file;
    long nodes;
    int deepest; /* the deepest level reached so far */
    int col0;  /* added to columns of line 1 (values of -S arguments) */
    int quote; /* may errors quote the file's text? (not for files outside the recipe's folder) */
    ypos *pos;
    size_t n_pos, cap_pos;
    yanchor *anchors;
    size_t n_anchors;
} yconv;

static char *where_of(yconv *y, yaml_mark_t m)
{
    size_t col = m.column + 1 + (m.line == 0 ? (size_t)y->col0 : 0);
    return xstrfmt("%s:%zu:%zu", y->file, m.line + 1, col);
}

static void add_pos(yconv *y, char *path, char *where) /* takes both */
{
    if (y->n_pos == y->cap_pos) y->pos = xrealloc(y->pos, (y->cap_pos = y->cap_pos ? 2 * y->cap_pos : 64) * sizeof *y->pos);
    y->pos[y->n_pos++] = (ypos){path, where};
}

static void set_pos(yconv *y, const char *path, yaml_mark_t m) { add_pos(y, xstrdup(path), where_of(y, m)); }

static int yerr(yconv *y, yaml_mark_t m, const char *msg, const char *arg)
{
    size_t col = m.column + 1 + (m.line == 0 ? (size_t)y->col0 : 0);
    if (!y->quote) arg = NULL; /* a file outside the recipe's folder: say where, never what */
    return error("%s:%zu:%zu: %s%s%s%s", y->file, m.line + 1, col, msg, arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
}

/* The parser's own error, at the most useful mark. */
static int parse_error(yconv *y, size_t len)
{
    yaml_parser_t *p = &y->parser;
    yaml_mark_t m = p->problem_mark;
    if (p->problem_mark.line == 0 && p->problem_mark.column == 0 && p->context) m = p->context_mark;
    if (y->col0 > 0 && m.line > 0) { /* a -S value is one line: point just past its end */
        m.line = 0;
        m.column = len;
    }
    return error("%s:%zu:%zu: YAML: %s%s%s", y->file, m.line + 1, m.column + 1 + (m.line == 0 ? (size_t)y->col0 : 0),
                 p->problem ? p->problem : "syntax error", p->context ? " " : "", p->context ? p->context : "");
}

static int all_match(const char *s, const char *set) { return *s && strspn(s, set) == strlen(s); }

/* YAML 1.2 core schema for plain scalars: null, bool, int, float; anything else is a string. */
static json_t *plain_scalar(yconv *y, const char *s, yaml_mark_t m)
{
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return json_false();
    const char *d = s + (*s == '-' || *s == '+');
    if (all_match(d, "0123456789")) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno != ERANGE) return json_integer(v);
        (void)yerr(y, m, "integer out of range:", s);
        return NULL;
    }
    if ((d[0] == '0' && d[1] == 'x' && all_match(d + 2, "0123456789abcdefABCDEF")) ||
        (d[0] == '0' && d[1] == 'o' && all_match(d + 2, "01234567"))) {
        errno = 0;
        unsigned long long v = strtoull(d + 2, NULL, d[1] == 'x' ? 16 : 8);
        if (errno == ERANGE || v > (unsigned long long)LLONG_MAX) {
            (void)yerr(y, m, "integer out of range:", s);
            return NULL;
        }
        return json_integer(*s == '-' ? -(long long)v : (long long)v);
    }
    /* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = d;
    size_t a = strspn(p, "0123456789");
    p += a;
    size_t b = 0;
    if (*p == '.') {
        p++;
        b = strspn(p, "0123456789");
        p += b;
    }
    int ok = a + b > 0;
    if (ok && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '-' || *p == '+') p++;
        size_t e = strspn(p, "0123456789");
        if (!e) ok = 0;
        p += e;
    }
    if (ok && !*p) {
        double v = strtod(s, NULL);
        if (!isfinite(v)) {
            (void)yerr(y, m, "number out of range:", s);
            return NULL;
        }
        return json_real(v);
    }
    json_t *str = json_string(s);
    if (!str) yerr(y, m, "invalid UTF-8 in a string", NULL);
    return str;
}

static int next_event(yconv *y, yaml_event_t *ev, size_t len)
{
    if (!yaml_parser_parse(&y->parser, ev)) return parse_error(y, len);
    return 0;
}

static yanchor *find_anchor(yconv *y, const char *name)
{
    for (size_t i = y->n_anchors; i-- > 0;) /* a redefined anchor: the latest wins */
        if (!strcmp(y->anchors[i].name, name)) return &y->anchors[i];
    return NULL;
}

/* Remember the node just finished at PATH (its positions are y->pos[pos0..]) under NAME. */
static void keep_anchor(yconv *y, const char *name, const char *path, const json_t *v, size_t pos0, long nodes0,
                        int height)
{
    y->anchors = xrealloc(y->anchors, (y->n_anchors + 1) * sizeof *y->anchors);
    yanchor *a = &y->anchors[y->n_anchors++];
    size_t plen = strlen(path);
    a->name = xstrdup(name);
    a->value = json_deep_copy(v);
    a->n_pos = y->n_pos - pos0;
    a->pos = xmalloc((a->n_pos ? a->n_pos : 1) * sizeof *a->pos);
    a->nodes = y->nodes - nodes0;
    a->height = height;
    for (size_t i = 0; i < a->n_pos; i++) {
        const char *rest = y->pos[pos0 + i].path + plen;
        /* under the root (path ""), a child key has no leading dot: give it one */
        a->pos[i].path = plen == 0 && *rest && *rest != '[' ? xstrfmt(".%s", rest) : xstrdup(rest);
        a->pos[i].where = xstrdup(y->pos[pos0 + i].where);
    }
}

/* An alias: a copy of its anchor's value and positions at PATH, counted node for node ("billion laughs"). */
static json_t *expand_alias(yconv *y, const char *name, yaml_mark_t m, const char *path, int depth)
{
    yanchor *a = find_anchor(y, name);
    if (!a) return (void)yerr(y, m, "unknown alias (an anchor is used only after its node is complete):", name), NULL;
    if (depth + a->height > MAX_DEPTH) return (void)yerr(y, m, "nested too deeply", NULL), NULL;
    if (depth + a->height > y->deepest) y->deepest = depth + a->height;
    if ((y->nodes += a->nodes) > MAX_NODES)
        return (void)yerr(y, m, "document too large (an alias expanding too often?)", NULL), NULL;
    size_t plen = strlen(path);
    for (size_t i = 0; i < a->n_pos; i++) {
        const char *rest = a->pos[i].path;
        if (plen == 0 && *rest == '.') rest++;
        add_pos(y, xstrfmt("%s%s", path, rest), xstrdup(a->pos[i].where));
    }
    return json_deep_copy(a->value);
}

/* The node that starts with EV (consumed) through its end, at PATH. */
static json_t *parse_node(yconv *y, yaml_event_t *ev, const char *path, int depth, size_t len)
{
    yaml_mark_t m = ev->start_mark;
    if (ev->type == YAML_ALIAS_EVENT) {
        json_t *v = expand_alias(y, (const char *)ev->data.alias.anchor, m, path, depth);
        yaml_event_delete(ev);
        return v;
    }
    if (ev->type != YAML_SCALAR_EVENT && ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT) {
        yaml_event_delete(ev);
        return (void)yerr(y, m, "unsupported YAML node", NULL), NULL;
    }
    if (depth > MAX_DEPTH) {
        yaml_event_delete(ev);
        return (void)yerr(y, m, "nested too deeply", NULL), NULL;
    }
    if (++y->nodes > MAX_NODES) {
        yaml_event_delete(ev);
        return (void)yerr(y, m, "document too large (an alias expanding too often?)", NULL), NULL;
    }
    size_t pos0 = y->n_pos;
    long nodes0 = y->nodes - 1;
    int deepest0 = y->deepest;
    y->deepest = depth;
    set_pos(y, path, m);
    const yaml_char_t *anchor = ev->type == YAML_SCALAR_EVENT          ? ev->data.scalar.anchor
                                : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                                        : ev->data.mapping_start.anchor;
    char *aname = anchor ? xstrdup((const char *)anchor) : NULL;
    json_t *v = NULL;
    yaml_event_t e;
    if (ev->type == YAML_SCALAR_EVENT) {
        const char *s = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        if (strlen(s) != n) yerr(y, m, "NUL character in a string", NULL);
        /* Quoted scalars are strings; tags (`!!str 1`) are not used. */
        else if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
            if (!(v = json_stringn(s, n))) yerr(y, m, "invalid UTF-8 in a string", NULL);
        } else
            v = plain_scalar(y, s, m);
        yaml_event_delete(ev);
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        yaml_event_delete(ev);
        v = json_array();
        for (size_t i = 0;; i++) {
            if (next_event(y, &e, len) < 0) goto fail;
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            char *cp = hx_path_index(path, i);
            json_t *item = parse_node(y, &e, cp, depth + 1, len);
            free(cp);
            if (!item) goto fail;
            json_array_append_new(v, item);
        }
    } else {
        yaml_event_delete(ev);
        v = json_object();
        for (;;) {
            if (next_event(y, &e, len) < 0) goto fail;
            if (e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            yaml_mark_t km = e.start_mark;
            char *ks = NULL;
            if (e.type == YAML_SCALAR_EVENT && strlen((const char *)e.data.scalar.value) == e.data.scalar.length)
                ks = xstrdup((const char *)e.data.scalar.value);
            else if (e.type == YAML_ALIAS_EVENT) {
                yanchor *a = find_anchor(y, (const char *)e.data.alias.anchor);
                if (a && json_is_string(a->value)) ks = xstrdup(json_string_value(a->value));
            }
            int scalar = e.type == YAML_SCALAR_EVENT || e.type == YAML_ALIAS_EVENT;
            if (e.type == YAML_SCALAR_EVENT && e.data.scalar.anchor && ks) { /* `&k key: v` */
                json_t *kv = json_string(ks);
                if (kv) keep_anchor(y, (const char *)e.data.scalar.anchor, "", kv, y->n_pos, y->nodes - 1, 0);
                json_decref(kv);
            }
            yaml_event_delete(&e);
            if (!scalar || !ks || !*ks) {
                free(ks);
                if (!scalar) yerr(y, km, "a key must be a plain string", NULL);
                else yerr(y, km, "a key must be a non-empty string without NUL", NULL);
                goto fail;
            }
            if (json_object_get(v, ks)) {
                yerr(y, km, "duplicate key", ks);
                free(ks);
                goto fail;
            }
            char *cp = hx_path_key(path, ks);
            json_t *item = NULL;
            if (next_event(y, &e, len) == 0) item = parse_node(y, &e, cp, depth + 1, len);
            /* The key's own position is the better place to point at for "unknown key" errors. */
            if (item) set_pos(y, cp, km);
            free(cp);
            if (!item) {
                free(ks);
                goto fail;
            }
            int bad = json_object_set_new(v, ks, item) < 0;
            if (bad) yerr(y, km, "invalid key", ks);
            free(ks);
            if (bad) goto fail;
        }
    }
    if (v && aname) keep_anchor(y, aname, path, v, pos0, nodes0, y->deepest - depth);
    if (deepest0 > y->deepest) y->deepest = deepest0;
    free(aname);
    return v;
fail:
    free(aname);
    json_decref(v);
    return NULL;
}

static void yconv_release(yconv *y)
{
    for (size_t i = 0; i < y->n_pos; i++) free(y->pos[i].path), free(y->pos[i].where);
    for (size_t i = 0; i < y->n_anchors; i++) {
        yanchor *a = &y->anchors[i];
        for (size_t j = 0; j < a->n_pos; j++) free(a->pos[j].path), free(a->pos[j].where);
        free(a->pos);
        free(a->name);
        json_decref(a->value);
    }
    free(y->pos);
    free(y->anchors);
    yaml_parser_delete(&y->parser);
}

/*
 * Parse TEXT (one YAML document; an empty stream is null) into a JSON value; positions go into POS
 * under paths starting at PREFIX. QUOTE: whether errors may quote the text.
 */
static json_t *yaml_to_json(const char *file, const char *text, size_t len, json_t *pos, const char *prefix, int col0,
                            int quote)
{
    yconv y = {.file = file, .col0 = col0, .quote = quote};
    if (!yaml_parser_initialize(&y.parser)) return (void)error("%s: cannot initialise the YAML parser", file), NULL;
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    json_t *v = NULL;
    yaml_event_t e;
    int docs = 0;
    for (;;) {
        if (next_event(&y, &e, len) < 0) goto fail;
        yaml_event_type_t t = e.type;
        yaml_mark_t m = e.start_mark;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT && docs++) {
            yaml_event_delete(&e);
            yerr(&y, m, "a second YAML document: a recipe is one document (remove the '---' or '...' separator "
                 "and what follows, or split it into files joined by include:)", NULL);
            goto fail;
        }
        if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT ||
            t == YAML_ALIAS_EVENT) {
            if (!(v = parse_node(&y, &e, prefix, 0, len))) goto fail;
        } else {
            yaml_event_delete(&e);
        }
    }
    if (!v) v = json_null();
    for (size_t i = 0; i < y.n_pos; i++) json_object_set_new(pos, y.pos[i].path, json_string(y.pos[i].where));
    yconv_release(&y);
    return v;
fail:
    json_decref(v);
    yconv_release(&y);
    return NULL;
}

/* ---- includes and deep merge ---- */

static void pos_drop(json_t *pos, const char *prefix)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(pos, tmp, k, v) if (path_within(k, prefix)) json_object_del(pos, k);
}

static void pos_copy(json_t *dst, const json_t *src, const char *prefix)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) if (path_within(k, prefix)) json_object_set(dst, k, v);
}

/* Deep merge SRC into DST (maps merge, later wins, lists and scalars replace), positions too. */
static void merge(json_t *dst, json_t *dpos, const json_t *src, const json_t *spos, const char *prefix)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) {
        char *p = hx_path_key(prefix, k);
        json_t *d = json_object_get(dst, k);
        if (d && json_is_object(d) && json_is_object(v)) {
            json_t *w = json_object_get(spos, p);
            if (w) json_object_set(dpos, p, w);
            merge(d, dpos, v, spos, p);
        } else {
            json_object_set_new(dst, k, json_deep_copy(v));
            pos_drop(dpos, p);
            pos_copy(dpos, spos, p);
        }
        free(p);
    }
}

typedef struct loader {
    hx_recipe *r;
    const char *stack[MAX_INCLUDES + 1]; /* real paths of the files being loaded */
    int depth;
    int loads;  /* files loaded so far (MAX_LOADS) */
    char *tree; /* the real path of the top recipe's folder: errors quote only files under it */
} loader;

/* Is the file at real path REAL under L's recipe folder? Errors about other files never quote them. */
static int in_tree(const loader *L, const char *real)
{
    size_t n = L->tree ? strlen(L->tree) : 0;
    if (!n) return 0;
    if (!strcmp(L->tree, "/")) return 1;
    return !strncmp(real, L->tree, n) && (real[n] == '/' || real[n] == 0);
}

static void loader_init(loader *L, hx_recipe *r, const char *dir)
{
    memset(L, 0, sizeof *L);
    L->r = r;
    L->tree = realpath(dir, NULL);
}

static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? xstrfmt("%.*s", (int)(s - path == 0 ? 1 : s - path), path) : xstrdup(".");
}

static json_t *load_text(loader *L, const char *file, const char *text, size_t len, const char *dir, json_t *pos_out,
                         int quote);

static json_t *load_file(loader *L, const char *file, const char *from, json_t *pos_out)
{
    char *text;
    size_t len;
    /* A budget on loads, not only on depth: 5 levels each including a file 10 times load 10^5 files. */
    if (++L->loads > MAX_LOADS) {
        error("%s: more than %d recipe files loaded in all (the same files included many times over?)",
              from ? from : file, MAX_LOADS);
        return NULL;
    }
    /* Only regular files within the recipe cap: `include: /dev/zero` must not eat the machine. */
    if (hx_read_input(file, HX_IN_RECIPE, &text, &len) < 0) return from ? (void)error_prefix("%s: include", from), NULL : NULL;
    char *real = realpath(file, NULL);
    if (!real) real = xstrdup(file);
    for (int i = 0; i < L->depth; i++)
        if (!strcmp(L->stack[i], real)) {
            error("%s: include cycle: '%s' includes itself (through %d file%s)", from ? from : file, file,
                  L->depth - i, L->depth - i == 1 ? "" : "s");
            free(real);
            free(text);
            return NULL;
        }
    if (L->depth >= MAX_INCLUDES) {
        error("%s: includes nested deeper than %d", from ? from : file, MAX_INCLUDES);
        free(real);
        free(text);
        return NULL;
    }
    char hex[65];
    hx_sha256_hex(text, len, hex);
    json_t *f = json_object();
    json_object_set_new(f, "path", json_string(real));
    json_object_set_new(f, "sha256", json_string(hex));
    json_array_append_new(L->r->files, f);
    L->stack[L->depth++] = real;
    char *dir = dir_of(file);
    json_t *v = load_text(L, file, text, len, dir, pos_out, in_tree(L, real));
    L->depth--;
    free(dir);
    free(real);
    free(text);
    return v;
}

static json_t *load_text(loader *L, const char *file, const char *text, size_t len, const char *dir, json_t *pos_out,
                         int quote)
{
    json_t *pos = json_object();
    json_t *doc = yaml_to_json(file, text, len, pos, "", 0, quote);
    if (!doc) goto fail;
    if (json_is_null(doc)) {
        error("%s:1:1: empty recipe (expected a map starting with 'hx: 1')", file);
        goto fail;
    }
    if (!json_is_object(doc)) {
        error("%s: a recipe is a map of keys (hx, stages, ...), not a %s", json_string_value(json_object_get(pos, "")),
              json_is_array(doc) ? "list" : "scalar");
        goto fail;
    }
    if (!quote) { /* check_top would name an unknown key: here it is only pointed at */
        const char *k;
        json_t *kv;
        json_object_foreach(doc, k, kv) {
            size_t i = 0, n = sizeof top_keys / sizeof *top_keys;
            while (i < n && strcmp(top_keys[i], k)) i++;
            if (i == n) {
                error("%s: unknown top-level key (not shown: the file is outside the recipe's folder)",
                      json_string_value(json_object_get(pos, k)));
                goto fail;
            }
        }
    }
    json_t *inc = json_object_get(doc, "include");
    json_t *merged = json_object();
    if (inc) {
        json_t *list = json_is_string(inc) ? json_pack("[O]", inc) : json_incref(inc);
        if (!json_is_array(list)) {
            json_decref(list);
            json_decref(merged);
            error("%s: include: expected a file name or a list of file names",
                  json_string_value(json_object_get(pos, "include")));
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(list); i++) {
            char *ip = json_is_string(inc) ? xstrdup("include") : hx_path_index("include", i);
            json_t *w = json_object_get(pos, ip);
            const char *where = w ? json_string_value(w) : file;
            json_t *name = json_array_get(list, i);
            if (!json_is_string(name) || !json_string_length(name)) {
                error("%s: include: expected a file name", where);
                free(ip);
                json_decref(list);
                json_decref(merged);
                goto fail;
            }
            char *ipath = hx_path_join(dir, json_string_value(name));
            json_t *ipos = json_object();
            json_t *idoc = load_file(L, ipath, where, ipos);
            free(ipath);
            free(ip);
            if (!idoc && !quote) /* the message would show the name written in a file outside the recipe's folder */
                error("%s: include: cannot load the file named here (not shown: outside the recipe's folder)", where);
            if (!idoc) {
                json_decref(ipos);
                json_decref(list);
                json_decref(merged);
                goto fail;
            }
            merge(merged, pos_out, idoc, ipos, "");
            json_decref(idoc);
            json_decref(ipos);
        }
        json_decref(list);
        json_object_del(doc, "include");
        pos_drop(pos, "include");
    }
    merge(merged, pos_out, doc, pos, "");
    json_decref(doc);
    json_decref(pos);
    return merged;
fail:
    json_decref(doc);
    json_decref(pos);
    return NULL;
}

/* ---- -S overrides ---- */

static int apply_set(hx_recipe *r, const char *arg)
{
    json_t *utf8 = json_string(arg); /* jansson refuses (and frees values under) keys that are not UTF-8 */
    if (!utf8) return error("-S: the argument is not valid UTF-8");
    json_decref(utf8);
    int del = arg[0] == '~';
    const char *eq = del ? NULL : strchr(arg, '=');
    if (!del && !eq) return error("-S %s: expected key=value, or ~key to delete a key", arg);
    char *key = del ? xstrdup(arg + 1) : xstrfmt("%.*s", (int)(eq - arg), arg);
    char *where = xstrfmt("<-S %s>", arg);
    int rc = -1;
    json_t *cur = r->doc;
    char *cp = xstrdup("");
    const char *p = key;
    if (!*key) {
        error("%s:1:1: empty key", where);
        goto out;
    }
    while (*p) {
        size_t k = strcspn(p, ".");
        char *seg = xstrfmt("%.*s", (int)k, p);
        const char *next = p + k + (p[k] == '.');
        int last = p[k] == 0;
        if (!*seg || (p[k] == '.' && !*next)) {
            error("%s:1:%d: empty field name in '%s'", where, (int)(p - key) + 1 + del, key);
            free(seg);
            goto out;
        }
        if (!json_is_object(cur)) {
            error("%s:1:%d: '%s' is not a map, cannot set '%s' in it", where, (int)(p - key) + 1 + del, cp, seg);
            free(seg);
            goto out;
        }
        char *np = hx_path_key(cp, seg);
        free(cp);
        cp = np;
        if (last) {
            if (del) {
                if (!json_object_get(cur, seg)) {
                    error("%s:1:2: nothing to delete: no field '%s'%s", where, cp, hx_suggest_hint(seg, cur));
                    free(seg);
                    goto out;
                }
                json_object_del(cur, seg);
                pos_drop(r->pos, cp);
            } else {
                json_t *vpos = json_object();
                const char *val = eq + 1;
                json_t *v = yaml_to_json(where, val, strlen(val), vpos, cp, (int)(val - arg), 1);
                if (!v) {
                    json_decref(vpos);
                    free(seg);
                    goto out;
                }
                json_object_set_new(cur, seg, v);
                pos_drop(r->pos, cp);
                pos_copy(r->pos, vpos, cp);
                json_decref(vpos);
            }
        } else {
            json_t *n = json_object_get(cur, seg);
            if (!n) {
                if (del) {
                    error("%s:1:2: nothing to delete: no field '%s'%s", where, cp, hx_suggest_hint(seg, cur));
                    free(seg);
                    goto out;
                }
                n = json_object();
                json_object_set_new(cur, seg, n);
                json_object_set_new(r->pos, cp, json_sprintf("%s:1:1", where));
            }
            cur = n;
        }
        free(seg);
        p = next;
    }
    rc = 0;
out:
    free(cp);
    free(key);
    free(where);
    return rc;
}

/* ---- top-level checks (stage schemas are checked by the planner) ---- */

static int is_name(const char *s)
{
    if (!*s || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == strlen(s);
}

static int check_map(const hx_recipe *r, const char *path, const json_t *v)
{
    if (!json_is_object(v)) return hx_recipe_error_at(r, path, "%s: expected a map", path);
    return 0;
}

static int check_top(hx_recipe *r)
{
    const json_t *d = r->doc;
    const char *k;
    json_t *v;
    size_t ntop = sizeof top_keys / sizeof *top_keys;
    json_object_foreach((json_t *)d, k, v) {
        size_t i = 0;
        while (i < ntop && strcmp(top_keys[i], k)) i++;
        if (i == ntop)
            return hx_recipe_error_at(r, k, "unknown top-level key '%s'%s; allowed: hx, name, description, include, "
                                      "params, axes, zip, scales, stages, report", k, suggest_hint_list(k, top_keys, ntop));
    }
    json_t *hx = json_object_get(d, "hx");
    if (!hx) return hx_recipe_error_at(r, "", "missing 'hx: 1' (the recipe language version)");
    if (!json_is_integer(hx) || json_integer_value(hx) != 1)
        return hx_recipe_error_at(r, "hx", "this hx reads recipe language version 1; write 'hx: 1'");
    if ((v = json_object_get(d, "name")) && !json_is_string(v)) return hx_recipe_error_at(r, "name", "name: expected a string");
    if ((v = json_object_get(d, "description")) && !json_is_string(v))
        return hx_recipe_error_at(r, "description", "description: expected a string");
    if ((v = json_object_get(d, "params")) && check_map(r, "params", v) < 0) return -1;
    if ((v = json_object_get(d, "scales")) && check_map(r, "scales", v) < 0) return -1;
    json_t *axes = json_object_get(d, "axes");
    if (axes) {
        if (check_map(r, "axes", axes) < 0) return -1;
        json_object_foreach(axes, k, v) {
            char *p = hx_path_key("axes", k);
            int bad = !is_name(k) ? hx_recipe_error_at(r, p, "axis name '%s': use letters, digits, '_' and '-'", k)
                      : !json_is_array(v) || !json_array_size(v)
                          ? hx_recipe_error_at(r, p, "axis '%s': expected a non-empty list of values", k)
                          : 0;
            free(p);
            if (bad) return -1;
        }
    }
    json_t *zip = json_object_get(d, "zip");
    if (zip) {
        if (!json_is_array(zip)) return hx_recipe_error_at(r, "zip", "zip: expected a list of lists of axis names");
        json_t *seen = json_object();
        for (size_t i = 0; i < json_array_size(zip); i++) {
            json_t *g = json_array_get(zip, i);
            char *gp = hx_path_index("zip", i);
            if (!json_is_array(g) || json_array_size(g) < 2) {
                hx_recipe_error_at(r, gp, "zip: each group is a list of at least two axis names");
                free(gp);
                json_decref(seen);
                return -1;
            }
            size_t len0 = 0;
            for (size_t j = 0; j < json_array_size(g); j++) {
                json_t *a = json_array_get(g, j);
                char *ap = hx_path_index(gp, j);
                json_t *ax = json_is_string(a) && axes ? json_object_get(axes, json_string_value(a)) : NULL;
                int bad = 0;
                if (!json_is_string(a)) bad = hx_recipe_error_at(r, ap, "zip: expected an axis name");
                else if (!ax)
                    bad = hx_recipe_error_at(r, ap, "zip: no axis '%s'%s", json_string_value(a),
                                             hx_suggest_hint(json_string_value(a), axes));
                else if (json_object_get(seen, json_string_value(a)))
                    bad = hx_recipe_error_at(r, ap, "zip: axis '%s' is in two groups", json_string_value(a));
                else if (j > 0 && json_array_size(ax) != len0)
                    bad = hx_recipe_error_at(r, ap, "zip: axis '%s' has %zu values but '%s' has %zu; zipped axes move "
                                             "together and need the same length", json_string_value(a),
                                             json_array_size(ax), json_string_value(json_array_get(g, 0)), len0);
                if (!bad) {
                    json_object_set_new(seen, json_string_value(a), json_true());
                    if (j == 0) len0 = json_array_size(ax);
                }
                free(ap);
                if (bad) {
                    free(gp);
                    json_decref(seen);
                    return -1;
                }
            }
            free(gp);
        }
        json_decref(seen);
    }
    json_t *stages = json_object_get(d, "stages");
    if (!stages) return hx_recipe_error_at(r, "", "no 'stages:' map: a recipe needs at least one stage");
    if (check_map(r, "stages", stages) < 0) return -1;
    if (!json_object_size(stages)) return hx_recipe_error_at(r, "stages", "stages: the map is empty");
    json_object_foreach(stages, k, v) {
        char *p = hx_path_key("stages", k);
        int bad = 0;
        if (!is_name(k)) bad = hx_recipe_error_at(r, p, "stage name '%s': use letters, digits, '_' and '-'", k);
        else if (!json_is_object(v)) bad = hx_recipe_error_at(r, p, "stage '%s': expected a map with kind, inputs, with", k);
        else {
            const char *sk;
            json_t *sv;
            size_t n = sizeof stage_keys / sizeof *stage_keys;
            json_object_foreach(v, sk, sv) {
                size_t i = 0;
                while (i < n && strcmp(stage_keys[i], sk)) i++;
                if (i == n) {
                    char *kp = hx_path_key(p, sk);
                    bad = hx_recipe_error_at(r, kp, "stage '%s': unknown key '%s'%s; allowed: kind, inputs, with, "
                                             "description, resources", k, sk, suggest_hint_list(sk, stage_keys, n));
                    free(kp);
                    break;
                }
            }
            json_t *kind = json_object_get(v, "kind");
            char *kp = hx_path_key(p, "kind");
            if (!bad && !kind) bad = hx_recipe_error_at(r, p, "stage '%s': missing 'kind'", k);
            else if (!bad && !json_is_string(kind)) bad = hx_recipe_error_at(r, kp, "stage '%s': kind: expected a name", k);
            free(kp);
            json_t *in = json_object_get(v, "inputs");
            kp = hx_path_key(p, "inputs");
            if (!bad && in && !json_is_object(in))
                bad = hx_recipe_error_at(r, kp, "stage '%s': inputs: expected a map {role: stage}", k);
            free(kp);
            json_t *with = json_object_get(v, "with");
            kp = hx_path_key(p, "with");
            if (!bad && with && !json_is_object(with) && !json_is_null(with))
                bad = hx_recipe_error_at(r, kp, "stage '%s': with: expected a map of parameters", k);
            free(kp);
            json_t *res = json_object_get(v, "resources");
            kp = hx_path_key(p, "resources");
            if (!bad && res && !json_is_object(res))
                bad = hx_recipe_error_at(r, kp, "stage '%s': resources: expected a map {cpus, gpus, mem, time}", k);
            size_t nr = sizeof resource_keys / sizeof *resource_keys;
            json_object_foreach(bad ? NULL : res, sk, sv) {
                size_t i = 0;
                while (i < nr && strcmp(resource_keys[i], sk)) i++;
                char *rp = hx_path_key(kp, sk);
                if (i == nr)
                    bad = hx_recipe_error_at(r, rp, "stage '%s': resources: unknown key '%s'%s; allowed: cpus, gpus, mem, "
                                             "time", k, sk, suggest_hint_list(sk, resource_keys, nr));
                else if (!json_is_string(sv) && !json_is_integer(sv))
                    bad = hx_recipe_error_at(r, rp, "stage '%s': resources.%s: expected a number or a string", k, sk);
                free(rp);
                if (bad) break;
            }
            free(kp);
        }
        free(p);
        if (bad) return -1;
    }
    json_t *rep = json_object_get(d, "report");
    if (rep) {
        if (check_map(r, "report", rep) < 0) return -1;
        json_t *t = json_object_get(rep, "tables");
        if (t) {
            if (!json_is_array(t)) return hx_recipe_error_at(r, "report.tables", "report.tables: expected a list of maps");
            for (size_t i = 0; i < json_array_size(t); i++)
                if (!json_is_object(json_array_get(t, i))) {
                    char *tp = hx_path_index("report.tables", i);
                    hx_recipe_error_at(r, tp, "report.tables: each table is a map (name, rows, stage, columns)");
                    free(tp);
                    return -1;
                }
        }
    }
    return 0;
}

/* ---- load ---- */

static int finish(hx_recipe *r, json_t *doc, const char *const *sets, int n_sets)
{
    r->doc = doc;
    for (int i = 0; i < n_sets; i++) {
        json_array_append_new(r->overrides, json_string(sets[i]));
        if (apply_set(r, sets[i]) < 0) return -1;
    }
    if (check_top(r) < 0) return -1;
    json_t *name = json_object_get(r->doc, "name");
    if (json_is_string(name)) {
        r->name = xstrdup(json_string_value(name));
    } else {
        const char *b = strrchr(r->path, '/');
        b = b ? b + 1 : r->path;
        size_t n = strlen(b);
        if (n > 5 && !strcmp(b + n - 5, ".yaml")) n -= 5;
        else if (n > 4 && !strcmp(b + n - 4, ".yml")) n -= 4;
        r->name = xstrfmt("%.*s", (int)n, b);
    }
    return 0;
}

static void init(hx_recipe *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = xstrdup(path);
    r->pos = json_object();
    r->files = json_array();
    r->overrides = json_array();
}

int hx_recipe_load(hx_recipe *r, const char *path, const char *const *sets, int n_sets)
{
    init(r, path);
    loader L;
    char *dir = dir_of(path);
    loader_init(&L, r, dir);
    free(dir);
    json_t *doc = load_file(&L, path, NULL, r->pos);
    free(L.tree);
    if (!doc || finish(r, doc, sets, n_sets) < 0) {
        hx_recipe_release(r);
        return -1;
    }
    return 0;
}

int hx_recipe_load_mem(hx_recipe *r, const char *name, const char *text, size_t len, const char *base_dir,
                       const char *const *sets, int n_sets)
{
    init(r, name);
    loader L;
    loader_init(&L, r, base_dir ? base_dir : ".");
    char hex[65];
    hx_sha256_hex(text, len, hex);
    json_array_append_new(r->files, json_pack("{s:s,s:s}", "path", name, "sha256", hex));
    json_t *doc = load_text(&L, name, text, len, base_dir ? base_dir : ".", r->pos, 1);
    free(L.tree);
    if (!doc || finish(r, doc, sets, n_sets) < 0) {
        hx_recipe_release(r);
        return -1;
    }
    return 0;
}

void hx_recipe_release(hx_recipe *r)
{
    free(r->path);
    free(r->name);
    json_decref(r->doc);
    json_decref(r->pos);
    json_decref(r->files);
    json_decref(r->overrides);
    memset(r, 0, sizeof *r);
}
