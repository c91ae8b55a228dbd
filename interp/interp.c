/* interp.c - `${...}` interpolation in recipes: params, axes of the current arm, scales, any field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/canon.h"
#include "interp/recipe.h"

#define MAX_STACK 64          /* strings being resolved inside each other */
#define MAX_LOOKUPS 200000    /* per hx_recipe_resolve call: stops exponential fan-out */
#define MAX_STRING (1 << 20)  /* bytes of one interpolated string */

typedef struct rctx {
    const hx_recipe *r;
    const json_t *arm;  /* {axis: value} or NULL */
    json_t *used;       /* axis names used, or NULL */
    const char *stack[MAX_STACK];
    int depth;
    long lookups;
} rctx;

static json_t *resolve_node(rctx *c, const json_t *v, const char *path);

/* Index of the '}' closing the "${" at s[i] (nested "${" counted), or -1. */
static long match_close(const char *s, size_t len, size_t i)
{
    int depth = 0;
    for (size_t j = i; j < len; j++) {
        if (s[j] == '$' && j + 1 < len && s[j + 1] == '{') {
            depth++;
            j++;
        } else if (s[j] == '}') {
            if (--depth == 0) return (long)j;
        }
    }
    return -1;
}

static int stringify(hx_sbuf *b, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: hx_sb_add(b, json_string_value(v), json_string_length(v)); return 0;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        hx_sb_add(b, num, strlen(num));
        return 0;
    case JSON_REAL:
        hx_canon_number(json_real_value(v), num, sizeof num);
        hx_sb_add(b, num, strlen(num));
        return 0;
    case JSON_TRUE: hx_sb_add(b, "true", 4); return 0;
    case JSON_FALSE: hx_sb_add(b, "false", 5); return 0;
    case JSON_NULL: hx_sb_add(b, "null", 4); return 0;
    default: {
        char *t = hx_canon_dump(v);
        if (!t) return -1;
        hx_sb_add(b, t, strlen(t));
        free(t);
        return 0;
    }
    }
}

/* The value an expression names (already free of inner `${}`), resolved. AT is the string's path. */
static json_t *lookup(rctx *c, const char *expr_in, const char *at)
{
    const hx_recipe *r = c->r;
    if (++c->lookups > MAX_LOOKUPS)
        return (void)hx_recipe_error_at(r, at, "interpolation expands to more than %d references", MAX_LOOKUPS), NULL;
    while (*expr_in == ' ') expr_in++;
    char *expr = xstrdup(expr_in);
    for (size_t n = strlen(expr); n && expr[n - 1] == ' ';) expr[--n] = 0;
    json_t *out = NULL;
    if (!*expr) {
        hx_recipe_error_at(r, at, "empty ${}: write ${params.NAME}, ${axes.NAME} or ${path.to.field}");
    } else if (!strncmp(expr, "axes.", 5) || !strcmp(expr, "axes")) {
        const char *name = expr + (expr[4] ? 5 : 4);
        size_t n = strcspn(name, ".[");
        char *axis = xstrfmt("%.*s", (int)n, name);
        json_t *axes = json_object_get(r->doc, "axes");
        if (!*axis) {
            hx_recipe_error_at(r, at, "${%s}: name an axis, e.g. ${axes.NAME}", expr);
        } else if (!json_object_get(axes, axis)) {
            hx_recipe_error_at(r, at, "${%s}: no axis '%s'%s", expr, axis, hx_suggest_hint(axis, axes));
        } else if (!c->arm) {
            hx_recipe_error_at(r, at, "${%s}: axes have a value only inside a stage (each arm of the plan gives one)", expr);
        } else {
            json_t *v = json_object_get(c->arm, axis);
            if (!v) BUG("arm without a value for axis %s", axis);
            if (c->used) json_object_set_new(c->used, axis, json_true());
            const char *rest = name + n;
            if (*rest == '.') rest++;
            if (*rest) {
                /* A field inside a map-valued axis: ${axes.opt.lr}. */
                hx_recipe tmp = *r;
                tmp.doc = v;
                json_t *sub = hx_recipe_get(&tmp, rest);
                if (!sub) hx_recipe_error_at(r, at, "${%s}: the value of axis '%s' has no '%s'", expr, axis, rest);
                else out = json_deep_copy(sub);
            } else {
                out = json_deep_copy(v);
            }
        }
        free(axis);
    } else {
        char *canon = NULL;
        json_t *v = hx_recipe_get_canon(r, expr, &canon);
        if (!v) {
            /* The longest prefix that exists, for a precise hint. */
            char *pre = xstrdup(expr);
            json_t *parent = NULL;
            const char *missing = expr;
            for (;;) {
                char *dot = strrchr(pre, '.'), *br = strrchr(pre, '[');
                char *cut = dot > br ? dot : br;
                if (!cut) break;
                *cut = 0;
                if ((parent = hx_recipe_get(r, pre))) {
                    missing = expr + (cut - pre) + (expr[cut - pre] == '.');
                    break;
                }
            }
            char seg[256];
            snprintf(seg, sizeof seg, "%.*s", (int)strcspn(missing, ".["), missing);
            if (parent)
                hx_recipe_error_at(r, at, "${%s}: no field '%s' in '%s'%s", expr, seg, pre,
                                   json_is_object(parent) ? hx_suggest_hint_or_keys(seg, parent) : "");
            else
                hx_recipe_error_at(r, at, "${%s}: no field '%s'%s", expr, seg, hx_suggest_hint(seg, r->doc));
            free(pre);
        } else {
            /* Resolved under its canonical path, so a cycle is seen whatever spelling reached it. */
            out = resolve_node(c, v, canon);
            free(canon);
        }
    }
    free(expr);
    return out;
}

