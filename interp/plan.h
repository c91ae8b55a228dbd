/* plan.h - from a recipe to stage instances: axes expanded, schemas checked, keys chained (Merkle). */
#ifndef HX_PLAN_H
#define HX_PLAN_H

#include <jansson.h>
#include "interp/recipe.h"
#include "stages/stage.h"

/* One stage instance: a stage specialised on the axes it references, directly or through inputs. */
typedef struct hx_instance {
    int stage;                 /* index of the stage in the recipe's declaration order */
    const char *stage_name;    /* borrowed from the recipe */
    const hx_stage_kind *kind;
    json_t *axes;              /* {axis: value} this instance is specialised on ({} when shared) */
    json_t *with;              /* resolved, validated, defaults filled, numbers normalised */
    json_t *inputs;            /* {role: key} */
    int n_inputs;
    const char **roles;        /* role names (borrowed from the recipe) */
    int *input_inst;           /* plan index of the instance bound to each role */
    json_t *external;          /* {field: [{path, sha256}]}: external inputs (files outside the store) read by the
                                * stage, hashed into the key; NULL when none */
    json_t *run_with;          /* `with` as the stage sees it (external paths resolved), or NULL: `with` */
    char key[65];
} hx_instance;

typedef struct hx_plan {
    const hx_recipe *recipe;   /* borrowed */
    int n;                     /* instances, in topological order: inputs first */
    hx_instance *inst;
    int n_stages;
    const char **stage_names;  /* declaration order (borrowed) */
    int n_arms;                /* arms of the full product of the axes */
    json_t *axes;              /* {axis: [values, resolved]} */
    char *binary_digest;       /* --strict: the binary's digest mixed into every key (recorded in manifests) */
} hx_plan;

/*
 * Expand, validate and key every stage instance of R. binary_digest (or NULL) is mixed into every
 * key (`--strict`). Returns 0, or -1 with error("file:line:col: ..."); p is released on failure.
 */
int hx_plan_build(hx_plan *p, const hx_recipe *r, const char *binary_digest);
/* The same with the store's cache of external-input digests (DIGEST_CACHE, a directory; NULL: none). */
int hx_plan_build_cached(hx_plan *p, const hx_recipe *r, const char *binary_digest, const char *digest_cache);
void hx_plan_release(hx_plan *p);

/* "masking=completion_only,lr=0.001" (or "" for a shared instance); xmalloc'd. */
char *hx_plan_axes_label(const json_t *axes);
/* Instances of stage NAME (indices into p->inst, -1 terminated, xmalloc'd), NULL if no such stage. */
int *hx_plan_stage_instances(const hx_plan *p, const char *name);

#endif
