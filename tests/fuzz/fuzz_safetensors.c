/* fuzz_safetensors.c - libFuzzer target: the safetensors header parser and tensor reads on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file f;
    if (st_parse(&f, "fuzz", data, size)) return 0;
    /* every accepted tensor must be readable without leaving the buffer */
    for (int i = 0; i < f.n; i++) {
        size_t n = st_numel(&f.t[i]);
        if (n > (1u << 20)) continue;
        float *x = malloc((n ? n : 1) * sizeof(float));
        st_read_f32(&f, &f.t[i], x);
        int32_t *y = malloc((n ? n : 1) * sizeof(int32_t));
        st_read_i32(&f, &f.t[i], y);
        free(x);
        free(y);
    }
    st_find(&f, "a");
    st_close(&f);
    return 0;
}