/* Expand every `${}` in s[0:len) as text into OUT. */
static int expand(rctx *c, const char *s, size_t len, const char *path, hx_sbuf *out)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] == '$' && i + 2 < len + 1 && i + 1 < len && s[i + 1] == '$' && i + 2 < len && s[i + 2] == '{') {
            hx_sb_add(out, "${", 2);
            i += 3;
        } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            long j = match_close(s, len, i);
            if (j < 0) return hx_recipe_error_at(c->r, path, "unterminated '${' in \"%.*s\"", (int)(len > 200 ? 200 : len), s);
            hx_sbuf inner = {0};
            if (expand(c, s + i + 2, (size_t)j - i - 2, path, &inner) < 0) {
                free(inner.s);
                return -1;
            }
            json_t *v = lookup(c, inner.s ? inner.s : "", path);
            free(inner.s);
            if (!v) return -1;
            int rc = stringify(out, v);
            json_decref(v);
            if (rc < 0) return -1;
            i = (size_t)j + 1;
        } else {
            size_t k = i + 1;
            while (k < len && s[k] != '$') k++;
            hx_sb_add(out, s + i, k - i);
            i = k;
        }
        if (out->len > MAX_STRING) return hx_recipe_error_at(c->r, path, "interpolated string longer than %d bytes", MAX_STRING);
    }
    return 0;
}

static json_t *resolve_string(rctx *c, const json_t *v, const char *path)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!strstr(s, "${")) return json_incref((json_t *)v);
    for (int i = 0; i < c->depth; i++)
        if (!strcmp(c->stack[i], path)) {
            hx_sbuf chain = {0};
            for (int j = i; j < c->depth; j++) {
                hx_sb_add(&chain, c->stack[j], strlen(c->stack[j]));
                hx_sb_add(&chain, " -> ", 4);
            }
            hx_sb_add(&chain, path, strlen(path));
            hx_recipe_error_at(c->r, c->stack[i], "interpolation cycle: %s", chain.s);
            free(chain.s);
            return NULL;
        }
    if (c->depth >= MAX_STACK)
        return (void)hx_recipe_error_at(c->r, path, "interpolation nested deeper than %d references", MAX_STACK), NULL;
    c->stack[c->depth++] = path;
    json_t *out = NULL;
    long j = s[0] == '$' && s[1] == '{' ? match_close(s, len, 0) : -1;
    if (j == (long)len - 1) {
        /* Exactly one ${...}: the value keeps its type. */
        hx_sbuf inner = {0};
        if (expand(c, s + 2, len - 3, path, &inner) == 0) out = lookup(c, inner.s ? inner.s : "", path);
        free(inner.s);
    } else {
        hx_sbuf b = {0};
        if (expand(c, s, len, path, &b) == 0) {
            out = json_stringn(b.s ? b.s : "", b.len);
            if (!out) hx_recipe_error_at(c->r, path, "interpolation produced invalid UTF-8");
        }
        free(b.s);
    }
    c->depth--;
    return out;
}

static json_t *resolve_node(rctx *c, const json_t *v, const char *path)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return resolve_string(c, v, path);
    case JSON_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++) {
            char *p = hx_path_index(path, i);
            json_t *x = resolve_node(c, json_array_get(v, i), p);
            free(p);
            if (!x) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, x);
        }
        return a;
    }
    case JSON_OBJECT: {
        json_t *o = json_object(), *x;
        const char *k;
        json_object_foreach((json_t *)v, k, x) {
            char *p = hx_path_key(path, k);
            json_t *y = resolve_node(c, x, p);
            free(p);
            if (!y) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, k, y);
        }
        return o;
    }
    default: return json_incref((json_t *)v);
    }
}

json_t *hx_recipe_resolve(const hx_recipe *r, const json_t *v, const char *path, const json_t *arm, json_t *used)
{
    rctx c = {.r = r, .arm = arm, .used = used};
    return resolve_node(&c, v, path ? path : "");
}
