/* registry.c - every stage kind linked into hx, one row each (kinds are data: stage.h). */
#include <string.h>
#include "stages/stage.h"

/* Each kind's file defines its row; add one line here per kind. */
extern const hx_stage_kind hx_kind_data;
extern const hx_stage_kind hx_kind_bench;
extern const hx_stage_kind hx_kind_pretrain;
extern const hx_stage_kind hx_kind_convert;
extern const hx_stage_kind hx_kind_tokenizer;
extern const hx_stage_kind hx_kind_eval;
extern const hx_stage_kind hx_kind_align;
extern const hx_stage_kind hx_kind_distill;
extern const hx_stage_kind hx_kind_finetune;
static const hx_stage_kind *const kinds[] = {
    &hx_kind_data,
    &hx_kind_bench,
    &hx_kind_pretrain,
    &hx_kind_convert,
    &hx_kind_tokenizer,
    &hx_kind_eval,
    &hx_kind_align,
    &hx_kind_distill,
    &hx_kind_finetune,
    NULL,
};

/* Kinds registered at start-up by test builds (hx_stage_kinds_add); set once, then read-only. */
static const hx_stage_kind *const *extra_kinds;
static const hx_stage_kind *all_kinds[256];

void hx_stage_kinds_add(const hx_stage_kind *const *extra) { extra_kinds = extra; }

const hx_stage_kind *const *hx_stage_kinds(void)
{
    if (!extra_kinds) return kinds;
    size_t n = 0;
    for (const hx_stage_kind *const *k = kinds; *k && n + 1 < 256; k++) all_kinds[n++] = *k;
    for (const hx_stage_kind *const *k = extra_kinds; *k && n + 1 < 256; k++) all_kinds[n++] = *k;
    all_kinds[n] = NULL;
    return all_kinds;
}

const hx_stage_kind *hx_stage_kind_find(const char *name)
{
    for (const hx_stage_kind *const *k = kinds; *k; k++)
        if (!strcmp((*k)->name, name)) return *k;
    for (const hx_stage_kind *const *k = extra_kinds; k && *k; k++)
        if (!strcmp((*k)->name, name)) return *k;
    return NULL;
}
