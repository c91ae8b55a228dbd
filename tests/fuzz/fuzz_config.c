/* fuzz_config.c - libFuzzer target: config.json parsing, and the parameter table of any accepted config. */
#include <stdint.h>
#include <stdlib.h>

#include "nn/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_config c;
    if (nn_config_parse(&c, (const char *)data, size, "fuzz")) return 0;
    nn_param *t;
    int n;
    if (nn_param_table(&c, &t, &n) == 0) free(t);
    return 0;
}
