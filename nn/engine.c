/* engine.c - the shared engine: a backend and a small cache of loaded models keyed by store key; the kernel knobs. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/engine.h"

typedef struct slot {
    char *key;
    nn_model *m;
} slot;

struct nn_engine {
    k_backend *be;          /* NULL until nn_engine_on opens it (an engine made with device NULL) */
    int threads;
    int n, cap;
    slot *s;
};

nn_engine *nn_engine_new(const char *device, int threads)
{
    nn_engine *e = xcalloc(1, sizeof *e);
    e->threads = threads;
    if (device && !(e->be = k_backend_new(device, threads))) {
        free(e);
        return NULL;
    }
    return e;
}

const char *nn_engine_device(const nn_engine *e) { return e && e->be ? e->be->name : NULL; }

nn_engine *nn_engine_on(nn_engine *e, const char *device)
{
    if (!e || !device) return NULL;
    if (!e->be) {
        if (!(e->be = k_backend_new(device, e->threads))) {
            log_warn("shared engine: cannot open %s (%s); the stage opens its own backend", device, hx_last_error());
            hx_clear_error();
            return NULL;
        }
        log_debug("engine: opened on %s", e->be->name);
    }
    return strcmp(e->be->name, device) ? NULL : e;
}

void nn_engine_free(nn_engine *e)
{
    if (!e) return;
    for (int i = 0; i < e->n; i++) {
        nn_model_free(e->s[i].m);
        free(e->s[i].key);
    }
    free(e->s);
    k_backend_free(e->be);
    free(e);
}

k_backend *nn_engine_backend(nn_engine *e)
{
    if (!e->be) BUG("nn_engine_backend: the engine's backend is not open (nn_engine_on first)");
    return e->be;
}
int nn_engine_n_models(const nn_engine *e) { return e->n; }

nn_model *nn_engine_model(nn_engine *e, const char *key, const char *dir)
{
    if (!e->be) BUG("nn_engine_model: the engine's backend is not open (nn_engine_on first)");
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->s[i].key, key)) return e->s[i].m;
    nn_model *m;
    if (nn_model_load(&m, dir, e->be)) return NULL;
    nn_model_freeze(m); /* shared for inference only: the backend keeps its matmul copy of the weights once */
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 4;
        e->s = xrealloc(e->s, (size_t)e->cap * sizeof *e->s);
    }
    e->s[e->n].key = xstrdup(key);
    e->s[e->n].m = m;
    e->n++;
    log_debug("engine: loaded %s (%s) on %s", key, dir, e->be->name);
    return m;
}

nn_model *nn_engine_model_copy(nn_engine *e, const char *key, const char *dir)
{
    nn_model *src = nn_engine_model(e, key, dir), *m;
    if (!src) return NULL;
    if (nn_model_new(&m, &src->cfg, e->be)) return NULL;
    e->be->op->copy(e->be, m->p, src->p, src->n_floats * sizeof(float));
    return m;
}

int nn_engine_evict(nn_engine *e, const char *key)
{
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->s[i].key, key)) {
            nn_model_free(e->s[i].m);
            free(e->s[i].key);
            e->s[i] = e->s[--e->n];
            return 0;
        }
    return -1;
}

/* ---- kernel knobs ---- */

const nn_knob nn_knobs[] = {
    {"HX_KDA_PROF", 0, "1: time every KDA kernel launch, print the sums at exit (profiling only)"},
    {"HX_KDA_SAVE", 1, "0: the KDA backward recomputes Aqk, A and (I+L)^-1 instead of keeping them (less memory)"},
    {"HX_KDA_VT", 1, "16|32: force the KDA state pass's value-tile width"},
    {"HX_CUDA_KDA_SEQ", 1, "1: the sequential KDA kernels instead of the chunk-parallel ones"},
    {"HX_CUDA_ATTN_NOSPLIT", 1, "1: decode attention without the split-K kernels"},
    {"HX_CUDA_SIMT_ATTN", 1, "1: the fp32 SIMT attention kernels instead of flash attention"},
    {"HX_CUDA_FLASH2", 1, "1: flash.cu's attention forward instead of flash_sm90.cu's on sm_90"},
    {NULL, 0, NULL},
};

extern char **environ;

json_t *nn_engine_env(void)
{
    json_t *o = NULL;
    for (char **v = environ; v && *v; v++) {
        if (strncmp(*v, "HX_KDA_", 7) && strncmp(*v, "HX_CUDA_", 8)) continue;
        const char *eq = strchr(*v, '=');
        if (!eq) continue;
        if (!o) o = json_object();
        json_object_setn_new(o, *v, (size_t)(eq - *v), json_string(eq + 1));
    }
    return o;
}

int nn_engine_env_check(const char *device)
{
    if (!device || strncmp(device, "cuda", 4)) return 0; /* the knobs steer CUDA kernels only */
    for (const nn_knob *k = nn_knobs; k->name; k++)
        if (k->changes_results && getenv(k->name))
            return error("%s=%s is set: it selects other CUDA kernels (%s), whose results differ in the last bits "
                         "under the same store key\nhint: it is for op tests and benchmarks (cuda_ops, bench_cuda); "
                         "unset it for hx run", k->name, getenv(k->name), k->doc);
    return 0;
}
