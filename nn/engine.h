/* engine.h - the shared engine: one backend and the models loaded on it, keyed by store key; and the environment
 * variables that steer the backends' kernels. */
#ifndef NN_ENGINE_H
#define NN_ENGINE_H

#include <jansson.h>

#include "kernels/kernels.h"
#include "nn/model.h"

/* Consecutive stages of one `hx run` (a teacher used by several arms) get the same resident weights. */
typedef struct nn_engine nn_engine;

/* device: "cpu", "cuda", "cuda:N", "auto", "guard"; threads <= 0: all cores. NULL + error(). device NULL: a shared
 * engine whose backend opens on the device of the first stage that asks (nn_engine_on). */
nn_engine *nn_engine_new(const char *device, int threads);
void nn_engine_free(nn_engine *e);
k_backend *nn_engine_backend(nn_engine *e);
/* The backend's name ("cpu", "cuda:1", "guard"), or NULL while the backend is not open. */
const char *nn_engine_device(const nn_engine *e);
/*
 * The engine a stage on `device` may use: e itself if its backend is on that device, or opened there now if it was
 * not open yet; NULL (the stage opens its own backend on its device) if e is NULL, lives on another device, or
 * cannot open there. A stage never computes on a device other than the one it was given.
 */
nn_engine *nn_engine_on(nn_engine *e, const char *device);
/*
 * The model stored under `key` (a store key, or any unique string such as the directory), loading it from
 * dir (config.json + safetensors) the first time. The engine owns it; callers must not free it, and must not
 * change its weights (train a copy: nn_engine_model_copy); it is frozen (nn_model_freeze: the backend keeps its
 * weights once in its matmul operand format). NULL + error() if the checkpoint does not load.
 */
nn_model *nn_engine_model(nn_engine *e, const char *key, const char *dir);
/* A private, trainable copy of a cached model (same config, same weights); the caller frees it. */
nn_model *nn_engine_model_copy(nn_engine *e, const char *key, const char *dir);
/* Drops one cached model (e.g. before loading something large); 0 if it was cached. */
int nn_engine_evict(nn_engine *e, const char *key);
int nn_engine_n_models(const nn_engine *e);

/* ---- kernel knobs ----
 * Environment variables the CUDA kernels read (kernels/cuda): a knob that selects other kernels changes results in
 * their last bits, which no store key records (keys do not depend on the device either), so it is refused for a
 * stage on a CUDA device; profiling knobs are allowed. Every HX_KDA_* / HX_CUDA_* variable set is recorded in the
 * manifest of each stage (docs/engine.md has the table). */
typedef struct nn_knob {
    const char *name;
    int changes_results;    /* 1: another kernel or reduction order; refused on a CUDA device */
    const char *doc;
} nn_knob;
extern const nn_knob nn_knobs[]; /* terminated by {NULL} */
/* Every HX_KDA_* and HX_CUDA_* variable set in the environment, name -> value, or NULL if none. */
json_t *nn_engine_env(void);
/* 0, or -1 + error() naming the first knob set that changes results when device is a CUDA device. */
int nn_engine_env_check(const char *device);

#endif
