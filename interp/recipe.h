/* recipe.h - the recipe language v1: YAML with include, params, axes, zip, ${...} and -S overrides. */
#ifndef HX_RECIPE_H
#define HX_RECIPE_H

#include <stddef.h>
#include <jansson.h>
#include "base/base.h"

/*
 * A loaded recipe: every include deep-merged (maps merge, later wins, lists replace), the -S
 * overrides applied, the top level validated. `${...}` is left in place: it is resolved per arm by
 * hx_recipe_resolve when the plan is built. Every value keeps where it was written, so any later
 * error names file:line:column.
 */
typedef struct hx_recipe {
    char *path;        /* the top file as given (or the name given to _load_mem) */
    char *name;        /* `name:` or the file's base name without .yaml */
    json_t *doc;       /* the merged document (no `include` key) */
    json_t *pos;       /* field path ("stages.teacher.with.steps", "axes.m[1]") -> "file:line:col" */
    json_t *files;     /* [{path, sha256}] of every file read, top file first */
    json_t *overrides; /* the -S arguments as given */
} hx_recipe;

/* Load PATH (includes resolve relative to the including file) and apply SETS ("k=v" overrides a field that
 * exists, "+k=v" adds one, "~k" deletes one: recipe_set.c).
 * Returns 0, or -1 with error("file:line:col: ..."); r is released on failure. */
int hx_recipe_load(hx_recipe *r, const char *path, const char *const *sets, int n_sets);
/* The same from memory (tests, fuzzing); includes resolve relative to base_dir (NULL: cwd). */
int hx_recipe_load_mem(hx_recipe *r, const char *name, const char *text, size_t len, const char *base_dir,
                       const char *const *sets, int n_sets);
void hx_recipe_release(hx_recipe *r);

/* Where the value at PATH (or its nearest enclosing value) was written: "file:line:col". */
const char *hx_recipe_where(const hx_recipe *r, const char *path);
/* error("<where PATH>: <message>"); returns -1. */
int hx_recipe_error_at(const hx_recipe *r, const char *path, const char *fmt, ...)
    HX_PRINTF(3, 4);
/* The raw value at PATH ("a.b[0]" or "a.b.0"), borrowed; NULL if absent. */
json_t *hx_recipe_get(const hx_recipe *r, const char *path);
/* The same, with the canonical spelling of PATH ("a.b[2]") in *canon (xmalloc'd) when found. */
json_t *hx_recipe_get_canon(const hx_recipe *r, const char *path, char **canon);

/*
 * Resolve every `${...}` in V (written at PATH): params.*, scales.*, any field of the document, and
 * axes.* taken from ARM ({axis: value}; NULL where no arm applies). Inner `${}` first; a value that is
 * exactly one `${...}` keeps its type, inside a longer string it is stringified; `$${` is a literal
 * `${`. Axis names used are added to USED (an object, may be NULL). Returns a new reference, or NULL
 * with error("file:line:col: ...") (unknown field, cycle, too deep).
 */
json_t *hx_recipe_resolve(const hx_recipe *r, const json_t *v, const char *path, const json_t *arm, json_t *used);

/* The closest of CANDS to WORD, if close enough to be a likely typo; else NULL. */
const char *hx_suggest(const char *word, const char *const *cands, size_t n);
/* " (did you mean 'x'?)" for the keys of OBJ (or the strings in an array), or "" - static per thread. */
const char *hx_suggest_hint(const char *word, const json_t *keys_or_list);
/* The same for the keys of OBJ, and when none is close, " (it has: a, b, c)" for a map of at most 16 keys. */
const char *hx_suggest_hint_or_keys(const char *word, const json_t *obj);

/* Child path helpers: "a" + "b" -> "a.b"; "a" + 2 -> "a[2]" (xmalloc'd). */
char *hx_path_key(const char *parent, const char *key);
char *hx_path_index(const char *parent, size_t i);

#endif
