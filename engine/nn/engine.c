/* engine.c - the shared engine: a backend and a small cache of loaded models keyed by store key. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/nn/engine.h"

typedef struct slot {
    char *key;
    nn_model *m;
} slot;

struct nn_engine {
    k_backend *be;
    int n, cap;
    slot *s;
};

nn_engine *nn_engine_new(const char *device, int threads)
{
    k_backend *be = k_backend_new(device, threads);
    if (!be) return NULL;
    nn_engine *e = xcalloc(1, sizeof *e);
    e->be = be;
    return e;
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

k_backend *nn_engine_backend(nn_engine *e) { return e->be; }
int nn_engine_n_models(const nn_engine *e) { return e->n; }

nn_model *nn_engine_model(nn_engine *e, const char *key, const char *dir)
{
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->s[i].key, key)) return e->s[i].m;
    nn_model *m;
    if (nn_model_load(&m, dir, e->be)) return NULL;
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
