/* plan_internal.h - what the planner's files share (plan.c, plan_instances.c). */
#ifndef HX_PLAN_INTERNAL_H
#define HX_PLAN_INTERNAL_H

#include <stdint.h>
#include <jansson.h>
#include "interp/plan.h"

#define MAX_AXES 64        /* axis sets are bit masks */
#define MAX_ARMS 100000

typedef struct stage_info {
    const char *name;
    json_t *entry;            /* the recipe's map for this stage (borrowed) */
    const hx_stage_kind *kind;
    int n_in;
    const char **roles;       /* borrowed json keys */
    int *deps;                /* stage index per role */
    uint64_t mask;            /* axes referenced directly or through inputs */
    uint64_t direct;          /* axes referenced by its own `with` */
    int *inst_of;             /* instance index per arm */
} stage_info;

typedef struct builder {
    hx_plan *p;
    const hx_recipe *r;
    int ns;
    stage_info *st;
    int n_axes;
    const char **axis_names;
    json_t **axis_vals;       /* resolved value lists */
    int *arm_idx;             /* n_arms x n_axes value indices */
    int *group;               /* zip group of each axis (an unzipped axis is a group of its own) */
    int cap;                  /* allocated instances */
    char *recipe_dir;         /* relative external paths are resolved against it */
    const char *digest_cache; /* the store's cache of external digests, or NULL */
} builder;

/* Does V hold a ${...} anywhere? */
int hx_plan_has_interp(const json_t *v);
/* V as a label into buf: a string as is, anything else as canonical JSON. */
void hx_plan_label_value(char *buf, size_t n, const json_t *v);
/* Is WORD one of the '|'-separated LIST? */
int hx_plan_list_has(const char *list, const char *word);
/* Arm M as {axis: value} (a new reference). */
json_t *hx_plan_arm_json(const builder *b, int m);
/* The instances of stage S, one per distinct projection of the arms onto its axes (plan_instances.c). */
int hx_plan_expand_stage(builder *b, int s, const char *binary_digest);
/* Refuses two arms that plan the same instances (plan_instances.c). */
int hx_plan_check_collapse(builder *b);

#endif
