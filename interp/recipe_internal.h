/* recipe_internal.h - what the recipe loader's files share (recipe.c, recipe_yaml.c, recipe_set.c, recipe_check.c). */
#ifndef HX_RECIPE_INTERNAL_H
#define HX_RECIPE_INTERNAL_H

#include <stddef.h>
#include <jansson.h>
#include "interp/recipe.h"

/* The keys the recipe language defines: at the top level, in a stage, in a stage's resources (what a stage asks
 * of a cluster scheduler, hx run --executor slurm; values checked in slurm.c). */
extern const char *const hx_recipe_top_keys[10];
extern const char *const hx_recipe_stage_keys[5];
extern const char *const hx_recipe_resource_keys[4];
#define HX_NAMES_N(a) (sizeof(a) / sizeof *(a))

/* " (did you mean 'x'?)" for the closest of CANDS, or "" - static per thread. */
const char *hx_suggest_hint_names(const char *word, const char *const *cands, size_t n);
/* Is P equal to PREFIX or inside it ("a.b" is inside "a", "a[1]" too; "ab" is not)? */
int hx_path_within(const char *p, const char *prefix);

/*
 * Parse TEXT (one YAML document; an empty stream is null) into a JSON value; positions go into POS
 * under paths starting at PREFIX. COL0 is added to columns of line 1 (values of -S arguments). QUOTE: whether
 * errors may quote the text (recipe_yaml.c).
 */
json_t *hx_yaml_to_json(const char *file, const char *text, size_t len, json_t *pos, const char *prefix, int col0,
                        int quote);

/* Positions: drop every one at or under PREFIX; copy SRC's at or under PREFIX into DST. */
void hx_recipe_pos_drop(json_t *pos, const char *prefix);
void hx_recipe_pos_copy(json_t *dst, const json_t *src, const char *prefix);

/* Apply one -S argument to r->doc and r->pos (recipe_set.c). 0, or -1 with error. */
int hx_recipe_apply_set(hx_recipe *r, const char *arg);
/* Check the merged document's top level: keys, hx: 1, shapes of axes, zip, stages, report (recipe_check.c). */
int hx_recipe_check_top(hx_recipe *r);

#endif
