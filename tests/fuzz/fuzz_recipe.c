/* fuzz_recipe.c - libFuzzer target: the recipe loader, -S overrides, interpolation and the planner on any bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/plan.h"
#include "interp/recipe.h"

static int run_nothing(hx_stage_ctx *c) { (void)c; return 0; }

static const hx_field fields[] = {
    {"n", HX_T_INT, "0", NULL, "int"},          {"x", HX_T_NUM, "1.5", NULL, "num"},
    {"s", HX_T_STR, "\"a\"", "a|b|c", "str"},  {"l", HX_T_STRLIST, "[]", "p|q", "strlist"},
    {"b", HX_T_BOOL, "false", NULL, "bool"},   {"m", HX_T_MAP, "{}", NULL, "map"},
    {"any", HX_T_ANY, "1", NULL, "any"},       {"req", HX_T_LIST, NULL, NULL, "required list"},
    {0},
};
static const hx_field few[] = {{"v", HX_T_ANY, "0", NULL, "anything"}, {0}};
static const hx_role roles[] = {{"in", NULL, 1, "any"}, {"src", "f_src", 1, "a source"}, {0}};
static const hx_stage_kind f_src = {"f_src", 1, "source", few, roles, 0, run_nothing};
static const hx_stage_kind f_all = {"f_all", 2, "all types", fields, roles, 0, run_nothing};
static const hx_stage_kind *const kinds[] = {&f_src, &f_all, NULL};

/* Input: recipe text, then optionally NUL-separated -S arguments. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        hx_stage_kinds_add(kinds);
        hx_log_set_level(HX_LOG_ERROR);
        init = 1;
    }
    const char *text = (const char *)data;
    size_t tlen = strnlen(text, size);
    const char *sets[4];
    int n = 0;
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = 0;
    for (size_t off = tlen + 1; off < size && n < 4;) {
        sets[n++] = copy + off;
        off += strlen(copy + off) + 1;
    }
    hx_recipe r;
    if (hx_recipe_load_mem(&r, "fuzz.yaml", copy, tlen, "/nonexistent-fuzz-dir", sets, n) == 0) {
        hx_plan p;
        if (hx_plan_build(&p, &r, NULL) == 0) hx_plan_release(&p);
        json_t *params = hx_recipe_get(&r, "params");
        if (params) json_decref(hx_recipe_resolve(&r, params, "params", NULL, NULL));
        hx_recipe_where(&r, "stages.a.with.b[0]");
        hx_recipe_release(&r);
    }
    free(copy);
    return 0;
}
