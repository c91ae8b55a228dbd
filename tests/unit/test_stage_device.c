/* test_stage_device.c - one place decides a stage's device: the executor's ctx->device; the shared engine serves a
 * stage only on that device, every backend a stage opens is there, and kernel knobs that change results are
 * refused on a CUDA device and recorded everywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/engine.h"
#include "stages/stage.h"

/* A kind that records the backend it computed on (through the stages' one helper) and whether it got the engine. */
static char ran_on[32];
static int had_engine, ran;

static int run_probe(hx_stage_ctx *c)
{
    ran = 1;
    had_engine = c->engine != NULL;
    int own;
    k_backend *be = hx_stage_backend(c, &own);
    if (!be) return -1;
    snprintf(ran_on, sizeof ran_on, "%s", be->name);
    if (own) k_backend_free(be);
    return 0;
}

static const hx_field no_fields[] = {{0}};
static const hx_role no_roles[] = {{0}};
static const hx_stage_kind k_gpu = {"t_probe_gpu", 1, "probe", no_fields, no_roles, 1, run_probe, NULL};
static const hx_stage_kind k_cpu = {"t_probe_cpu", 1, "probe", no_fields, no_roles, 0, run_probe, NULL};

static int call(const hx_stage_kind *k, nn_engine *e, const char *device)
{
    json_t *metrics = json_object();
    hx_stage_ctx c = {.stage_name = "probe", .key = "k", .with = NULL, .out_dir = "/nonexistent",
                      .ckpt_dir = "/nonexistent", .engine = e, .device = device, .threads = 1, .metrics = metrics};
    ran = had_engine = 0;
    ran_on[0] = 0;
    int r = hx_stage_call(k, &c);
    json_decref(metrics);
    return r;
}

/* The shared engine opens lazily on the first GPU stage's device and serves only stages on that device: a stage given
 * another device (the --device cuda:1 case, with an engine on cuda:0) computes on its own backend there. */
static void test_engine_follows_the_device(void **state)
{
    (void)state;
    nn_engine *e = nn_engine_new(NULL, 1);
    assert_null(nn_engine_device(e));
    assert_int_equal(call(&k_cpu, e, "cpu"), 0); /* a CPU-only kind neither gets nor opens the engine */
    assert_false(had_engine);
    assert_null(nn_engine_device(e));
    assert_int_equal(call(&k_gpu, e, "guard"), 0);
    assert_true(had_engine);
    assert_string_equal(ran_on, "guard");
    assert_string_equal(nn_engine_device(e), "guard");
    assert_int_equal(call(&k_gpu, e, "cpu"), 0); /* engine on guard, stage on cpu: its own backend, on the cpu */
    assert_false(had_engine);
    assert_string_equal(ran_on, "cpu");
    assert_int_equal(call(&k_gpu, e, "guard"), 0);
    assert_true(had_engine);
    assert_ptr_equal(nn_engine_on(e, "guard"), e);
    assert_null(nn_engine_on(e, "guard:bf16"));
    assert_null(nn_engine_on(NULL, "cpu"));
    assert_int_equal(call(&k_gpu, NULL, "guard:bf16"), 0); /* no engine (--jobs > 1): its own, on its device */
    assert_string_equal(ran_on, "guard:bf16");
    nn_engine_free(e);
    e = nn_engine_new("cpu", 1); /* an engine opened on a device up front */
    assert_string_equal(nn_engine_device(e), "cpu");
    assert_int_equal(call(&k_gpu, e, "guard"), 0);
    assert_false(had_engine);
    assert_string_equal(ran_on, "guard");
    nn_engine_free(e);
#ifndef HX_CUDA
    /* a device this build cannot open: the stage fails saying so, it never falls back to another device */
    assert_int_equal(call(&k_gpu, NULL, "cuda:1"), -1);
    assert_non_null(strstr(hx_last_error(), "without CUDA"));
    assert_non_null(strstr(hx_last_error(), "stage 'probe'"));
#endif
}

/* Knobs that select other CUDA kernels are refused for a stage on a CUDA device (before it runs), allowed elsewhere;
 * every HX_KDA_* / HX_CUDA_* variable set is reported for the manifest. */
static void test_kernel_knobs(void **state)
{
    (void)state;
    assert_null(hx_stage_env());
    assert_int_equal(nn_engine_env_check("cuda:1"), 0);
    setenv("HX_KDA_PROF", "1", 1); /* profiling only: allowed */
    assert_int_equal(nn_engine_env_check("cuda:0"), 0);
    setenv("HX_CUDA_SIMT_ATTN", "1", 1);
    assert_int_equal(nn_engine_env_check("cpu"), 0);
    assert_int_equal(nn_engine_env_check("guard"), 0);
    assert_int_equal(call(&k_gpu, NULL, "cuda:1"), -1);
    assert_false(ran);
    assert_non_null(strstr(hx_last_error(), "stage 'probe'"));
    assert_non_null(strstr(hx_last_error(), "HX_CUDA_SIMT_ATTN=1 is set"));
    assert_int_equal(call(&k_gpu, NULL, "guard"), 0);
    assert_true(ran);
    setenv("HX_KDA_TYPO", "x", 1); /* unknown: recorded, changes nothing */
    json_t *env = hx_stage_env();
    assert_int_equal(json_object_size(env), 3);
    assert_string_equal(json_string_value(json_object_get(env, "HX_CUDA_SIMT_ATTN")), "1");
    assert_string_equal(json_string_value(json_object_get(env, "HX_KDA_PROF")), "1");
    assert_string_equal(json_string_value(json_object_get(env, "HX_KDA_TYPO")), "x");
    json_decref(env);
    /* every knob of the table that changes results is refused on CUDA */
    unsetenv("HX_CUDA_SIMT_ATTN");
    for (const nn_knob *k = nn_knobs; k->name; k++) {
        setenv(k->name, "1", 1);
        assert_int_equal(nn_engine_env_check("cuda:0"), k->changes_results ? -1 : 0);
        if (strcmp(k->name, "HX_KDA_PROF")) unsetenv(k->name);
    }
    unsetenv("HX_KDA_PROF");
    unsetenv("HX_KDA_TYPO");
    assert_null(hx_stage_env());
}

int main(void)
{
    for (const nn_knob *k = nn_knobs; k->name; k++) unsetenv(k->name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_follows_the_device),
        cmocka_unit_test(test_kernel_knobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
