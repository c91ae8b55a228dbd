/* backend.c - the backend factory: k_backend_new() by device name ("cpu", "guard", "cuda:N", "auto") and k_backend_free(). */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/kernels.h"

k_backend *k_backend_new(const char *device, int threads)
{
    if (!device || !strcmp(device, "cpu")) return k_cpu_new(threads);
    if (!strcmp(device, "guard") || !strcmp(device, "guard:bf16")) return k_guard_new(threads, device[5] == ':');
    if (!strcmp(device, "auto")) {
#ifdef HX_CUDA
        k_backend *b = k_cuda_new(0);
        if (b) return b;
        hx_clear_error();
#endif
        return k_cpu_new(threads);
    }
    if (!strncmp(device, "cuda", 4) && (device[4] == 0 || device[4] == ':')) {
#ifdef HX_CUDA
        int idx = device[4] == ':' ? atoi(device + 5) : 0;
        return k_cuda_new(idx);
#else
        error("device '%s': this hx was built without CUDA (rebuild on a machine with nvcc), use --device cpu",
              device);
        return NULL;
#endif
    }
    error("unknown device '%s' (cpu, cuda, cuda:N, auto; guard for tests)", device);
    return NULL;
}

void k_backend_free(k_backend *b)
{
    if (!b) return;
#ifdef HX_CUDA
    if (b->device >= 0) {
        k_cuda_free(b);
        return;
    }
#endif
    free(b);
}
