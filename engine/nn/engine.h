/* engine.h - the shared engine: one backend per device and the models loaded on it, keyed by store key. */
#ifndef NN_ENGINE_H
#define NN_ENGINE_H

#include "kernels/kernels.h"
#include "engine/nn/model.h"

/* Consecutive stages of one `hx run` (a teacher used by several arms) get the same resident weights. */
typedef struct nn_engine nn_engine;

/* device: "cpu", "cuda", "cuda:N", "auto"; threads <= 0: all cores. NULL + error(). */
nn_engine *nn_engine_new(const char *device, int threads);
void nn_engine_free(nn_engine *e);
k_backend *nn_engine_backend(nn_engine *e);
/*
 * The model stored under `key` (a store key, or any unique string such as the directory), loading it from
 * dir (config.json + safetensors) the first time. The engine owns it; callers must not free it, and must not
 * change its weights (train a copy: nn_engine_model_copy). NULL + error() if the checkpoint does not load.
 */
nn_model *nn_engine_model(nn_engine *e, const char *key, const char *dir);
/* A private, trainable copy of a cached model (same config, same weights); the caller frees it. */
nn_model *nn_engine_model_copy(nn_engine *e, const char *key, const char *dir);
/* Drops one cached model (e.g. before loading something large); 0 if it was cached. */
int nn_engine_evict(nn_engine *e, const char *key);
int nn_engine_n_models(const nn_engine *e);

#endif
