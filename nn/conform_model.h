/* conform_model.h - hx conform for whole-model fixtures (kinds qwen3 and hybrid). */
#ifndef NN_CONFORM_MODEL_H
#define NN_CONFORM_MODEL_H

#include "nn/conform.h"

/* Loads the checkpoint in dir on `device`, runs it on expected.safetensors' input_ids / labels and compares
 * logits, loss, hidden_states.i, every grad.<name> and generate.output (fixtures/README.md tolerances).
 * Returns 0 when the fixture could be read (comparison results are counted in c), -1 + error() if not. */
int nn_conform_model(const char *dir, const char *device, int threads, nn_check *c);

#endif
