/* recipe_yaml.c - YAML to JSON with a file:line:col position for every value (libyaml events, capped). */
#include "interp/recipe_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/base.h"

#define MAX_NODES 200000   /* YAML nodes after alias expansion: stops "billion laughs" documents */
#define MAX_DEPTH 128      /* nesting of YAML collections */

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
json_t *hx_yaml_to_json(const char *file, const char *text, size_t len, json_t *pos, const char *prefix, int col0,
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
