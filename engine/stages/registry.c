/* registry.c - every stage kind linked into hx, one row each (kinds are data: stage.h). */
#include <string.h>
#include "engine/stages/stage.h"

/* Each kind's file defines its row; add one line here per kind. */
extern const hx_stage_kind hx_kind_data;
extern const hx_stage_kind hx_kind_tokenizer;
extern const hx_stage_kind hx_kind_convert;
static const hx_stage_kind *const kinds[] = {
    &hx_kind_data,
    &hx_kind_convert,
    &hx_kind_tokenizer,
    NULL,
};

const hx_stage_kind *const *hx_stage_kinds(void) { return kinds; }

const hx_stage_kind *hx_stage_kind_find(const char *name)
{
    for (const hx_stage_kind *const *k = kinds; *k; k++)
        if (!strcmp((*k)->name, name)) return *k;
    return NULL;
}
