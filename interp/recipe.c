/* recipe.c - loads recipes: includes and deep merge, did-you-mean, paths and positions, then -S and the checks. */
#include "interp/recipe_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "interp/canon.h"

#define MAX_INCLUDES 32    /* include depth */
#define MAX_LOADS 256      /* files loaded for one recipe, a file counted each time it is included */

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

const char *hx_suggest_hint_or_keys(const char *word, const json_t *obj)
{
    static _Thread_local char hint[512];
    const char *h = hx_suggest_hint(word, obj);
    if (*h || !json_is_object(obj) || !json_object_size(obj) || json_object_size(obj) > 16) return h;
    size_t n = (size_t)snprintf(hint, sizeof hint, " (it has: ");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (n < sizeof hint) n += (size_t)snprintf(hint + n, sizeof hint - n, "%s%s", n > 10 ? ", " : "", k);
    }
    if (n < sizeof hint) snprintf(hint + n, sizeof hint - n, ")");
    return hint;
}

const char *hx_suggest_hint_names(const char *word, const char *const *cands, size_t n)
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
int hx_path_within(const char *p, const char *prefix)
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

/* ---- includes and deep merge ---- */

void hx_recipe_pos_drop(json_t *pos, const char *prefix)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(pos, tmp, k, v) if (hx_path_within(k, prefix)) json_object_del(pos, k);
}

void hx_recipe_pos_copy(json_t *dst, const json_t *src, const char *prefix)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) if (hx_path_within(k, prefix)) json_object_set(dst, k, v);
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
            hx_recipe_pos_drop(dpos, p);
            hx_recipe_pos_copy(dpos, spos, p);
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
    json_t *doc = hx_yaml_to_json(file, text, len, pos, "", 0, quote);
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
            size_t i = 0, n = HX_NAMES_N(hx_recipe_top_keys);
            while (i < n && strcmp(hx_recipe_top_keys[i], k)) i++;
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
        hx_recipe_pos_drop(pos, "include");
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

/* ---- load ---- */

static int finish(hx_recipe *r, json_t *doc, const char *const *sets, int n_sets)
{
    r->doc = doc;
    for (int i = 0; i < n_sets; i++) {
        json_array_append_new(r->overrides, json_string(sets[i]));
        if (hx_recipe_apply_set(r, sets[i]) < 0) return -1;
    }
    if (hx_recipe_check_top(r) < 0) return -1;
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

