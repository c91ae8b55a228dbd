/* stage.c - what every stage kind shares: parameter accessors, the protected call point, the stage's backend. */
#include <string.h>

#include "stages/stage.h"
#include "nn/engine.h"

static json_t *field(const hx_stage_ctx *c, const char *name)
{
    json_t *v = c->with ? json_object_get(c->with, name) : NULL;
    /* Parameters are validated and defaulted before run: a missing one is a schema/kind mismatch. */
    if (!v) BUG("stage '%s': parameter '%s' is not in its kind's schema", c->stage_name, name);
    return v;
}

long long hx_with_int(const hx_stage_ctx *c, const char *name)
{
    json_t *v = field(c, name);
    if (json_is_integer(v)) return json_integer_value(v);
    if (json_is_real(v)) return (long long)json_real_value(v);
    BUG("stage '%s': parameter '%s' is not an integer", c->stage_name, name);
}

double hx_with_num(const hx_stage_ctx *c, const char *name)
{
    json_t *v = field(c, name);
    if (!json_is_number(v)) BUG("stage '%s': parameter '%s' is not a number", c->stage_name, name);
    return json_number_value(v);
}

int hx_with_bool(const hx_stage_ctx *c, const char *name)
{
    json_t *v = field(c, name);
    if (!json_is_boolean(v)) BUG("stage '%s': parameter '%s' is not a boolean", c->stage_name, name);
    return json_is_true(v);
}

const char *hx_with_str(const hx_stage_ctx *c, const char *name)
{
    json_t *v = field(c, name);
    if (!json_is_string(v)) BUG("stage '%s': parameter '%s' is not a string", c->stage_name, name);
    return json_string_value(v);
}

json_t *hx_with_json(const hx_stage_ctx *c, const char *name) { return field(c, name); }

static int role_index(const hx_stage_ctx *c, const char *role)
{
    for (int i = 0; i < c->n_inputs; i++)
        if (!strcmp(c->input_roles[i], role)) return i;
    return -1;
}

const char *hx_input_dir(const hx_stage_ctx *c, const char *role)
{
    int i = role_index(c, role);
    return i < 0 ? NULL : c->input_dirs[i];
}

const char *hx_input_key(const hx_stage_ctx *c, const char *role)
{
    int i = role_index(c, role);
    return i < 0 ? NULL : c->input_keys[i];
}

int hx_stage_call(const hx_stage_kind *kind, hx_stage_ctx *ctx)
{
    hx_clear_error();
    /* ctx->device, the executor's choice, is where the stage computes: the shared engine serves it only if it lives
     * on that device (else the stage opens its own backend there), and no kernel knob may change its results */
    ctx->engine = kind->needs_gpu ? nn_engine_on(ctx->engine, ctx->device) : NULL;
    if (nn_engine_env_check(ctx->device)) return error_prefix("stage '%s'", ctx->stage_name);
    hx_oom_trap trap;
    hx_oom_trap_push(&trap);
    if (setjmp(trap.jb)) { /* hx_oom popped the trap; what the stage allocated is abandoned */
        ctx->out_of_memory = 1;
        return error_prefix("stage '%s' (kind %s) ran out of memory", ctx->stage_name, kind->name);
    }
    int rc = kind->run(ctx);
    hx_oom_trap_pop(&trap);
    if (rc == 0 && ctx->interrupted && *ctx->interrupted) {
        /* Finished despite the interrupt: the work is complete and may be committed. */
        return 0;
    }
    if (rc != 0) {
        const char *e = hx_last_error();
        if (!strcmp(e, "unknown error")) error("stage '%s' (kind %s) failed without saying why", ctx->stage_name, kind->name);
        return -1;
    }
    if (!json_is_object(ctx->metrics)) BUG("stage '%s': metrics is not an object", ctx->stage_name);
    return 0;
}

k_backend *hx_stage_backend(hx_stage_ctx *c, int *own)
{
    const char *dev = c->device ? c->device : "cpu";
    *own = !c->engine;
    k_backend *be = c->engine ? nn_engine_backend(c->engine) : k_backend_new(dev, c->threads);
    if (!be) {
        error_prefix("stage '%s'", c->stage_name);
        return NULL;
    }
    if (strcmp(be->name, dev)) BUG("stage '%s': given device %s, computing on %s", c->stage_name, dev, be->name);
    return be;
}

json_t *hx_stage_env(void) { return nn_engine_env(); }
